import { ValidationError } from '../errors.ts';
import { EPS, type LbfgsStop, minimizeLbfgs } from './lbfgs.ts';
import { createBlockEvaluator, csrLayout, defaultThreads, isShared, type RowData } from './parallel.ts';
import type { FitOptions, FitResult, Matrix } from './types.ts';
import { createSharedMemory, MAX_PAGES, type WasmMemory } from './wasm-kernel.ts';

/** What {@link fitLogisticRegression} accepts besides the scikit-learn options. */
export interface FitRunOptions extends FitOptions {
  /**
   * Rows of `X` to fit on (e.g. the training part of a split), in this order. Avoids copying a
   * large matrix. @default all rows
   */
  rows?: Int32Array;
  /** Threads for the loss/gradient (this one + workers). @default min(CPUs, 8) */
  threads?: number;
  /**
   * Row storage for the fit. `csr`: a compressed copy of the non-zeros in WebAssembly memory,
   * built once (6 bytes per non-zero; the WebAssembly kernel is faster than reading dense rows
   * even with no zeros at all, and ReLU features are mostly zeros). `dense`: reads `X` in place
   * with JavaScript loops (no copy; threads only when `X.data` is in a SharedArrayBuffer).
   * `auto`: csr when the copy fits (≤ 4 GiB, ≤ 65,536 features), else dense.
   * @default 'auto'
   */
  storage?: 'auto' | 'dense' | 'csr';
  /**
   * Work (non-zeros × outputs per evaluation) from which worker threads are used; below it they
   * cost more than they save. Tests set 0 to exercise the threads on tiny problems.
   * @default 4_000_000
   */
  parallelMinWork?: number;
  /** Called after every L-BFGS iteration (objective in the reported scale, see FitResult). */
  onIteration?: (info: { iter: number; objective: number; gnorm: number; nEval: number }) => void;
}

/** Detailed result: FitResult plus how it was computed. */
export interface FitDetails extends FitResult {
  stop: LbfgsStop;
  threads: number;
  storage: 'dense' | 'csr';
  /** Milliseconds spent preparing the rows (the CSR copy) before the first evaluation. */
  prepareMs: number;
}

/** Work (non-zeros × outputs) below which worker threads cost more than they save. */
const MIN_PARALLEL_WORK = 4_000_000;

/**
 * Fits L2-regularized logistic regression as scikit-learn's
 * `LogisticRegression(solver="lbfgs", C, max_iter, tol)` does in 1.4 and later (loss scaled by
 * 1/n, scipy L-BFGS-B with `maxls=50`, `ftol=64·eps`, `gtol=tol`; 1.2-1.3 summed the loss and
 * used scipy's default ftol/maxls: same minimizer, different stopping). Checked against
 * scikit-learn by test/fixtures/sklearn/make_fixtures.py: same iterations, same coefficients.
 *
 * - two classes: one row of coefficients, P(classes[1]) = sigmoid(x·w + b) (y must be 0/1);
 *   K > 2 classes: K rows, softmax (multinomial);
 * - minimizes Σᵢ logloss_i / n + ‖W‖² / (2·C·n), intercepts not penalized (the minimizer of
 *   C·Σ logloss + ½‖W‖²), starting from zero, by L-BFGS (m = 10) with scipy's stopping rules,
 *   so `tol` means the same as in scikit-learn (max |gradient| of that scaled objective);
 * - `objective` is reported as Σᵢ logloss_i + ‖W‖²/(2C) (= n × scikit-learn's `opt_res.fun`).
 *
 * `X` is read in place (n×d float32, row-major). `y[i]` is the class index of row i (0..K-1).
 * Deterministic: the same inputs give bit-identical results for any thread count.
 *
 * @example
 * const fit = fitLogisticRegression({ data, n, d }, y, 3, { C: 1, maxIter: 100, tol: 1e-4 });
 * fit.coef.length === 3; fit.intercept.length === 3
 */
export function fitLogisticRegression(
  X: Matrix,
  y: Int32Array,
  nClasses: number,
  opts: FitRunOptions,
): FitDetails {
  const { C, maxIter, tol } = opts;
  if (!(C > 0) || !Number.isFinite(C)) throw new ValidationError(`C must be a positive number (got ${C})`);
  if (!Number.isInteger(maxIter) || maxIter < 1)
    throw new ValidationError(`maxIter must be a whole number ≥ 1 (got ${maxIter})`);
  if (!(tol >= 0)) throw new ValidationError(`tol must be ≥ 0 (got ${tol})`);
  if (!Number.isInteger(nClasses) || nClasses < 2)
    throw new ValidationError(`logistic regression needs at least 2 classes (got ${nClasses})`);
  if (X.data.length !== X.n * X.d)
    throw new ValidationError(`matrix data has ${X.data.length} values, expected ${X.n}×${X.d}`);
  if (y.length !== X.n) throw new ValidationError(`y has ${y.length} labels for ${X.n} rows`);

  const rows = opts.rows ?? null;
  const n = rows ? rows.length : X.n;
  const counts = new Array<number>(nClasses).fill(0);
  for (let r = 0; r < n; r++) {
    const i = rows ? (rows[r] as number) : r;
    if (i < 0 || i >= X.n) throw new ValidationError(`row index ${i} is outside the matrix (0..${X.n - 1})`);
    const c = y[i] as number;
    if (!(c >= 0 && c < nClasses))
      throw new ValidationError(`label ${c} of row ${i} is not in 0..${nClasses - 1}`);
    counts[c] = (counts[c] as number) + 1;
  }
  const missing = counts.flatMap((c, k) => (c === 0 ? [k] : []));
  if (missing.length > 0) throw new ValidationError(`class(es) ${missing.join(', ')} have no rows to fit on`);

  const K = nClasses === 2 ? 1 : nClasses;
  const d = X.d;
  const threadsWanted = Math.max(1, Math.floor(opts.threads ?? defaultThreads()));
  const tPrepare = performance.now();
  const wanted = opts.storage ?? 'auto';
  const csr = wanted === 'dense' ? null : toCsr(X, rows, y, K);
  if (wanted === 'csr' && csr === null)
    throw new ValidationError(
      'the rows do not fit a CSR copy (over 4 GiB or 65,536 features); use dense storage',
    );
  const data = csr ?? toDense(X, rows, y);
  const storage = csr ? 'csr' : 'dense';
  const nonZeros = csr?.csr ? (csr.csr.rowPtr[n] as number) : n * d;
  const work = nonZeros * K;
  const evaluator = createBlockEvaluator(
    data,
    K,
    work >= (opts.parallelMinWork ?? MIN_PARALLEL_WORK) ? threadsWanted : 1,
  );

  const prepareMs = performance.now() - tPrepare;
  const nW = K * d;
  const l2 = 1 / (C * n);
  let nEval = 0;
  try {
    const result = minimizeLbfgs(
      (w, g) => {
        nEval++;
        const lossSum = evaluator.evaluate(w, g);
        // At w = 0 the gradient is a sum of feature values: NaN/∞ features show up here.
        if (nEval === 1 && !(Number.isFinite(lossSum) && g.every(Number.isFinite)))
          throw new ValidationError('the features contain NaN or infinite values; fix or drop those samples');
        let sq = 0;
        for (let i = 0; i < nW; i++) {
          const wi = w[i] as number;
          sq += wi * wi;
          g[i] = (g[i] as number) / n + l2 * wi;
        }
        for (let i = nW; i < g.length; i++) g[i] = (g[i] as number) / n;
        return lossSum / n + 0.5 * l2 * sq;
      },
      new Float64Array(K * (d + 1)),
      {
        m: 10,
        maxIter,
        gtol: tol,
        ftol: 64 * EPS,
        maxLs: 50,
        onIteration: opts.onIteration
          ? (i) => opts.onIteration?.({ iter: i.iter, objective: i.f * n, gnorm: i.gnorm, nEval: i.nEval })
          : undefined,
      },
    );
    const coef: number[][] = [];
    for (let k = 0; k < K; k++) {
      const row = new Array<number>(d);
      for (let j = 0; j < d; j++) row[j] = result.x[j * K + k] as number;
      coef.push(row);
    }
    const intercept = Array.from({ length: K }, (_, k) => result.x[nW + k] as number);
    return {
      coef,
      intercept,
      nIter: result.nIter,
      converged: result.converged,
      objective: result.f * n,
      nEval,
      stop: result.stop,
      threads: evaluator.threads,
      storage,
      prepareMs,
    };
  } finally {
    evaluator.close();
  }
}

function int32(n: number, shared: boolean): Int32Array {
  return shared ? new Int32Array(new SharedArrayBuffer(n * 4)) : new Int32Array(n);
}

function localLabels(y: Int32Array, rows: Int32Array | null, n: number, shared: boolean): Int32Array {
  const out = int32(n, shared);
  for (let r = 0; r < n; r++) out[r] = y[rows ? (rows[r] as number) : r] as number;
  return out;
}

/** Dense rows read in place; shared with workers only when the caller's matrix already is. */
function toDense(X: Matrix, rows: Int32Array | null, y: Int32Array): RowData {
  const n = rows ? rows.length : X.n;
  const shared = isShared(X.data);
  let rowMap: Int32Array | null = null;
  if (rows) {
    rowMap = int32(n, shared);
    rowMap.set(rows);
  }
  return { n, d: X.d, y: localLabels(y, rows, n, shared), dense: X.data, rows: rowMap, csr: null };
}

/**
 * CSR copy of the selected rows' non-zeros in a shared WebAssembly memory (built once per fit),
 * or null when it cannot hold them (more than 4 GiB, or more than 65,536 features).
 */
function toCsr(X: Matrix, rows: Int32Array | null, y: Int32Array, K: number): RowData | null {
  const n = rows ? rows.length : X.n;
  const { d, data } = X;
  if (d > 65536) return null;
  // Work on the raw bits: "is non-zero" as integer arithmetic, without a branch per value, which
  // mispredicts on ReLU zeros and made this copy 3× slower. ±0 count as zero, like `v !== 0`.
  const bits = new Int32Array(data.buffer, data.byteOffset, data.length);
  const rowPtr = int32(n + 1, true);
  let nnz = 0;
  for (let r = 0; r < n; r++) {
    rowPtr[r] = nnz;
    const off = (rows ? (rows[r] as number) : r) * d;
    for (let j = 0; j < d; j++) nnz += (((bits[off + j] as number) & 0x7fffffff) + 0x7fffffff) >>> 31;
  }
  rowPtr[n] = nnz;
  const layout = csrLayout(K, d, nnz);
  const pages = Math.ceil(layout.bytes / 65536);
  if (pages > MAX_PAGES) return null;
  let memory: WasmMemory;
  try {
    memory = createSharedMemory(pages);
  } catch {
    return null; // not enough memory for the copy: read the dense rows instead
  }
  const valBits = new Int32Array(memory.buffer, layout.valPtr, nnz);
  const idx = new Uint16Array(memory.buffer, layout.idxPtr, nnz);
  let p = 0;
  for (let r = 0; r < n; r++) {
    const off = (rows ? (rows[r] as number) : r) * d;
    for (let j = 0; j < d; j++) {
      // Always write, advance only past non-zeros (a write at p = nnz falls outside the views).
      const b = bits[off + j] as number;
      valBits[p] = b;
      idx[p] = j;
      p += ((b & 0x7fffffff) + 0x7fffffff) >>> 31;
    }
  }
  return { n, d, y: localLabels(y, rows, n, true), dense: null, rows: null, csr: { rowPtr, memory, layout } };
}
