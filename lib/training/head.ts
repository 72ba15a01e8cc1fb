import { ValidationError } from '../errors.ts';
import type { CompactMatrix } from './compact-matrix.ts';
import type { FitResult, Head, Matrix } from './types.ts';

/**
 * Wraps a fit into the plain-data head (copies the arrays, so the head owns them).
 * `classes` must be the sorted labels whose indices the fit's `y` used.
 */
export function headFromFit(
  classes: readonly string[],
  fit: Pick<FitResult, 'coef' | 'intercept'>,
  spec: string,
): Head {
  const head: Head = {
    classes: [...classes],
    coef: fit.coef.map((row) => [...row]),
    intercept: [...fit.intercept],
    spec,
  };
  checkHead(head);
  return head;
}

/**
 * Checks a head's shapes: ≥ 2 classes, one row for two classes or one per class otherwise,
 * rows of equal length, finite numbers. Throws ValidationError naming what is wrong.
 */
export function checkHead(head: Head): void {
  const K = head.classes.length;
  if (K < 2) throw new ValidationError(`a head needs at least 2 classes (got ${K})`);
  const rows = K === 2 ? 1 : K;
  if (head.coef.length !== rows)
    throw new ValidationError(
      `a head with ${K} classes needs ${rows} coefficient row(s), got ${head.coef.length}`,
    );
  if (head.intercept.length !== rows)
    throw new ValidationError(
      `a head with ${K} classes needs ${rows} intercept(s), got ${head.intercept.length}`,
    );
  const d = head.coef[0]?.length ?? 0;
  if (d === 0) throw new ValidationError('a head needs at least one feature');
  for (const row of head.coef) {
    if (row.length !== d) throw new ValidationError('coefficient rows of a head differ in length');
    for (const v of row)
      if (!Number.isFinite(v)) throw new ValidationError('a head coefficient is not finite');
  }
  for (const v of head.intercept)
    if (!Number.isFinite(v)) throw new ValidationError('a head intercept is not finite');
}

/** Number of features a head expects. */
export function headDims(head: Head): number {
  return head.coef[0]?.length ?? 0;
}

/**
 * Class probabilities of one feature vector, in `head.classes` order (like scikit-learn's
 * `predict_proba`): sigmoid for a binary head ([1-p, p]), softmax otherwise.
 * Throws ValidationError when the vector's length is not the head's.
 */
export function predictProba(head: Head, x: Float32Array): number[] {
  const d = headDims(head);
  if (x.length !== d)
    throw new ValidationError(`feature vector has ${x.length} values, the model expects ${d}`);
  const out = new Float64Array(head.classes.length);
  probaRow(head, x, 0, out, 0);
  return Array.from(out);
}

/**
 * Class probabilities of every row of `X`: an n×K Float64Array, row-major, columns in
 * `head.classes` order.
 */
export function predictProbaBatch(head: Head, X: Matrix): Float64Array {
  const d = headDims(head);
  if (X.d !== d) throw new ValidationError(`features have ${X.d} values per row, the model expects ${d}`);
  const K = head.classes.length;
  const out = new Float64Array(X.n * K);
  for (let i = 0; i < X.n; i++) probaRow(head, X.data, i * d, out, i * K);
  return out;
}

/** Index of the most probable class of each row of an n×K probability matrix (first on ties). */
export function argmaxRows(proba: Float64Array, K: number): Int32Array {
  const n = proba.length / K;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if ((proba[i * K + k] as number) > (proba[i * K + best] as number)) best = k;
    out[i] = best;
  }
  return out;
}

function probaRow(head: Head, X: Float32Array, off: number, out: Float64Array, outOff: number): void {
  const d = headDims(head);
  probaFromLogits(
    head,
    (w, z) => {
      for (let j = 0; j < d; j++) z += (X[off + j] as number) * (w[j] as number);
      return z;
    },
    out,
    outOff,
  );
}

/**
 * Class probabilities of row `i` of a compact matrix into `out` at `outOff` (K values). The same
 * numbers as {@link predictProba} on the dense row: the logits add the same products in the same
 * order, only the zero ones are skipped.
 */
export function predictProbaCompactRow(
  head: Head,
  X: CompactMatrix,
  i: number,
  out: Float64Array,
  outOff: number,
): void {
  if (X.d !== headDims(head))
    throw new ValidationError(`features have ${X.d} values per row, the model expects ${headDims(head)}`);
  probaFromLogits(
    head,
    (w, z) => {
      X.forEachNonZero(i, (j, v) => {
        z += v * (w[j] as number);
      });
      return z;
    },
    out,
    outOff,
  );
}

/** Sigmoid / softmax of the logits `logit(coefRow, intercept)` of each coefficient row. */
function probaFromLogits(
  head: Head,
  logit: (w: number[], intercept: number) => number,
  out: Float64Array,
  outOff: number,
): void {
  const rows = head.coef.length;
  if (rows === 1) {
    const z = logit(head.coef[0] as number[], head.intercept[0] as number);
    // Stable sigmoid for both signs of z.
    const e = Math.exp(-Math.abs(z));
    const p = z >= 0 ? 1 / (1 + e) : e / (1 + e);
    out[outOff] = 1 - p;
    out[outOff + 1] = p;
    return;
  }
  let mx = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < rows; k++) {
    const z = logit(head.coef[k] as number[], head.intercept[k] as number);
    out[outOff + k] = z;
    if (z > mx) mx = z;
  }
  let sum = 0;
  for (let k = 0; k < rows; k++) {
    const e = Math.exp((out[outOff + k] as number) - mx);
    out[outOff + k] = e;
    sum += e;
  }
  for (let k = 0; k < rows; k++) out[outOff + k] = (out[outOff + k] as number) / sum;
}
