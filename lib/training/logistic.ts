import { ValidationError } from '../errors.ts';
import { EPS, type LbfgsStop, minimizeLbfgs } from './lbfgs.ts';
import { createBlockEvaluator, defaultThreads, isShared, type RowData } from './parallel.ts';
import type { FitOptions, FitResult, Matrix } from './types.ts';

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
   * Row storage for the fit: `csr` builds a compressed copy of the non-zeros once (faster when
   * at most ~60 % of the values are non-zero, as with ReLU features), `dense` reads `X` as is.
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
}

/** Non-zero fraction at or below which the CSR copy pays off (measured, see test/bench/fit.ts). */
const CSR_MAX_DENSITY = 0.6;
/** Work (non-zeros × outputs) below which worker threads cost more than they save. */
const MIN_PARALLEL_WORK = 4_000_000;

/**
 * Fits L2-regularized logistic regression exactly as scikit-learn ≥ 1.2's
 * `LogisticRegression(solver="lbfgs", C, max_iter, tol)` does (1.4+ option set: `maxls=50`,
 * `ftol=64·eps`, objective scaled by 1/n):
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
  const storage = chooseStorage(X, rows, opts.storage ?? 'auto');
  const share = threadsWanted > 1;
  const data = storage === 'csr' ? toCsr(X, rows, y, share) : toDense(X, rows, y, share);
  const work = (data.idx ? data.idx.length : n * d) * K;
  const evaluator = createBlockEvaluator(
    data,
    K,
    work >= (opts.parallelMinWork ?? MIN_PARALLEL_WORK) ? threadsWanted : 1,
  );

  const nW = K * d;
  const l2 = 1 / (C * n);
  let nEval = 0;
  try {
    const result = minimizeLbfgs(
      (w, g) => {
        nEval++;
        const lossSum = evaluator.evaluate(w, g);
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
    };
  } finally {
    evaluator.close();
  }
}

/** Fraction of non-zero values, estimated on up to 256 evenly spaced rows. */
export function estimateDensity(X: Matrix, rows: Int32Array | null): number {
  const n = rows ? rows.length : X.n;
  if (n === 0 || X.d === 0) return 1;
  const sample = Math.min(n, 256);
  let nz = 0;
  for (let s = 0; s < sample; s++) {
    const r = Math.floor((s * n) / sample);
    const off = (rows ? (rows[r] as number) : r) * X.d;
    for (let j = 0; j < X.d; j++) if (X.data[off + j] !== 0) nz++;
  }
  return nz / (sample * X.d);
}

function chooseStorage(
  X: Matrix,
  rows: Int32Array | null,
  wanted: 'auto' | 'dense' | 'csr',
): 'dense' | 'csr' {
  if (wanted !== 'auto') return wanted;
  return estimateDensity(X, rows) <= CSR_MAX_DENSITY ? 'csr' : 'dense';
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
function toDense(X: Matrix, rows: Int32Array | null, y: Int32Array, share: boolean): RowData {
  const n = rows ? rows.length : X.n;
  const shared = share && isShared(X.data);
  let rowMap: Int32Array | null = null;
  if (rows) {
    rowMap = int32(n, shared);
    rowMap.set(rows);
  }
  return {
    dense: X.data,
    d: X.d,
    rows: rowMap,
    rowPtr: null,
    idx: null,
    val: null,
    y: localLabels(y, rows, n, shared),
    n,
  };
}

/** CSR copy of the selected rows' non-zeros (built once per fit, in shared memory for workers). */
function toCsr(X: Matrix, rows: Int32Array | null, y: Int32Array, shared: boolean): RowData {
  const n = rows ? rows.length : X.n;
  const d = X.d;
  const data = X.data;
  const rowPtr = int32(n + 1, shared);
  let nnz = 0;
  for (let r = 0; r < n; r++) {
    rowPtr[r] = nnz;
    const off = (rows ? (rows[r] as number) : r) * d;
    for (let j = 0; j < d; j++) if (data[off + j] !== 0) nnz++;
    if (nnz > 2 ** 31 - 1)
      throw new ValidationError('too many non-zero values for a CSR copy; use storage dense');
  }
  rowPtr[n] = nnz;
  const wide = d > 65536;
  const idxBuf = shared ? new SharedArrayBuffer(nnz * (wide ? 4 : 2)) : new ArrayBuffer(nnz * (wide ? 4 : 2));
  const idx = wide ? new Int32Array(idxBuf) : new Uint16Array(idxBuf);
  const val = shared ? new Float32Array(new SharedArrayBuffer(nnz * 4)) : new Float32Array(nnz);
  let p = 0;
  for (let r = 0; r < n; r++) {
    const off = (rows ? (rows[r] as number) : r) * d;
    for (let j = 0; j < d; j++) {
      const v = data[off + j] as number;
      if (v !== 0) {
        idx[p] = j;
        val[p] = v;
        p++;
      }
    }
  }
  return { dense: null, d, rows: null, rowPtr, idx, val, y: localLabels(y, rows, n, shared), n };
}
