/**
 * Per-class confidence thresholds for a target precision ("none of these"): a
 * prediction whose confidence is below its label's threshold abstains (`label: null`).
 *
 * Computed by the trainer on the held-out predictions: for each class k, the held-out samples
 * *predicted* k, ranked by their probability of k. At a threshold t, precision(t) = the share of
 * them with p ≥ t whose true label is k; recall(t) = those correct ones over every held-out
 * sample of k. The threshold is the lowest t (one of the observed probabilities) with
 * precision(t) ≥ the target, so it keeps the most recall; null when no t reaches the target
 * (or no held-out sample was predicted k): `threshold=auto` then always abstains on that label.
 */
import { z } from 'zod';
import { ValidationError } from '../errors.ts';

/** Target precision when none is configured (docs/ARCHITECTURE.md "Export, thresholds, cost"). */
export const DEFAULT_TARGET_PRECISION = 0.95;

const unit = z.number().min(0).max(1);
const count = z.number().int().nonnegative();

/** One point of a class's precision/recall curve. */
export const CurvePointSchema = z.object({ threshold: unit, precision: unit, recall: unit });
export type CurvePoint = z.infer<typeof CurvePointSchema>;

/** A class's threshold and what it gave on the held-out samples. */
export const ClassThresholdSchema = z.object({
  label: z.string(),
  /** Lowest confidence reaching the target precision; null when none does. */
  threshold: unit.nullable(),
  /** Precision and recall on the held-out samples at that threshold (null with no threshold). */
  precision: unit.nullable(),
  recall: unit.nullable(),
  /** Held-out samples predicted as this class / truly of this class. */
  predicted: count,
  support: count,
});
export type ClassThreshold = z.infer<typeof ClassThresholdSchema>;

/** `thresholds` of `model.json`: what `?threshold=auto` uses. */
export const ThresholdsSchema = z.object({
  targetPrecision: z.number().gt(0).max(1),
  /** Held-out samples they were computed on. */
  samples: count,
  perClass: z.array(ClassThresholdSchema),
});
export type Thresholds = z.infer<typeof ThresholdsSchema>;

/** `thresholds` of `report.json`: the same plus each class's curve (descending thresholds). */
export const ThresholdReportSchema = ThresholdsSchema.extend({
  curves: z.array(z.object({ label: z.string(), points: z.array(CurvePointSchema) })),
});
export type ThresholdReport = z.infer<typeof ThresholdReportSchema>;

/** Checks a target precision (0 < p ≤ 1); throws ValidationError naming `what`. */
export function checkTargetPrecision(p: number, what = 'target precision'): number {
  if (!(Number.isFinite(p) && p > 0 && p <= 1))
    throw new ValidationError(`${what} must be a number in (0, 1] (got ${p})`);
  return p;
}

/**
 * Thresholds and precision/recall curves from held-out predictions.
 *
 * @param yTrue true class index of each held-out sample
 * @param proba n×K probabilities, row-major, columns in `classes` order
 * @example
 * // 2 held-out cats predicted cat at 0.9 (right) and 0.6 (wrong): precision 1 needs t = 0.9
 * computeThresholds(Int32Array.from([0, 1]), Float64Array.from([0.9, 0.1, 0.6, 0.4]), ['cat', 'dog'], 1)
 */
export function computeThresholds(
  yTrue: Int32Array,
  proba: Float64Array,
  classes: readonly string[],
  targetPrecision: number = DEFAULT_TARGET_PRECISION,
): ThresholdReport {
  checkTargetPrecision(targetPrecision);
  const K = classes.length;
  const n = yTrue.length;
  if (proba.length !== n * K)
    throw new ValidationError(`${proba.length} probabilities for ${n} samples of ${K} classes`);
  const support = new Array<number>(K).fill(0);
  const byClass: { p: number; correct: boolean }[][] = classes.map(() => []);
  for (let i = 0; i < n; i++) {
    const t = yTrue[i] as number;
    support[t] = (support[t] ?? 0) + 1;
    let best = 0;
    for (let k = 1; k < K; k++) if ((proba[i * K + k] as number) > (proba[i * K + best] as number)) best = k;
    byClass[best]?.push({ p: proba[i * K + best] as number, correct: best === t });
  }
  const perClass: ClassThreshold[] = [];
  const curves: ThresholdReport['curves'] = [];
  classes.forEach((label, k) => {
    const ranked = (byClass[k] ?? []).sort((a, b) => b.p - a.p);
    const sup = support[k] ?? 0;
    const points: CurvePoint[] = [];
    let tp = 0;
    let seen = 0;
    for (let i = 0; i < ranked.length; i++) {
      const r = ranked[i] as { p: number; correct: boolean };
      seen++;
      if (r.correct) tp++;
      // Ties share one threshold: a point only after the last sample of a probability value.
      if (i + 1 < ranked.length && (ranked[i + 1] as { p: number }).p === r.p) continue;
      points.push({ threshold: r.p, precision: tp / seen, recall: sup > 0 ? tp / sup : 0 });
    }
    let chosen: CurvePoint | undefined;
    for (const pt of points) if (pt.precision >= targetPrecision) chosen = pt; // the lowest such t
    perClass.push({
      label,
      threshold: chosen?.threshold ?? null,
      precision: chosen?.precision ?? null,
      recall: chosen?.recall ?? null,
      predicted: ranked.length,
      support: sup,
    });
    curves.push({ label, points });
  });
  return { targetPrecision, samples: n, perClass, curves };
}

/** The compact form stored in `model.json` (no curves). */
export function thresholdsForModel(report: ThresholdReport): Thresholds {
  const { curves: _curves, ...rest } = report;
  return rest;
}

/** A parsed `threshold` query parameter: none, `auto` (the model's), or a fixed confidence. */
export type ThresholdChoice = { kind: 'none' } | { kind: 'auto' } | { kind: 'fixed'; value: number };

/** Parses `?threshold=auto|0..1` (400 `InvalidThreshold` otherwise). */
export function parseThresholdParam(raw: string | undefined): ThresholdChoice {
  if (raw === undefined) return { kind: 'none' };
  if (raw === 'auto') return { kind: 'auto' };
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < 0 || v > 1) {
    throw new ValidationError(
      `query parameter threshold must be 'auto' or a number from 0 to 1 (got '${raw.slice(0, 40)}')`,
      { code: 'InvalidThreshold' },
    );
  }
  return { kind: 'fixed', value: v };
}

/** The outcome of applying a threshold to a prediction. */
export interface ThresholdOutcome {
  /** The predicted label, or null when the prediction abstains. */
  label: string | null;
  abstained: boolean;
  /** The threshold applied (null: none asked, or `auto` with no threshold for that label). */
  threshold: number | null;
}

/**
 * Applies a threshold choice to a top label and its confidence. `auto` uses the label's
 * threshold from `thresholds`; a label without one (its target precision was not reached on the
 * held-out samples) abstains. Throws ValidationError `NoThresholds` (400) when `auto` is asked of
 * a model trained without a holdout.
 */
export function applyThreshold(
  choice: ThresholdChoice,
  label: string,
  confidence: number,
  thresholds: Thresholds | undefined,
): ThresholdOutcome {
  if (choice.kind === 'none') return { label, abstained: false, threshold: null };
  let t: number | null;
  if (choice.kind === 'fixed') t = choice.value;
  else {
    if (thresholds === undefined) {
      throw new ValidationError(
        'this model has no thresholds (it was trained without a held-out part, or before thresholds existed); pass threshold=0..1 or retrain',
        { code: 'NoThresholds' },
      );
    }
    t = thresholds.perClass.find((c) => c.label === label)?.threshold ?? null;
  }
  const abstained = t === null || confidence < t;
  return { label: abstained ? null : label, abstained, threshold: t };
}
