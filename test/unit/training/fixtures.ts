/** Loads the scikit-learn reference answers made by scripts/fixtures/make-sklearn.py. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Matrix } from '../../../lib/training/types.ts';

const DIR = fileURLToPath(new URL('../../fixtures/sklearn/', import.meta.url));

export interface SklearnMetrics {
  accuracy: number;
  log_loss: number;
  confusion_matrix: number[][];
  report: Record<string, number | { precision: number; recall: number; 'f1-score': number; support: number }>;
  report_text: string;
}

export interface SklearnProblem {
  name: string;
  X: number[][];
  y: string[];
  classes: string[];
  C: number;
  tol: number;
  max_iter: number;
  sklearn: {
    coef: number[][];
    intercept: number[];
    n_iter: number;
    predict_proba: number[][];
    objective: number;
  };
  modern: {
    n_iter: number;
    status: number;
    nfev: number;
    coef: number[][];
    intercept: number[];
    fun_times_n: number;
    predict_proba: number[][];
  };
  metrics: SklearnMetrics;
  wrong?: { penalized_intercept: number[][]; two_row_softmax: number[][]; inverse_C: number[][] };
}

export interface MetricsCase extends SklearnMetrics {
  labels: string[];
  y_true: number[];
  y_pred: number[];
  proba: number[][];
}

export const logisticFixture = JSON.parse(readFileSync(`${DIR}logistic.json`, 'utf8')) as {
  meta: Record<string, string>;
  problems: SklearnProblem[];
};

export const metricsFixture = JSON.parse(readFileSync(`${DIR}metrics.json`, 'utf8')) as {
  meta: Record<string, string>;
  cases: MetricsCase[];
};

/** A fixture problem by name (throws if missing, so a renamed fixture fails loudly). */
export function problem(name: string): SklearnProblem {
  const p = logisticFixture.problems.find((q) => q.name === name);
  if (!p) throw new Error(`no fixture problem '${name}'`);
  return p;
}

/** The problem's X as a float32 matrix (optionally in shared memory) and y as class indices. */
export function matrixOf(p: SklearnProblem, shared = false): { X: Matrix; y: Int32Array } {
  const n = p.X.length;
  const d = p.X[0]?.length ?? 0;
  const data = new Float32Array(shared ? new SharedArrayBuffer(n * d * 4) : new ArrayBuffer(n * d * 4));
  p.X.forEach((row, i) => {
    data.set(row, i * d);
  });
  const y = Int32Array.from(p.y, (l) => p.classes.indexOf(l));
  return { X: { data, n, d }, y };
}

/** max |a - b| over two equally shaped number arrays (nested one level or flat). */
export function maxAbsDiff(
  a: readonly (number | readonly number[])[],
  b: readonly (number | readonly number[])[],
): number {
  const fa = a.flat() as number[];
  const fb = b.flat() as number[];
  if (fa.length !== fb.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < fa.length; i++) m = Math.max(m, Math.abs((fa[i] as number) - (fb[i] as number)));
  return m;
}

/** max |a - b| relative to the scale of b (max(1, max |b|)). */
export function relDiff(
  a: readonly (number | readonly number[])[],
  b: readonly (number | readonly number[])[],
): number {
  const scale = Math.max(1, ...(b.flat() as number[]).map(Math.abs));
  return maxAbsDiff(a, b) / scale;
}

/** Rows of an n×K Float64Array as nested arrays. */
export function rowsOf(a: Float64Array, K: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < a.length; i += K) out.push(Array.from(a.subarray(i, i + K)));
  return out;
}

/** Feature spec of the synthetic training problems. */
export const SPEC = 'vgg16/random-7/64x64/avg/caffe/bilinear';
/** Pinned clock of training tests. */
export const NOW = (): Date => new Date('2025-01-02T03:04:05.000Z');

/** The scikit-learn multiclass fixture as trainHead input. */
export function multiclassInput() {
  const p = problem('multiclass');
  const { X } = matrixOf(p);
  return { X, labels: p.y, p };
}
