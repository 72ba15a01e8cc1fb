import { z } from 'zod';
import { UsageDocumentSchema } from '../cost/usage.ts';
import { ValidationError } from '../errors.ts';
import { isRandomWeights } from '../model/spec.ts';
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
