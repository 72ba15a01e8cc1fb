import { describe, expect, it } from 'vitest';
import { InsufficientDataError } from '../../../lib/errors.ts';
import { renderReportHtml } from '../../../lib/report/model-report.ts';
import { predictProba } from '../../../lib/training/head.ts';
import {
  headFromModelDocument,
  parseModelDocument,
  parseReportDocument,
} from '../../../lib/training/model-document.ts';
import { stratifiedSplit } from '../../../lib/training/split.ts';
import { compareCodePoints, DEFAULT_TRAIN_OPTIONS, trainHead } from '../../../lib/training/train.ts';
import type { Matrix } from '../../../lib/training/types.ts';
import { matrixOf, multiclassInput, NOW, problem, SPEC } from './fixtures.ts';

describe('trainHead', () => {
  it('splits, fits, evaluates and returns documents that parse with the shared schemas', () => {
    const { X, labels } = multiclassInput();

    const { model, report } = trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW });

    expect(parseModelDocument(JSON.stringify(model))).toEqual(model);
    expect(parseReportDocument(JSON.parse(JSON.stringify(report)))).toEqual(report);
    expect(model.classes).toEqual(['bird', 'cat', 'dog']);
    expect(model.coef.length).toBe(3);
    expect(model.randomWeights).toBe(true);
    expect(model.trainedAt).toBe('2025-01-02T03:04:05.000Z');
    expect(report.counts).toMatchObject({ total: 90, train: 72, test: 18 });
    expect(report.counts.perClass.map((c) => c.test)).toEqual([6, 6, 6]);
    expect(report.evaluation).toBe('holdout');
    expect(report.confusionMatrix?.flat().reduce((a, b) => a + b, 0)).toBe(18);
    expect(report.perClass.map((s) => s.label)).toEqual(['bird', 'cat', 'dog']);
    expect(report.accuracy).toBeGreaterThan(0.8);
    expect(model.metrics).toMatchObject({ nTrain: 72, nTest: 18, accuracy: report.accuracy });
    expect(report.solver.name).toBe('lbfgs');
    expect(report.split).toEqual({ testSize: 0.2, seed: 42, stratified: true });
  });

  it('lists the held-out predictions with image keys when given the keys, matching the confusion matrix', () => {
    const { X, labels } = multiclassInput();
    const keys = labels.map((l, i) => `datasets/zoo/${l}/${i}.png`);

    const { report } = trainHead({ X, labels, keys, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW });
    const without = trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW }).report;
    const predictions = report.predictions ?? [];
    const counted = report.classes.map((t) =>
      report.classes.map((p) => predictions.filter((x) => x.true === t && x.predicted === p).length),
    );

    expect(parseReportDocument(JSON.parse(JSON.stringify(report)))).toEqual(report);
    expect(predictions).toHaveLength(report.counts.test);
    expect(counted).toEqual(report.confusionMatrix);
    for (const x of predictions) {
      const i = Number(/(\d+)\.png$/.exec(x.key)?.[1]);
      expect(x.true).toBe(labels[i]);
      expect(x.probabilities).toHaveLength(3);
      expect(x.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(report.classes[x.probabilities.indexOf(Math.max(...x.probabilities))]).toBe(x.predicted);
    }
    expect(without.predictions).toBeUndefined();
  });

  it('is deterministic: the same input gives the same documents', () => {
    const { X, labels } = multiclassInput();

    const a = trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW });
    const b = trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW });

    expect(b.model).toEqual(a.model);
    expect({ ...b.report, timingsMs: null }).toEqual({ ...a.report, timingsMs: null });
  });

  it('reports the confusion matrix of the shipped head on the held-out rows of the seeded split', () => {
    const { X, labels } = multiclassInput();
    const { model, report } = trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW });
    const head = headFromModelDocument(model);
    const y = Int32Array.from(labels, (l) => head.classes.indexOf(l));
    const { test } = stratifiedSplit(y, 0.2, 42);

    // Recount independently: predict each held-out row with the head.
    const cm = head.classes.map(() => head.classes.map(() => 0));
    for (const i of test) {
      const p = predictProba(head, X.data.subarray(i * X.d, (i + 1) * X.d));
      const row = cm[y[i] as number] as number[];
      const k = p.indexOf(Math.max(...p));
      row[k] = (row[k] as number) + 1;
    }

    expect(report.confusionMatrix).toEqual(cm);
    const diag = cm.reduce((a, row, k) => a + (row[k] as number), 0);
    expect(report.accuracy).toBe(diag / test.length);
  });

  it('refits on all samples when asked and says so in the report', () => {
    const { X, labels } = multiclassInput();
    const options = { ...DEFAULT_TRAIN_OPTIONS, refitOnAll: true };

    const plain = trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW });
    const refit = trainHead({ X, labels, spec: SPEC, options, now: NOW });

    expect(refit.report.accuracy).toBe(plain.report.accuracy);
    expect(refit.model.coef).not.toEqual(plain.model.coef);
    expect(refit.model.metrics.nTrain).toBe(90);
    expect(refit.report.refitSolver?.nIter).toBeGreaterThan(0);
    expect(refit.report.note).toMatch(/refit on all 90 samples/);
    expect(refit.report.timingsMs.refit).toBeGreaterThanOrEqual(0);
  });

  it('fits on everything without test metrics for test size 0', () => {
    const { X, labels } = multiclassInput();

    const { model, report } = trainHead({
      X,
      labels,
      spec: SPEC,
      options: { ...DEFAULT_TRAIN_OPTIONS, testSize: 0 },
      now: NOW,
    });

    expect(report.evaluation).toBe('none');
    expect(report.accuracy).toBeNull();
    expect(report.confusionMatrix).toBeNull();
    expect(report.perClass).toEqual([]);
    expect(report.note).toMatch(/no test metrics/);
    expect(model.metrics).toMatchObject({ accuracy: null, logLoss: null, nTrain: 90, nTest: 0 });
    expect(() => parseReportDocument(report)).not.toThrow();
  });

  it('names the labels with fewer than 2 samples', () => {
    const X: Matrix = { data: new Float32Array(5 * 2), n: 5, d: 2 };
    const labels = ['cat', 'cat', 'dog', 'emu', 'cat'];

    const run = () => trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS });

    expect(run).toThrow(InsufficientDataError);
    expect(run).toThrow(/too few for 'dog' \(1\), 'emu' \(1\)/);
  });

  it('refuses a single label', () => {
    const X: Matrix = { data: new Float32Array(3 * 2), n: 3, d: 2 };

    expect(() =>
      trainHead({ X, labels: ['cat', 'cat', 'cat'], spec: SPEC, options: DEFAULT_TRAIN_OPTIONS }),
    ).toThrow(/only one label \('cat'\)/);
  });

  it('sorts classes by code point like numpy, and records a non-random spec as real weights', () => {
    const p = problem('binary');
    const { X } = matrixOf(p);
    const labels = p.y.map((l) => (l === 'cat' ? 'Zebra' : 'apple'));

    const { model } = trainHead({
      X,
      labels,
      spec: 'vgg16/3f2a9c0d11e4b7a1/150x150/flatten/caffe/bilinear',
      options: DEFAULT_TRAIN_OPTIONS,
    });

    expect(model.classes).toEqual(['Zebra', 'apple']);
    expect(model.randomWeights).toBe(false);
    expect(['😀', 'ｚ'].sort(compareCodePoints)).toEqual(['ｚ', '😀']);
  });
});

describe('model and report documents', () => {
  it('round-trips a model through JSON into a head that predicts the same', () => {
    const { X, labels } = multiclassInput();
    const { model } = trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW });
    const x = X.data.subarray(0, X.d);

    const loaded = headFromModelDocument(parseModelDocument(JSON.stringify(model)));

    expect(predictProba(loaded, x)).toEqual(predictProba(headFromModelDocument(model), x));
  });

  it('rejects a model whose coefficient shape does not fit its classes, saying why', () => {
    const { X, labels } = multiclassInput();
    const { model } = trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW });

    expect(() => parseModelDocument({ ...model, coef: model.coef.slice(0, 2) })).toThrow(/3 coefficient row/);
    expect(() => parseModelDocument({ ...model, format: 'other' })).toThrow(
      /model.json is not valid: format/,
    );
    expect(() => parseModelDocument('{not json')).toThrow(/not JSON/);
  });

  it('renders a self-contained HTML report with escaped labels', () => {
    const p = problem('binary');
    const { X } = matrixOf(p);
    const labels = p.y.map((l) => (l === 'cat' ? '<script>alert(1)</script>' : 'dog & co'));
    const { report } = trainHead({ X, labels, spec: SPEC, options: DEFAULT_TRAIN_OPTIONS, now: NOW });

    const html = renderReportHtml(report);

    expect(html).not.toContain('<script>');
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(html).toContain('dog &#38; co');
    expect(html).toContain('Confusion matrix');
    expect(html).toContain('seeded random VGG16 weights');
    expect(html).not.toMatch(/src=|href=/);
  });
});
