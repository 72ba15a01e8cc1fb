import { describe, expect, it } from 'vitest';
import { predictProba } from '../../../lib/training/head.ts';
import { headFromModelDocument } from '../../../lib/training/model-document.ts';
import { stratifiedSplit } from '../../../lib/training/split.ts';
import {
  applyThreshold,
  computeThresholds,
  parseThresholdParam,
  thresholdsForModel,
} from '../../../lib/training/thresholds.ts';
import { DEFAULT_TRAIN_OPTIONS, trainHead } from '../../../lib/training/train.ts';
import { multiclassInput, NOW, SPEC } from './fixtures.ts';

/**
 * Six held-out samples of a, b, c, checked by hand:
 * predicted a at 0.9 (true a), 0.8 (true b), 0.7 (true a); b at 0.6 (true b), 0.5 (true c);
 * c at 0.4 (true c). Supports: 2 each.
 */
const CLASSES = ['a', 'b', 'c'];
const Y = Int32Array.from([0, 1, 0, 1, 2, 2]);
const P = Float64Array.from(
  [
    [0.9, 0.05, 0.05],
    [0.8, 0.1, 0.1],
    [0.7, 0.2, 0.1],
    [0.2, 0.6, 0.2],
    [0.3, 0.3, 0.4],
    [0.1, 0.5, 0.4],
  ].flat(),
);

describe('per-class confidence thresholds', () => {
  it('builds each class curve from the samples predicted as that class, highest confidence first', () => {
    const r = computeThresholds(Y, P, CLASSES, 0.95);

    expect(r.curves[0]).toEqual({
      label: 'a',
      points: [
        { threshold: 0.9, precision: 1, recall: 0.5 },
        { threshold: 0.8, precision: 0.5, recall: 0.5 },
        { threshold: 0.7, precision: 2 / 3, recall: 1 },
      ],
    });
    expect(r.curves[1]?.points).toEqual([
      { threshold: 0.6, precision: 1, recall: 0.5 },
      { threshold: 0.5, precision: 0.5, recall: 0.5 },
    ]);
    expect(r.curves[2]?.points).toEqual([{ threshold: 0.4, precision: 1, recall: 0.5 }]);
  });

  it('picks the lowest threshold that reaches the target precision', () => {
    const strict = computeThresholds(Y, P, CLASSES, 0.95);
    const loose = computeThresholds(Y, P, CLASSES, 0.6);

    expect(strict.perClass.map((c) => c.threshold)).toEqual([0.9, 0.6, 0.4]);
    expect(strict.perClass[0]).toEqual({
      label: 'a',
      threshold: 0.9,
      precision: 1,
      recall: 0.5,
      predicted: 3,
      support: 2,
    });
    // At 0.6 the lowest a-threshold with precision ≥ 0.6 is 0.7 (2/3), keeping all of a's recall.
    expect(loose.perClass[0]).toMatchObject({ threshold: 0.7, precision: 2 / 3, recall: 1 });
    expect(loose.perClass[1]).toMatchObject({ threshold: 0.6, precision: 1 });
  });

  it('gives no threshold to a class whose predictions never reach the target, and one point per tied confidence', () => {
    // Two samples predicted a at the same 0.7: one right, one wrong.
    const y = Int32Array.from([0, 1, 1]);
    const p = Float64Array.from([0.7, 0.3, 0.7, 0.3, 0.2, 0.8]);

    const r = computeThresholds(y, p, ['a', 'b'], 0.95);

    expect(r.curves[0]?.points).toEqual([{ threshold: 0.7, precision: 0.5, recall: 1 }]);
    expect(r.perClass[0]).toMatchObject({ threshold: null, precision: null, recall: null, predicted: 2 });
    expect(r.perClass[1]).toMatchObject({ threshold: 0.8, precision: 1, recall: 0.5 });
  });

  it('abstains below the threshold asked for and keeps the label at or above it', () => {
    const t = thresholdsForModel(computeThresholds(Y, P, CLASSES, 0.95));

    expect(applyThreshold({ kind: 'auto' }, 'a', 0.85, t)).toEqual({
      label: null,
      abstained: true,
      threshold: 0.9,
    });
    expect(applyThreshold({ kind: 'auto' }, 'a', 0.9, t)).toEqual({
      label: 'a',
      abstained: false,
      threshold: 0.9,
    });
    expect(applyThreshold({ kind: 'fixed', value: 0.5 }, 'b', 0.45, t)).toMatchObject({ abstained: true });
    expect(applyThreshold({ kind: 'none' }, 'b', 0.01, t)).toEqual({
      label: 'b',
      abstained: false,
      threshold: null,
    });
    expect(() => applyThreshold({ kind: 'auto' }, 'a', 0.9, undefined)).toThrow(/no thresholds/);
  });

  it('parses threshold=auto or a number from 0 to 1 and rejects anything else', () => {
    expect(parseThresholdParam(undefined)).toEqual({ kind: 'none' });
    expect(parseThresholdParam('auto')).toEqual({ kind: 'auto' });
    expect(parseThresholdParam('0.8')).toEqual({ kind: 'fixed', value: 0.8 });
    for (const bad of ['', '1.5', '-0.1', 'high', 'NaN'])
      expect(() => parseThresholdParam(bad)).toThrow(/threshold/);
  });

  it('is computed by the trainer on the held-out predictions and stored in model.json and report.json', () => {
    const { X, labels } = multiclassInput();

    const { model, report } = trainHead({
      X,
      labels,
      spec: SPEC,
      options: { ...DEFAULT_TRAIN_OPTIONS, targetPrecision: 0.9 },
      now: NOW,
    });

    // Recompute independently from the shipped head on the held-out rows of the seeded split.
    const head = headFromModelDocument(model);
    const y = Int32Array.from(labels, (l) => head.classes.indexOf(l));
    const { test } = stratifiedSplit(y, 0.2, 42);
    const proba = new Float64Array(test.length * head.classes.length);
    const yt = new Int32Array(test.length);
    test.forEach((i, r) => {
      proba.set(predictProba(head, X.data.subarray(i * X.d, (i + 1) * X.d)), r * head.classes.length);
      yt[r] = y[i] as number;
    });
    expect(report.thresholds).toEqual(computeThresholds(yt, proba, head.classes, 0.9));
    expect(model.thresholds).toEqual(thresholdsForModel(report.thresholds as never));
    expect(report.thresholds?.samples).toBe(report.counts.test);
  });

  it('is absent when there is no holdout', () => {
    const { X, labels } = multiclassInput();
    const { model, report } = trainHead({
      X,
      labels,
      spec: SPEC,
      options: { ...DEFAULT_TRAIN_OPTIONS, testSize: 0 },
      now: NOW,
    });
    expect(model.thresholds).toBeUndefined();
    expect(report.thresholds).toBeUndefined();
  });
});
