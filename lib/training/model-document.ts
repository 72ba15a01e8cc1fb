import { z } from 'zod';
import { UsageDocumentSchema } from '../cost/usage.ts';
import { ValidationError } from '../errors.ts';
import { isRandomWeights } from '../model/spec.ts';
import type { QualityDocument } from '../quality/document.ts';
import { renderQualityHtml } from '../quality/format.ts';
import { escapeHtml, formatFixed, formatPercent } from '../util/format.ts';
import { checkHead } from './head.ts';
import { ThresholdReportSchema, ThresholdsSchema } from './thresholds.ts';
import type { Head } from './types.ts';

/**
 * The JSON documents a training writes under `models/{d}/{version}/` (docs/ARCHITECTURE.md
 * "S3 layout", "Identities and formats"):
 * `model.json` (the head + how it was trained) and `report.json` (the evaluation).
 * The trainer Lambda, the CLI and the API all read and write them through these schemas.
 */

const finite = z.number().finite();
const count = z.number().int().nonnegative();

/** Options a head was trained with. */
export const TrainingOptionsSchema = z.object({
  C: z.number().positive(),
  maxIter: z.number().int().positive(),
  tol: z.number().nonnegative(),
  testSize: z.number().min(0).lt(1),
  seed: z.number().int(),
  refitOnAll: z.boolean(),
});
export type TrainingOptions = z.infer<typeof TrainingOptionsSchema>;

/** `model.json`. */
export const ModelDocument = z
  .object({
    format: z.literal('tlearn-head'),
    formatVersion: z.literal(1),
    dataset: z.string().optional(),
    version: z.string().optional(),
    /** Sorted labels (scikit-learn's `classes_`). */
    classes: z.array(z.string().min(1)).min(2),
    /** scikit-learn's shapes: [1][d] for two classes, [K][d] otherwise. */
    coef: z.array(z.array(finite).min(1)).min(1),
    intercept: z.array(finite).min(1),
    spec: z.string().min(1),
    trainedAt: z.string().datetime(),
    options: TrainingOptionsSchema,
    metrics: z.object({
      /** On the held-out test part; null when trained without one (testSize 0). */
      accuracy: z.number().min(0).max(1).nullable(),
      logLoss: z.number().nonnegative().nullable(),
      nTrain: count,
      nTest: count,
      /** Of the fit that produced these coefficients (the refit on all data when refitOnAll). */
      converged: z.boolean(),
      nIter: count,
    }),
    /** Trained on features of seeded random VGG16 weights (a demo, never a real model). */
    randomWeights: z.boolean(),
    /** Per-class confidence thresholds (`?threshold=auto`); absent without a holdout. */
    thresholds: ThresholdsSchema.optional(),
  })
  .superRefine((doc, ctx) => {
    try {
      checkHead({ classes: doc.classes, coef: doc.coef, intercept: doc.intercept, spec: doc.spec });
    } catch (err) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: err instanceof Error ? err.message : String(err),
      });
    }
    if (new Set(doc.classes).size !== doc.classes.length)
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'classes must be unique', path: ['classes'] });
  });
export type ModelDocument = z.infer<typeof ModelDocument>;

const ClassScoresSchema = z.object({
  precision: z.number().min(0).max(1),
  recall: z.number().min(0).max(1),
  f1: z.number().min(0).max(1),
  support: count,
});

const SolverSchema = z.object({
  name: z.literal('lbfgs'),
  nIter: count,
  converged: z.boolean(),
  /** Σ log losses + ‖W‖²/(2C) at the solution (see FitResult.objective). */
  objective: finite,
  nEval: count,
});

/** `report.json`. Test metrics are null / empty when there was no holdout (testSize 0). */
export const ReportDocument = z.object({
  format: z.literal('tlearn-report'),
  formatVersion: z.literal(1),
  dataset: z.string().optional(),
  version: z.string().optional(),
  spec: z.string().min(1),
  classes: z.array(z.string().min(1)).min(2),
  /** 'holdout': metrics are on the test part; 'none': no test part, no metrics (see `note`). */
  evaluation: z.enum(['holdout', 'none']),
  note: z.string().optional(),
  accuracy: z.number().min(0).max(1).nullable(),
  logLoss: z.number().nonnegative().nullable(),
  /** Rows = true class, columns = predicted class, both in `classes` order. */
  confusionMatrix: z.array(z.array(count)).nullable(),
  perClass: z.array(ClassScoresSchema.extend({ label: z.string() })),
  macroAvg: ClassScoresSchema.nullable(),
  weightedAvg: ClassScoresSchema.nullable(),
  /** Only when a label occurs in neither the test truth nor the predictions (see metrics.ts). */
  microAvg: ClassScoresSchema.optional(),
  counts: z.object({
    total: count,
    train: count,
    test: count,
    perClass: z.array(z.object({ label: z.string(), total: count, train: count, test: count })),
  }),
  split: z.object({ testSize: z.number().min(0).lt(1), seed: z.number().int(), stratified: z.literal(true) }),
  /** The fit evaluated on the test part. */
  solver: SolverSchema,
  /** The final fit on all samples, when refitOnAll (its coefficients are the model's). */
  refitSolver: SolverSchema.optional(),
  timingsMs: z.object({
    load: z.number().nonnegative().optional(),
    fit: z.number().nonnegative(),
    evaluate: z.number().nonnegative(),
    refit: z.number().nonnegative().optional(),
  }),
  trainedAt: z.string().datetime(),
  /**
   * The held-out predictions (the console's confusion-matrix drill-down): image key, true and
   * predicted label, every class's probability in `classes` order. Absent in older reports and
   * when the trainer did not know the images' keys (`tlearn fit` on a features folder).
   */
  predictions: z
    .array(
      z.object({
        key: z.string(),
        true: z.string(),
        predicted: z.string(),
        probabilities: z.array(z.number().min(0).max(1)),
      }),
    )
    .optional(),
  /** Per-class thresholds with the precision/recall curves behind them; absent without a holdout. */
  thresholds: ThresholdReportSchema.optional(),
  /** AWS resources the training used and their list price (lib/cost/). */
  usage: UsageDocumentSchema.optional(),
});
export type ReportDocument = z.infer<typeof ReportDocument>;

/** Parses `model.json` (a string or parsed JSON); throws ValidationError saying what is wrong. */
export function parseModelDocument(json: unknown): ModelDocument {
  return parseWith(ModelDocument, json, 'model.json');
}

/** Parses `report.json`; throws ValidationError saying what is wrong. */
export function parseReportDocument(json: unknown): ReportDocument {
  return parseWith(ReportDocument, json, 'report.json');
}

function parseWith<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new ValidationError(`${what} is not JSON: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ValidationError(`${what} is not valid: ${issues}`, { cause: r.error });
  }
  return r.data;
}

/** The head of a model document (what `predictProba` needs). */
export function headFromModelDocument(doc: ModelDocument): Head {
  return {
    classes: [...doc.classes],
    coef: doc.coef.map((r) => [...r]),
    intercept: [...doc.intercept],
    spec: doc.spec,
  };
}

/** Whether a spec string names seeded random weights; false for specs that do not parse. */
export function specIsRandom(spec: string): boolean {
  try {
    return isRandomWeights(spec);
  } catch {
    return false; // not a parseable spec: it cannot claim random weights
  }
}

/**
 * A small self-contained HTML page of a report (no scripts, no external resources): accuracy,
 * log loss, confusion matrix, per-class table, counts and solver facts. Labels are escaped.
 */
export function renderReportHtml(report: ReportDocument, quality?: QualityDocument): string {
  const e = escapeHtml;
  const num = (x: number | null, digits = 2) => (x === null ? '—' : formatFixed(x, digits));
  const title = `tlearn report${report.dataset ? ` — ${report.dataset}` : ''}${report.version ? ` ${report.version}` : ''}`;
  const parts: string[] = [];
  parts.push(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
td.diag{background:#dff0d8;font-weight:600}
.note{background:#fff3cd;padding:.5rem 1rem;border-radius:4px}
code{font-size:12px}
</style></head><body>
<h1>${e(title)}</h1>
<p>Spec <code>${e(report.spec)}</code> · trained ${e(report.trainedAt)}</p>`);
  if (specIsRandom(report.spec))
    parts.push(
      '<p class="note"><strong>Demo model:</strong> these features come from seeded random VGG16 weights, not ImageNet ones.</p>',
    );
  if (report.note) parts.push(`<p class="note">${e(report.note)}</p>`);
  parts.push(`<h2>Summary</h2>
<table><tbody>
<tr><th>accuracy</th><td>${formatPercent(report.accuracy)}</td></tr>
<tr><th>log loss</th><td>${num(report.logLoss, 4)}</td></tr>
<tr><th>samples (train / test)</th><td>${report.counts.total} (${report.counts.train} / ${report.counts.test})</td></tr>
<tr><th>split</th><td>stratified, test size ${report.split.testSize}, seed ${report.split.seed}</td></tr>
<tr><th>solver</th><td>L-BFGS, ${report.solver.nIter} iterations, ${report.solver.converged ? 'converged' : '<strong>not converged</strong>'}</td></tr>
</tbody></table>`);
  if (report.confusionMatrix) {
    const head = report.classes.map((c) => `<th>${e(c)}</th>`).join('');
    const rows = report.confusionMatrix
      .map(
        (row, t) =>
          `<tr><th>${e(report.classes[t] ?? String(t))}</th>${row
            .map((v, p) => `<td${p === t ? ' class="diag"' : ''}>${v}</td>`)
            .join('')}</tr>`,
      )
      .join('\n');
    parts.push(`<h2>Confusion matrix</h2>
<p>Rows: true label · columns: predicted label</p>
<table><thead><tr><th>true \\ predicted</th>${head}</tr></thead><tbody>
${rows}
</tbody></table>`);
  }
  if (report.perClass.length > 0) {
    const row = (name: string, s: { precision: number; recall: number; f1: number; support: number }) =>
      `<tr><td>${e(name)}</td><td>${num(s.precision)}</td><td>${num(s.recall)}</td><td>${num(s.f1)}</td><td>${s.support}</td></tr>`;
    const body = report.perClass.map((s) => row(s.label, s));
    if (report.macroAvg) body.push(row('macro avg', report.macroAvg));
    if (report.weightedAvg) body.push(row('weighted avg', report.weightedAvg));
    parts.push(`<h2>Per class</h2>
<table><thead><tr><th>label</th><th>precision</th><th>recall</th><th>f1-score</th><th>support</th></tr></thead><tbody>
${body.join('\n')}
</tbody></table>`);
  }
  const counts = report.counts.perClass
    .map((c) => `<tr><td>${e(c.label)}</td><td>${c.total}</td><td>${c.train}</td><td>${c.test}</td></tr>`)
    .join('\n');
  parts.push(`<h2>Samples per class</h2>
<table><thead><tr><th>label</th><th>total</th><th>train</th><th>test</th></tr></thead><tbody>
${counts}
</tbody></table>`);
  if (quality) parts.push(renderQualityHtml(quality));
  parts.push(`</body></html>
`);
  return parts.join('\n');
}
