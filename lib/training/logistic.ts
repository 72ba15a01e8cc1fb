import { ValidationError } from '../errors.ts';
import { type CompactMatrix, compactFromDense, isCompact } from './compact-matrix.ts';
import { EPS, type LbfgsStop, minimizeLbfgs } from './lbfgs.ts';
import {
  type BlockEvaluator,
  createBlockEvaluator,
  csrLayout,
  csrScratchBytes,
  defaultThreads,
  type FitPool,
  FitPoolClosedError,
  isShared,
  type RowData,
} from './parallel.ts';
import type { FitOptions, FitResult, Matrix } from './types.ts';

/** What {@link fitLogisticRegression} accepts besides the scikit-learn options. */
export interface FitRunOptions extends FitOptions {
  /**
   * Rows of `X` to fit on (e.g. the training part of a split), in this order. Avoids copying a
   * large matrix. @default all rows
   */
  rows?: Int32Array;
  /** Threads for the loss/gradient (this one + workers). @default `pool.threads`, else min(CPUs, 8) */
  threads?: number;
  /**
   * Worker threads to borrow instead of starting new ones ({@link createFitPool}): for many fits
   * in a row, such as the quality pass's K-fold refits. Results are the same with or without it.
   */
  pool?: FitPool;
  /**
   * Row storage for the fit of a dense `X` (a {@link CompactMatrix} is always read in place).
   * `csr`: a compact copy of the selected rows' non-zeros in WebAssembly memory, built once
   * (6 bytes per non-zero; the WebAssembly kernel is faster than reading dense rows even with no
   * zeros at all, and ReLU features are mostly zeros). `dense`: reads `X` in place with
   * JavaScript loops (no copy; threads only when `X.data` is in a SharedArrayBuffer).
   * `auto`: csr when the copy can be had (≤ 65,536 features, memory available), else dense.
   * @default 'auto'
   */
  storage?: 'auto' | 'dense' | 'csr';
  /**
   * Work (non-zeros × outputs per evaluation) from which worker threads are used; below it they
   * cost more than they save. Tests set 0 to exercise the threads on tiny problems.
   * @default 4_000_000 (starting threads), 250_000 with a `pool` (its threads are running)
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

/** Work (non-zeros × outputs) below which starting worker threads costs more than they save. */
const MIN_PARALLEL_WORK = 4_000_000;
/**
 * The same for a pool's running threads: then only the hand-off of each evaluation (tens of
 * microseconds) is paid, against ~1 ns of kernel time per unit of work.
 */
const MIN_POOL_PARALLEL_WORK = 250_000;

/**
 * Fits L2-regularized logistic regression as scikit-learn's
 * `LogisticRegression(solver="lbfgs", C, max_iter, tol)` does in 1.4 and later (loss scaled by
 * 1/n, scipy L-BFGS-B with `maxls=50`, `ftol=64·eps`, `gtol=tol`; 1.2-1.3 summed the loss and
 * used scipy's default ftol/maxls: same minimizer, different stopping). Checked against
 * scikit-learn by scripts/fixtures/make-sklearn.py: same iterations, same coefficients.
 *
 * - two classes: one row of coefficients, P(classes[1]) = sigmoid(x·w + b) (y must be 0/1);
 *   K > 2 classes: K rows, softmax (multinomial);
 * - minimizes Σᵢ logloss_i / n + ‖W‖² / (2·C·n), intercepts not penalized (the minimizer of
 *   C·Σ logloss + ½‖W‖²), starting from zero, by L-BFGS (m = 10) with scipy's stopping rules,
 *   so `tol` means the same as in scikit-learn (max |gradient| of that scaled objective);
 * - `objective` is reported as Σᵢ logloss_i + ‖W‖²/(2C) (= n × scikit-learn's `opt_res.fun`).
 *
 * `X` is a dense n×d float32 row-major matrix or a {@link CompactMatrix}, both read in place
 * (a dense one gets a compact copy of the fitted rows unless `storage: 'dense'`). `y[i]` is the
 * class index of row i (0..K-1).
 * Deterministic: the same inputs give bit-identical results for any thread count.
 *
 * @example
 * const fit = fitLogisticRegression({ data, n, d }, y, 3, { C: 1, maxIter: 100, tol: 1e-4 });
 * fit.coef.length === 3; fit.intercept.length === 3
 */
export function fitLogisticRegression(
  X: Matrix | CompactMatrix,
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
  if (!isCompact(X) && X.data.length !== X.n * X.d)
    throw new ValidationError(`matrix data has ${X.data.length} values, expected ${X.n}×${X.d}`);
  if (y.length !== X.n) throw new ValidationError(`y has ${y.length} labels for ${X.n} rows`);
  if (opts.pool?.closed) throw new FitPoolClosedError();

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
  const threadsWanted = Math.max(1, Math.floor(opts.threads ?? opts.pool?.threads ?? defaultThreads()));
  const tPrepare = performance.now();
  const wanted = opts.storage ?? 'auto';
  let parts: RowData[];
  if (isCompact(X)) {
    if (wanted === 'dense')
      throw new ValidationError("a compact matrix is fit as it is stored: use storage 'csr' or 'auto'");
    parts = compactParts(X, rows, y, K);
  } else {
    const compact = wanted === 'dense' ? null : tryCompact(X, rows);
    if (wanted === 'csr' && compact === null)
      throw new ValidationError(
        'the rows do not fit a CSR copy (the compact form: over 65,536 features, or no memory for it); use dense storage',
      );
    parts = compact ? compactParts(compact, null, localLabels(y, rows, n, false), K) : [toDense(X, rows, y)];
  }
  const storage = parts[0]?.csr ? 'csr' : 'dense';
  let nonZeros = 0;
  for (const p of parts) {
    if (p.csr) for (let r = 0; r < p.n; r++) nonZeros += p.csr.rowNnz[r] as number;
    else nonZeros += p.n * d;
  }
  const work = nonZeros * K;
  const minWork = opts.parallelMinWork ?? (opts.pool ? MIN_POOL_PARALLEL_WORK : MIN_PARALLEL_WORK);
  const evaluator = combine(
    parts.map((p) => createBlockEvaluator(p, K, work >= minWork ? threadsWanted : 1, opts.pool)),
    K * (d + 1),
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

/** A compact copy of the selected rows of a dense matrix, or null when it cannot be had. */
function tryCompact(X: Matrix, rows: Int32Array | null): CompactMatrix | null {
  if (X.d > 65536) return null;
  try {
    return compactFromDense(X, rows ?? undefined);
  } catch (err) {
    if (err instanceof RangeError) return null; // no memory for the copy: read the dense rows instead
    throw err;
  }
}

/**
 * The selected rows of a compact matrix as the kernel reads them: one part per shard holding
 * any of them (rows keep their order inside a part), with the fit's work arrays after the
 * shard's records.
 */
function compactParts(X: CompactMatrix, rows: Int32Array | null, y: Int32Array, K: number): RowData[] {
  const n = rows ? rows.length : X.n;
  const perShard = new Int32Array(X.shards.length);
  for (let r = 0; r < n; r++) {
    const s = X.rowShard[rows ? (rows[r] as number) : r] as number;
    perShard[s] = (perShard[s] as number) + 1;
  }
  const parts: RowData[] = [];
  X.shards.forEach((shard, s) => {
    const m = perShard[s] as number;
    if (m === 0) return;
    const rowOff = new Uint32Array(new SharedArrayBuffer(m * 4));
    const rowNnz = int32(m, true);
    const yl = int32(m, true);
    let q = 0;
    for (let r = 0; r < n; r++) {
      const i = rows ? (rows[r] as number) : r;
      if (X.rowShard[i] !== s) continue;
      rowOff[q] = X.rowOff[i] as number;
      rowNnz[q] = X.rowNnz[i] as number;
      yl[q] = y[i] as number;
      q++;
    }
    const layout = csrLayout(K, X.d, shard.scratch(csrScratchBytes(K, X.d)));
    parts.push({
      n: m,
      d: X.d,
      y: yl,
      dense: null,
      rows: null,
      csr: { rowOff, rowNnz, memory: shard.memory, layout },
    });
  });
  return parts;
}

/**
 * One evaluator over several parts (shards): their losses and gradients summed in part order,
 * so the result is the same for any thread count. One part is passed through unchanged.
 */
function combine(evaluators: BlockEvaluator[], len: number): BlockEvaluator {
  const [only] = evaluators;
  if (evaluators.length === 1 && only) return only;
  const part = new Float64Array(len);
  return {
    threads: Math.max(...evaluators.map((e) => e.threads)),
    evaluate(w, grad) {
      grad.fill(0);
      let loss = 0;
      for (const e of evaluators) {
        loss += e.evaluate(w, part);
        for (let i = 0; i < len; i++) grad[i] = (grad[i] as number) + (part[i] as number);
      }
      return loss;
    },
    close() {
      for (const e of evaluators) e.close();
    },
  };
}
