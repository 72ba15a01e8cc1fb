import { describe, expect, it } from 'vitest';
import {
  accuracy,
  classificationReport,
  confusionMatrix,
  formatClassificationReport,
  formatConfusionMatrix,
  logLoss,
} from '../../../lib/training/metrics.ts';
import { logisticFixture, type MetricsCase, metricsFixture, type SklearnMetrics } from './fixtures.ts';

type Scores = { precision: number; recall: number; 'f1-score': number; support: number };

/** Our report next to scikit-learn's `output_dict`. */
function expectSameReport(
  ours: ReturnType<typeof classificationReport>,
  theirs: SklearnMetrics['report'],
  labels: string[],
) {
  labels.forEach((label, k) => {
    const s = theirs[label] as Scores;
    const o = ours.perClass[k];
    expect(o?.label).toBe(label);
    expect(o?.precision).toBeCloseTo(s.precision, 12);
    expect(o?.recall).toBeCloseTo(s.recall, 12);
    expect(o?.f1).toBeCloseTo(s['f1-score'], 12);
    expect(o?.support).toBe(s.support);
  });
  for (const [key, avg] of [
    ['macro avg', ours.macroAvg],
    ['weighted avg', ours.weightedAvg],
  ] as const) {
    const s = theirs[key] as Scores;
    expect(avg.precision).toBeCloseTo(s.precision, 12);
    expect(avg.recall).toBeCloseTo(s.recall, 12);
    expect(avg.f1).toBeCloseTo(s['f1-score'], 12);
    expect(avg.support).toBe(s.support);
  }
  if ('accuracy' in theirs) {
    expect(ours.microAvg).toBeUndefined();
    expect(ours.accuracy).toBeCloseTo(theirs.accuracy as number, 12);
  } else {
    const s = theirs['micro avg'] as Scores;
    expect(ours.microAvg?.precision).toBeCloseTo(s.precision, 12);
    expect(ours.microAvg?.f1).toBeCloseTo(s['f1-score'], 12);
  }
}

function probaOf(c: MetricsCase): Float64Array {
  return Float64Array.from(c.proba.flat());
}

describe('metrics against scikit-learn', () => {
  it.each(metricsFixture.cases.map((c, i) => [i, c] as const))(
    'computes accuracy, log loss, confusion matrix and the report of hand-made case %i',
    (_, c) => {
      const K = c.labels.length;

      const report = classificationReport(c.y_true, c.y_pred, c.labels);

      expect(accuracy(c.y_true, c.y_pred)).toBeCloseTo(c.accuracy, 14);
      expect(logLoss(c.y_true, probaOf(c), K)).toBeCloseTo(c.log_loss, 12);
      expect(confusionMatrix(c.y_true, c.y_pred, K)).toEqual(c.confusion_matrix);
      expectSameReport(report, c.report, c.labels);
      expect(formatClassificationReport(report)).toBe(c.report_text);
    },
  );

  it.each(logisticFixture.problems.map((p) => [p.name, p] as const))(
    'reproduces the metrics and report text of the fixture problem %s',
    (_, p) => {
      const K = p.classes.length;
      const yTrue = p.y.map((l) => p.classes.indexOf(l));
      const proba = Float64Array.from(p.modern.predict_proba.flat());
      const yPred = p.modern.predict_proba.map((row) => row.indexOf(Math.max(...row)));

      const report = classificationReport(yTrue, yPred, p.classes);

      expect(report.accuracy).toBeCloseTo(p.metrics.accuracy, 14);
      expect(logLoss(yTrue, proba, K)).toBeCloseTo(p.metrics.log_loss, 12);
      expect(confusionMatrix(yTrue, yPred, K)).toEqual(p.metrics.confusion_matrix);
      expectSameReport(report, p.metrics.report, p.classes);
      expect(formatClassificationReport(report)).toBe(p.metrics.report_text);
    },
  );

  it('prints a zero-support label with zeros and switches to a micro avg row, like scikit-learn', () => {
    const c = metricsFixture.cases[0] as MetricsCase;

    const text = formatClassificationReport(classificationReport(c.y_true, c.y_pred, c.labels));

    expect(text).toContain('micro avg');
    expect(text).not.toContain('accuracy');
    expect(text).toMatch(/ {18}x {7}0\.00 {6}0\.00 {6}0\.00 {9}0\n/);
  });

  it('clips a zero probability of the true class instead of returning infinity', () => {
    const loss = logLoss([0], new Float64Array([0, 1]), 2);

    expect(loss).toBeCloseTo(-Math.log(2.220446049250313e-16), 10);
  });
});

describe('formatConfusionMatrix', () => {
  it('lays out true labels as rows and predicted labels as columns', () => {
    const text = formatConfusionMatrix(
      [
        [19, 1],
        [2, 117],
      ],
      ['cat', 'dog'],
    );

    expect(text.split('\n')).toEqual([
      'true \\ predicted  cat  dog',
      'cat                19    1',
      'dog                 2  117',
      '',
    ]);
  });
});
