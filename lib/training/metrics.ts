import { ValidationError } from '../errors.ts';
import { formatFixed } from '../util/format.ts';

/**
 * Classification metrics with scikit-learn's definitions (`sklearn.metrics`), so numbers in our
 * reports can be checked against it: labels are class indices 0..K-1 into a label list.
 */

/** Precision, recall and F1 of one class or one average, with its support. */
export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** Per-class scores with the class label. */
export interface LabelScores extends ClassScores {
  label: string;
}

/** What `classification_report(output_dict=True)` holds, in our names. */
export interface ClassificationReport {
  perClass: LabelScores[];
  accuracy: number;
  macroAvg: ClassScores;
  weightedAvg: ClassScores;
  /**
   * Micro average, present only when some label occurs in neither the true nor the predicted
   * labels (scikit-learn then prints a "micro avg" row instead of "accuracy").
   */
  microAvg?: ClassScores;
}

/** scikit-learn's default `log_loss` clipping for float64 probabilities (`np.finfo(float).eps`). */
export const LOG_LOSS_EPS = 2.220446049250313e-16;

function checkSameLength(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): void {
  if (yTrue.length !== yPred.length)
    throw new ValidationError(`${yTrue.length} true labels but ${yPred.length} predictions`);
}

/** Fraction of samples whose prediction equals the truth (`accuracy_score`); 0 for no samples. */
export function accuracy(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  checkSameLength(yTrue, yPred);
  if (yTrue.length === 0) return 0;
  let ok = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) ok++;
  return ok / yTrue.length;
}

/**
 * Mean cross-entropy (`log_loss(y_true, proba, labels=range(K))`): each row of the n×K
 * probability matrix is clipped to [eps, 1-eps] and renormalized, like scikit-learn.
 */
export function logLoss(
  yTrue: ArrayLike<number>,
  proba: Float64Array,
  K: number,
  eps = LOG_LOSS_EPS,
): number {
  const n = yTrue.length;
  if (proba.length !== n * K) throw new ValidationError(`probabilities are not ${n}×${K}`);
  if (n === 0) return 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let k = 0; k < K; k++) sum += clip(proba[i * K + k] as number, eps);
    const t = yTrue[i] as number;
    if (!(t >= 0 && t < K)) throw new ValidationError(`label ${t} is not in 0..${K - 1}`);
    total += -Math.log(clip(proba[i * K + t] as number, eps) / sum);
  }
  return total / n;
}

function clip(p: number, eps: number): number {
  return Math.min(Math.max(p, eps), 1 - eps);
}

/** K×K counts: rows = true class, columns = predicted class, in label index order. */
export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, K: number): number[][] {
  checkSameLength(yTrue, yPred);
  const cm = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i] as number;
    const p = yPred[i] as number;
    const row = cm[t];
    if (!row || !(p >= 0 && p < K))
      throw new ValidationError(`label ${t} or prediction ${p} is not in 0..${K - 1}`);
    row[p] = (row[p] as number) + 1;
  }
  return cm;
}

/** x / y, or 0 when y is 0 (scikit-learn's `zero_division` default: warn and use 0). */
function divide(x: number, y: number): number {
  return y === 0 ? 0 : x / y;
}

/** F1 as scikit-learn 1.2 computes it: 2·p·r / (p + r), 0 when p + r is 0. */
function f1(p: number, r: number): number {
  const denom = p + r;
  return (2 * p * r) / (denom === 0 ? 1 : denom);
}

/**
 * Per-class precision / recall / F1 / support, accuracy, macro and weighted averages
 * (`classification_report(y_true, y_pred, labels=range(K), target_names=labels, output_dict=True)`).
 */
export function classificationReport(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  labels: readonly string[],
): ClassificationReport {
  const K = labels.length;
  const cm = confusionMatrix(yTrue, yPred, K);
  const tp = cm.map((row, k) => row[k] as number);
  const trueSum = cm.map((row) => row.reduce((a, b) => a + b, 0));
  const predSum = labels.map((_, k) => cm.reduce((a, row) => a + (row[k] as number), 0));
  const perClass: LabelScores[] = labels.map((label, k) => {
    const precision = divide(tp[k] as number, predSum[k] as number);
    const recall = divide(tp[k] as number, trueSum[k] as number);
    return { label, precision, recall, f1: f1(precision, recall), support: trueSum[k] as number };
  });
  const total = trueSum.reduce((a, b) => a + b, 0);
  const avg = (weights: number[] | null): ClassScores => {
    const wsum = weights ? weights.reduce((a, b) => a + b, 0) : K;
    const mean = (get: (s: LabelScores) => number) =>
      wsum === 0
        ? 0
        : perClass.reduce((a, s, k) => a + get(s) * (weights ? (weights[k] as number) : 1), 0) / wsum;
    return {
      precision: mean((s) => s.precision),
      recall: mean((s) => s.recall),
      f1: mean((s) => s.f1),
      support: total,
    };
  };
  const report: ClassificationReport = {
    perClass,
    accuracy: accuracy(yTrue, yPred),
    macroAvg: avg(null),
    weightedAvg: avg(trueSum),
  };
  const absent = labels.some((_, k) => trueSum[k] === 0 && predSum[k] === 0);
  if (absent) {
    const tpAll = tp.reduce((a, b) => a + b, 0);
    const p = divide(
      tpAll,
      predSum.reduce((a, b) => a + b, 0),
    );
    const r = divide(tpAll, total);
    report.microAvg = { precision: p, recall: r, f1: f1(p, r), support: total };
  }
  return report;
}

/** Length in code points (what Python's `len` and format widths count). */
function width(s: string): number {
  return [...s].length;
}

function padLeft(s: string, w: number): string {
  const n = width(s);
  return n >= w ? s : ' '.repeat(w - n) + s;
}

function padRight(s: string, w: number): string {
  const n = width(s);
  return n >= w ? s : s + ' '.repeat(w - n);
}

/**
 * The text of scikit-learn's `classification_report(..., digits)`: same columns, widths,
 * blank lines and rounding, e.g.
 * ```
 *               precision    recall  f1-score   support
 *
 *          cat       0.90      0.95      0.92        20
 *          dog       0.94      0.89      0.92        19
 *
 *     accuracy                           0.92        39
 *    macro avg       0.92      0.92      0.92        39
 * weighted avg       0.92      0.92      0.92        39
 * ```
 */
export function formatClassificationReport(
  report: Pick<ClassificationReport, 'perClass' | 'accuracy' | 'macroAvg' | 'weightedAvg' | 'microAvg'>,
  digits = 2,
): string {
  const headers = ['precision', 'recall', 'f1-score', 'support'];
  const w = Math.max(...report.perClass.map((s) => width(s.label)), width('weighted avg'), digits);
  const num = (x: number) => padLeft(formatFixed(x, digits), 9);
  const row = (name: string, s: ClassScores) =>
    `${padLeft(name, w)}  ${num(s.precision)} ${num(s.recall)} ${num(s.f1)} ${padLeft(String(s.support), 9)}\n`;
  let out = `${padLeft('', w)}  ${headers.map((h) => padLeft(h, 9)).join(' ')}\n\n`;
  for (const s of report.perClass) out += row(s.label, s);
  out += '\n';
  const total = report.macroAvg.support;
  if (report.microAvg) out += row('micro avg', report.microAvg);
  else
    out += `${padLeft('accuracy', w)}  ${padLeft('', 9)} ${padLeft('', 9)} ${num(report.accuracy)} ${padLeft(String(total), 9)}\n`;
  out += row('macro avg', report.macroAvg);
  out += row('weighted avg', report.weightedAvg);
  return out;
}

/**
 * A confusion matrix as a text table: rows are true labels, columns predicted labels.
 * ```
 * true \ predicted  cat  dog
 * cat                19    1
 * dog                 2   17
 * ```
 */
export function formatConfusionMatrix(cm: readonly (readonly number[])[], labels: readonly string[]): string {
  const corner = 'true \\ predicted';
  const first = Math.max(width(corner), ...labels.map(width));
  const cols = labels.map((l, k) => Math.max(width(l), ...cm.map((row) => String(row[k] ?? 0).length)));
  const lines = [
    `${padRight(corner, first)}  ${labels.map((l, k) => padLeft(l, cols[k] as number)).join('  ')}`,
  ];
  cm.forEach((row, t) => {
    lines.push(
      `${padRight(labels[t] ?? String(t), first)}  ${row.map((v, k) => padLeft(String(v), cols[k] as number)).join('  ')}`,
    );
  });
  return `${lines.join('\n')}\n`;
}
