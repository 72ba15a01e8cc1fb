/**
 * Reports with many held-out predictions and the curves they give (seeded; about 70 % right), for
 * the tests of the bounded report answers (lib/training/report-summary.ts, lib/api/model-report.ts).
 */
import type { ReportDocument } from '../../lib/training/model-document.ts';
import { computeThresholds } from '../../lib/training/thresholds.ts';
import { seededRandom } from './images.ts';

/** `base` (its classes and dataset) with `n` held-out predictions, their confusion matrix and curves. */
export function reportWithPredictions(base: ReportDocument, n: number): ReportDocument {
  const classes = base.classes;
  const dataset = base.dataset ?? 'd';
  const rand = seededRandom(n);
  const K = classes.length;
  const yTrue = new Int32Array(n);
  const proba = new Float64Array(n * K);
  const predictions: NonNullable<ReportDocument['predictions']> = [];
  const matrix = classes.map(() => classes.map(() => 0));
  for (let i = 0; i < n; i++) {
    const t = i % K;
    const p = rand() < 0.7 ? t : (t + 1 + Math.floor(rand() * (K - 1))) % K;
    const raw = classes.map((_, k) => (k === p ? 1 + rand() * 3 : rand()));
    const sum = raw.reduce((a, b) => a + b, 0);
    const probs = raw.map((v) => Math.round((v / sum) * 1e6) / 1e6);
    yTrue[i] = t;
    probs.forEach((v, k) => {
      proba[i * K + k] = v;
    });
    const row = matrix[t];
    if (row) row[p] = (row[p] ?? 0) + 1;
    predictions.push({
      key: `datasets/${dataset}/${classes[t]}/${String(i).padStart(6, '0')}.jpg`,
      true: classes[t] ?? '',
      predicted: classes[p] ?? '',
      probabilities: probs,
    });
  }
  return {
    ...base,
    confusionMatrix: matrix,
    predictions,
    thresholds: computeThresholds(yTrue, proba, classes, 0.95),
  };
}
