/**
 * report.json in parts whose size does not grow with the number of images (docs/ARCHITECTURE.md
 * "Tenancy"): a summary sized by the classes (metrics, confusion matrix, per-class table,
 * thresholds, the few most confidently wrong images) and pages of the two parts that grow with
 * the held-out images: the predictions and the precision/recall curves. A Lambda answer is at most
 * 6 MB, and report.json is ~11 MB at 200,000 held-out images, so the API never returns it whole.
 */
import { z } from 'zod';
import { ReportDocument } from './model-document.ts';
import { CurvePointSchema, ThresholdsSchema } from './thresholds.ts';

/** The limits of the summary and of each page (the numbers docs/ARCHITECTURE.md states). */
export const REPORT_LIMITS = {
  /** Most confidently wrong held-out images in the summary. */
  wrongest: 12,
  /** The summary carries the confusion matrix up to this many classes (K² counts: ≤ ~1.5 MB). */
  matrixClasses: 500,
  /** Held-out predictions per page: default and maximum. */
  predictionsPerPage: { default: 100, max: 500 },
  /** Probabilities per page (items × classes), so a page stays under ~1 MB with many classes. */
  probabilitiesPerPage: 100_000,
  /** Curve points per page: default and maximum (~60 bytes each). */
  curvePointsPerPage: { default: 1000, max: 5000 },
} as const;

const count = z.number().int().nonnegative();

/** One held-out prediction: image key, true and predicted label, probabilities in `classes` order. */
export const HeldOutPredictionSchema = ReportDocument.shape.predictions.unwrap().element;
export type HeldOutPrediction = z.infer<typeof HeldOutPredictionSchema>;

/** One point of one class's precision/recall curve, flattened for paging. */
export const CurveItemSchema = CurvePointSchema.extend({ label: z.string() });
export type CurveItem = z.infer<typeof CurveItemSchema>;

/** The report without what grows with the images; `heldOut` says how much the pages hold. */
export const ReportSummarySchema = ReportDocument.omit({ predictions: true, thresholds: true }).extend({
  /** Thresholds per class without their curves (`GET …/model/curves`). */
  thresholds: ThresholdsSchema.optional(),
  heldOut: z.object({
    /** Held-out predictions stored (`GET …/model/predictions`); null when the report has none. */
    predictions: count.nullable(),
    /** Curve points stored over all classes (`GET …/model/curves`); null without thresholds. */
    curvePoints: count.nullable(),
  }),
  /** The most confidently wrong held-out images, most confident first (at most `REPORT_LIMITS.wrongest`). */
  mostConfidentlyWrong: z.array(HeldOutPredictionSchema),
  /** Why a part was left out of the summary (the confusion matrix above `matrixClasses` classes). */
  omitted: z.array(z.string()).optional(),
});
export type ReportSummary = z.infer<typeof ReportSummarySchema>;

/** The confidence of a prediction in its predicted class. */
function confidence(p: HeldOutPrediction, classes: readonly string[]): number {
  return p.probabilities[classes.indexOf(p.predicted)] ?? 0;
}

/**
 * The summary of a report: everything but the held-out predictions and the curves, plus the most
 * confidently wrong predictions. Sized by the classes: K rows, K thresholds, K² matrix cells (left
 * out above `REPORT_LIMITS.matrixClasses`, with a line in `omitted`).
 *
 * @example summarizeReport(report).heldOut // { predictions: 40000, curvePoints: 40000 }
 */
export function summarizeReport(report: ReportDocument): ReportSummary {
  const { predictions, thresholds, ...rest } = report;
  const classes = report.classes;
  const wrongest = (predictions ?? [])
    .filter((p) => p.true !== p.predicted)
    .map((p) => ({ p, c: confidence(p, classes) }))
    .sort((a, b) => b.c - a.c)
    .slice(0, REPORT_LIMITS.wrongest)
    .map((x) => x.p);
  const omitted: string[] = [];
  let confusionMatrix = report.confusionMatrix;
  if (confusionMatrix && classes.length > REPORT_LIMITS.matrixClasses) {
    confusionMatrix = null;
    omitted.push(
      `confusionMatrix: ${classes.length} classes is over ${REPORT_LIMITS.matrixClasses} (${classes.length ** 2} cells); page a cell with GET …/model/predictions?true=&predicted=`,
    );
  }
  const summary: ReportSummary = {
    ...rest,
    confusionMatrix,
    heldOut: {
      predictions: predictions ? predictions.length : null,
      curvePoints: thresholds ? thresholds.curves.reduce((n, c) => n + c.points.length, 0) : null,
    },
    mostConfidentlyWrong: wrongest,
  };
  if (thresholds) {
    const { curves: _curves, ...withoutCurves } = thresholds;
    summary.thresholds = withoutCurves;
  }
  if (omitted.length > 0) summary.omitted = omitted;
  return summary;
}

/**
 * A report.json that does not match today's schema (an older trainer), as stored minus the parts
 * known to grow with the images, so even an old report cannot make the answer unbounded.
 */
export function trimUnknownReport(raw: Record<string, unknown>): Record<string, unknown> {
  const { predictions: _p, thresholds, ...rest } = raw;
  if (typeof thresholds === 'object' && thresholds !== null) {
    const { curves: _c, ...t } = thresholds as Record<string, unknown>;
    return { ...rest, thresholds: t };
  }
  return rest;
}

/** One page of items and where the next one starts (undefined: this was the last). */
export interface Page<T> {
  items: T[];
  /** Items matching the filter over all pages. */
  total: number;
  next: number | undefined;
}

/** Held-out predictions per page for a class count: the maximum, or fewer so probabilities stay bounded. */
export function maxPredictionsPerPage(classes: number): number {
  return Math.max(
    1,
    Math.min(
      REPORT_LIMITS.predictionsPerPage.max,
      Math.floor(REPORT_LIMITS.probabilitiesPerPage / Math.max(1, classes)),
    ),
  );
}

/**
 * A page of held-out predictions, in report order, optionally only one confusion-matrix cell (or
 * row / column): `trueLabel` and/or `predicted`. `offset` counts matching predictions.
 */
export function pagePredictions(
  report: ReportDocument,
  opts: { trueLabel?: string | undefined; predicted?: string | undefined; offset: number; limit: number },
): Page<HeldOutPrediction> {
  const all = report.predictions ?? [];
  const matching = all.filter(
    (p) =>
      (opts.trueLabel === undefined || p.true === opts.trueLabel) &&
      (opts.predicted === undefined || p.predicted === opts.predicted),
  );
  const end = opts.offset + opts.limit;
  return {
    items: matching.slice(opts.offset, end),
    total: matching.length,
    next: end < matching.length ? end : undefined,
  };
}

/** A page of precision/recall curve points, class by class (descending thresholds within each). */
export function pageCurvePoints(
  report: ReportDocument,
  opts: { label?: string | undefined; offset: number; limit: number },
): Page<CurveItem> {
  const curves = (report.thresholds?.curves ?? []).filter(
    (c) => opts.label === undefined || c.label === opts.label,
  );
  const total = curves.reduce((n, c) => n + c.points.length, 0);
  const items: CurveItem[] = [];
  let skip = opts.offset;
  for (const c of curves) {
    if (items.length >= opts.limit) break;
    if (skip >= c.points.length) {
      skip -= c.points.length;
      continue;
    }
    for (const point of c.points.slice(skip, skip + opts.limit - items.length))
      items.push({ label: c.label, ...point });
    skip = 0;
  }
  const end = opts.offset + items.length;
  return { items, total, next: end < total ? end : undefined };
}
