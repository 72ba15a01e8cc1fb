import { headFromFit, predictProbaBatch } from '../training/head.ts';
import { fitLogisticRegression } from '../training/logistic.ts';
import type { FitPool } from '../training/parallel.ts';
import { shuffleInPlace } from '../training/split.ts';
import type { FitOptions, Matrix } from '../training/types.ts';
import { mulberry32 } from '../util/random.ts';

/**
 * Likely label errors, confident-learning style (Northcutt et al., "Confident Learning", 2021):
 * out-of-fold probabilities from a K-fold refit of the head, a per-class threshold t_k = the mean
 * out-of-fold probability of class k over the images labelled k, and an image is flagged when
 * the most probable class among those reaching their threshold is not its label (an
 * off-diagonal entry of the confident joint). Ranked by the margin p(label) − p(suggested),
 * lowest first.
 */

/** Folds that keep groups together and classes balanced (seeded). */
export function groupedStratifiedFolds(
  y: Int32Array,
  groups: Int32Array | undefined,
  k: number,
  seed: number,
): Int32Array {
  const n = y.length;
  // Units: a group (all its rows) or one row; a unit's class is its first row's.
  const units = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const g = groups ? (groups[i] as number) : -1;
    const id = g >= 0 ? g : -1 - i;
    let u = units.get(id);
    if (!u) {
      u = [];
      units.set(id, u);
    }
    u.push(i);
  }
  const byClass = new Map<number, number[][]>();
  for (const u of units.values()) {
    const c = y[u[0] as number] as number;
    let list = byClass.get(c);
    if (!list) {
      list = [];
      byClass.set(c, list);
    }
    list.push(u);
  }
  const rand = mulberry32(seed);
  const fold = new Int32Array(n);
  const sizes = new Array<number>(k).fill(0);
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const list = shuffleInPlace(byClass.get(c) as number[][], rand);
    // Largest units first, each to the fold with the fewest rows of this class so far.
    list.sort((a, b) => b.length - a.length);
    const classSizes = new Array<number>(k).fill(0);
    for (const u of list) {
      let best = 0;
      for (let f = 1; f < k; f++)
        if (
          (classSizes[f] as number) < (classSizes[best] as number) ||
          ((classSizes[f] as number) === (classSizes[best] as number) &&
            (sizes[f] as number) < (sizes[best] as number))
        )
          best = f;
      for (const i of u) fold[i] = best;
      classSizes[best] = (classSizes[best] as number) + u.length;
      sizes[best] = (sizes[best] as number) + u.length;
    }
  }
  return fold;
}

/** Options of {@link findLabelErrors}. */
export interface LabelErrorOptions extends FitOptions {
  folds: number;
  seed: number;
  threads?: number;
  /** The fit's worker threads, borrowed by each refit (see FitRunOptions.pool). */
  pool?: FitPool;
  /** Near-duplicate groups (same id = same fold), -1 for none. */
  groups?: Int32Array;
}

/** One flagged row. */
export interface FlaggedRow {
  row: number;
  label: number;
  suggested: number;
  probabilityOfLabel: number;
  probabilityOfSuggested: number;
}

/**
 * Out-of-fold class probabilities (n×K, row-major) from `folds` refits of the logistic head
 * (`fitLogisticRegression`, the trainer's fit) on `X`, then the confident-learning flags, most
 * suspicious first. A fold whose training part lacks a class is skipped (its rows get no
 * probabilities and are never flagged).
 */
export function findLabelErrors(
  X: Matrix,
  y: Int32Array,
  nClasses: number,
  opts: LabelErrorOptions,
): { flagged: FlaggedRow[]; proba: Float64Array; thresholds: number[]; foldsFit: number } {
  const n = X.n;
  const K = nClasses;
  const fold = groupedStratifiedFolds(y, opts.groups, opts.folds, opts.seed);
  const proba = new Float64Array(n * K).fill(Number.NaN);
  const classes = Array.from({ length: K }, (_, k) => String(k));
  let foldsFit = 0;
  for (let f = 0; f < opts.folds; f++) {
    const train: number[] = [];
    const held: number[] = [];
    for (let i = 0; i < n; i++) (fold[i] === f ? held : train).push(i);
    if (held.length === 0) continue;
    const present = new Set(train.map((i) => y[i] as number));
    if (present.size < K) continue;
    const fit = fitLogisticRegression(X, y, K, {
      C: opts.C,
      maxIter: opts.maxIter,
      tol: opts.tol,
      rows: Int32Array.from(train),
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      ...(opts.pool ? { pool: opts.pool } : {}),
    });
    const head = headFromFit(classes, fit, 'sketch');
    const sub = new Float32Array(held.length * X.d);
    held.forEach((i, r) => {
      sub.set(X.data.subarray(i * X.d, (i + 1) * X.d), r * X.d);
    });
    const p = predictProbaBatch(head, { data: sub, n: held.length, d: X.d });
    held.forEach((i, r) => {
      proba.set(p.subarray(r * K, (r + 1) * K), i * K);
    });
    foldsFit++;
  }

  // Per-class thresholds: mean self-confidence of the rows labelled with the class.
  const sum = new Array<number>(K).fill(0);
  const cnt = new Array<number>(K).fill(0);
  for (let i = 0; i < n; i++) {
    const c = y[i] as number;
    const p = proba[i * K + c] as number;
    if (Number.isNaN(p)) continue;
    sum[c] = (sum[c] as number) + p;
    cnt[c] = (cnt[c] as number) + 1;
  }
  const thresholds = sum.map((s, k) => ((cnt[k] as number) > 0 ? s / (cnt[k] as number) : 1));

  const flagged: FlaggedRow[] = [];
  for (let i = 0; i < n; i++) {
    const c = y[i] as number;
    if (Number.isNaN(proba[i * K] as number)) continue;
    let best = -1;
    for (let k = 0; k < K; k++) {
      const p = proba[i * K + k] as number;
      if (p >= (thresholds[k] as number) && (best < 0 || p > (proba[i * K + best] as number))) best = k;
    }
    if (best < 0 || best === c) continue;
    flagged.push({
      row: i,
      label: c,
      suggested: best,
      probabilityOfLabel: proba[i * K + c] as number,
      probabilityOfSuggested: proba[i * K + best] as number,
    });
  }
  flagged.sort(
    (a, b) =>
      a.probabilityOfLabel - a.probabilityOfSuggested - (b.probabilityOfLabel - b.probabilityOfSuggested) ||
      a.row - b.row,
  );
  return { flagged, proba, thresholds, foldsFit };
}
