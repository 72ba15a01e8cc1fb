/**
 * The API's response bodies as zod schemas: the route modules' answer types derive from them, the
 * OpenAPI document (lib/api/openapi.ts) is generated from them, and the CLI validates answers with
 * them. Only zod and lower floors' schemas here (nothing that loads sharp or the AWS SDK), so the
 * CLI can import this module cheaply and the console its types.
 */
import { z } from 'zod';
import type { BatchStatus } from '../batch/layout.ts';
import { CaptureDocument } from '../capture/captures.ts';
import { VersionDay } from '../capture/monitoring.ts';
import { DatasetSettings } from '../capture/settings.ts';
import { TRAINING_TRIGGERS } from '../features/messages.ts';
import type { ReindexPage } from '../pipeline/reindex.ts';
import { QualityDocumentSchema } from '../quality/document.ts';
import { CurrentPointer } from '../serving/current-pointer.ts';
import { ModelDocument } from '../training/model-document.ts';
import { CurveItemSchema, HeldOutPredictionSchema, ReportSummarySchema } from '../training/report-summary.ts';
import type { ApiKeyInfo, CreatedApiKey } from './keys.ts';

const count = z.number().int().nonnegative();

/** Every error answer, the function's and the gateway's (lib/api/errors.ts, lib/api/gateway.ts). */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string().describe('stable machine code, e.g. `NotFound`, `InvalidDatasetName`, `RouteNotFound`'),
    message: z.string().describe('what went wrong and what to do; for a 500 only the request id'),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** One class and its probability. */
export const ScoreSchema = z.object({ label: z.string(), probability: z.number() });
export type Score = z.infer<typeof ScoreSchema>;

/** `POST /datasets/{d}/predictions`. */
export const PredictionResponseSchema = z.object({
  dataset: z.string(),
  model: z.object({
    version: z.string(),
    trainedAt: z.string(),
    spec: z.string(),
    randomWeights: z.boolean(),
  }),
  label: z.string().nullable().describe('the top label, or null when the prediction abstained'),
  confidence: z.number(),
  abstained: z.boolean().describe('true when `threshold` was given and the confidence is below it'),
  threshold: z
    .number()
    .nullable()
    .optional()
    .describe("the threshold applied, when one was asked for (`auto`: the top label's; null if it has none)"),
  scores: z.array(ScoreSchema),
  captureId: z
    .string()
    .optional()
    .describe(
      'the stored capture, when this prediction was captured (`capture=true` or the dataset’s policy)',
    ),
  timingsMs: z.object({
    fetch: z.number().optional(),
    decode: z.number(),
    forward: z.number(),
    head: z.number(),
    observe: z
      .number()
      .optional()
      .describe(
        'after scoring: the monitoring record and the capture’s document (an image to capture is stored during the forward pass)',
      ),
    total: z.number(),
  }),
});
export type PredictionResponse = z.infer<typeof PredictionResponseSchema>;

/** One dataset of `GET /datasets`. */
export const DatasetListItemSchema = z.object({
  name: z.string(),
  images: count.describe('usable images (keys that follow the naming rules)'),
  labels: count,
  model: z.object({ version: z.string(), promotedAt: z.string() }).nullable(),
});
export type DatasetListItem = z.infer<typeof DatasetListItemSchema>;

/** `GET /datasets`. */
export const DatasetListSchema = z.object({ datasets: z.array(DatasetListItemSchema) });

/** Summary of a promoted model (no weights). */
export const ModelSummarySchema = z.object({
  version: z.string(),
  promotedAt: z.string(),
  trainedAt: z.string(),
  spec: z.string(),
  randomWeights: z.boolean(),
  classes: z.array(z.string()),
});
export type ModelSummary = z.infer<typeof ModelSummarySchema>;

/** A training execution as `GET /datasets/{d}` shows it. */
export const ExecutionSummarySchema = z.object({
  name: z.string(),
  executionArn: z.string(),
  status: z.string().describe("RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED (Step Functions' words)"),
  startedAt: z.string(),
  stoppedAt: z.string().nullable(),
  trigger: z.enum(TRAINING_TRIGGERS).nullable(),
  error: z.string().nullable(),
  cause: z.string().nullable(),
});
export type ExecutionSummary = z.infer<typeof ExecutionSummarySchema>;

/** Counts of one label. */
export const LabelReadinessSchema = z.object({ images: count, ready: count, failed: count, pending: count });

/** `GET /datasets/{d}`. */
/** One phase of a training execution (lib/api/executions.ts `phasesFromHistory`). */
export const ExecutionPhaseSchema = z.object({
  training: count.describe('which training of the execution (1 = the first; follow-ups count up)'),
  phase: z.string().describe('settle, readiness, train, promote or finish'),
  startedAt: z.string(),
  ms: z.number().nonnegative(),
  rounds: count.optional().describe('readiness checks in this phase'),
});

/**
 * `GET /datasets/{d}?timeline=true`: the ends of the extraction (from the listings) and the phases
 * of the newest training execution (from its history), so a user sees which wait took the time.
 */
export const DatasetTimelineSchema = z.object({
  firstUploadAt: z.string().nullable(),
  lastUploadAt: z.string().nullable(),
  lastFeatureAt: z
    .string()
    .nullable()
    .describe('the newest feature or error record: extraction of the present images ended'),
  promotedAt: z.string().nullable().describe('the promoted model’s promotedAt (current.json)'),
  phases: z.array(ExecutionPhaseSchema),
});
export type DatasetTimeline = z.infer<typeof DatasetTimelineSchema>;

export const DatasetStatusSchema = z.object({
  dataset: z.string(),
  images: z.object({ total: count, ready: count, failed: count, pending: count, skipped: count }),
  labels: z.record(LabelReadinessSchema),
  featuresSettled: z.boolean().describe('every usable image has a feature or an error record'),
  model: ModelSummarySchema.nullable(),
  lastTraining: z
    .object({ version: z.string(), at: z.string().nullable(), promoted: z.boolean() })
    .nullable(),
  lastExecution: ExecutionSummarySchema.nullable(),
  timeline: DatasetTimelineSchema.optional().describe(
    'with `?timeline=true`: where the last upload’s time went',
  ),
});
export type DatasetStatus = z.infer<typeof DatasetStatusSchema>;

/** The model part of `GET /datasets/{d}/model`: `model.json` without its weights, the summary, `previous`. */
export const ModelMetaSchema = ModelDocument.innerType()
  .omit({ coef: true, intercept: true })
  .merge(ModelSummarySchema)
  .extend({ previous: z.string().nullable() });

/**
 * `GET /datasets/{d}/model` (`report`: the summary of report.json, bounded by the class count —
 * lib/training/report-summary.ts; null when there is none). Held-out predictions and curves come
 * from `GET …/model/predictions` and `GET …/model/curves`.
 */
export const ModelResponseSchema = z.object({
  dataset: z.string(),
  model: ModelMetaSchema,
  report: ReportSummarySchema.nullable(),
});
export type ModelResponse = z.infer<typeof ModelResponseSchema>;

/** `POST /datasets/{d}/trainings` (202). */
export const TrainingStartedSchema = z.object({
  dataset: z.string(),
  executionArn: z.string(),
  executionName: z.string(),
  startedAt: z.string(),
});
export type TrainingStarted = z.infer<typeof TrainingStartedSchema>;

/** One model version of `GET /datasets/{d}/models`. */
export const ModelVersionItemSchema = z.object({
  version: z.string(),
  trainedAt: z.string().nullable(),
  complete: z.boolean().describe('false while training or after a failed one (no model.json)'),
  current: z.boolean(),
  accuracy: z.number().nullable(),
  classes: z.array(z.string()),
  randomWeights: z.boolean(),
});
export type ModelVersionItem = z.infer<typeof ModelVersionItemSchema>;

/** `GET /datasets/{d}/models`. */
export const ModelVersionListSchema = z.object({
  dataset: z.string(),
  current: z.string().nullable(),
  versions: z.array(ModelVersionItemSchema),
});

/** `POST /datasets/{d}/model/promote`. */
export const PromoteResponseSchema = z.object({
  dataset: z.string(),
  pointer: CurrentPointer,
  changed: z.boolean(),
});

/** One image that cannot be used. */
export const FailureItemSchema = z.object({
  key: z.string(),
  label: z.string(),
  code: z.string().nullable(),
  reason: z.string(),
});
export type FailureItem = z.infer<typeof FailureItemSchema>;

/** `GET /datasets/{d}/failures`. */
export const FailureListSchema = z.object({
  dataset: z.string(),
  total: count,
  failures: z.array(FailureItemSchema),
});

/** One presigned upload. */
export const PresignedUploadSchema = z.object({
  name: z.string(),
  label: z.string(),
  key: z.string(),
  method: z.literal('PUT'),
  url: z.string(),
  headers: z
    .record(z.string())
    .describe(
      'headers the PUT must send exactly (they are signed): content-type, and if-none-match: * unless `replace`',
    ),
  size: count.describe('the body’s exact size in bytes (content-length is signed too)'),
  replace: z.boolean().describe('whether this PUT may overwrite an existing object'),
});
export type PresignedUpload = z.infer<typeof PresignedUploadSchema>;

/** `POST /datasets/{d}/uploads`. */
export const UploadsResponseSchema = z.object({
  dataset: z.string(),
  expiresAt: z.string(),
  uploads: z.array(PresignedUploadSchema),
  rejected: z.array(z.object({ name: z.string(), label: z.string(), reason: z.string() })),
});
export type UploadsResponse = z.infer<typeof UploadsResponseSchema>;

/** Export formats of `GET /datasets/{d}/model/export`. */
export const EXPORT_FORMATS = ['onnx'] as const;

/** `GET /datasets/{d}/model/export` (the 302's body, or the 200 with `redirect=false`). */
export const ExportResponseSchema = z.object({
  dataset: z.string(),
  version: z.string(),
  format: z.enum(EXPORT_FORMATS),
  url: z.string(),
  bytes: count,
  expiresInSeconds: z.number(),
});
export type ExportResponse = z.infer<typeof ExportResponseSchema>;

/** `GET /health`. */
export const HealthResponseSchema = z.object({
  status: z.enum(['ok', 'loading', 'failed']).describe('`failed` answers 503'),
  backend: z.enum(['tensorflow', 'onnx', 'wasm', 'cpu']).nullable(),
  spec: z.string().nullable(),
  dims: z.number().nullable(),
  randomWeights: z.boolean().nullable(),
  warnings: z.array(z.string()),
  cachedModels: count.describe(
    "how many datasets' models this container holds (never which: the route needs no key)",
  ),
  queue: z.object({ waiting: count, passes: count, images: count, largestBatch: count }).nullable(),
});
export type HealthResponse = z.infer<typeof HealthResponseSchema>;

/** A key as listed (never its value). */
export const ApiKeyInfoSchema = z.object({
  id: z.string(),
  name: z.string(),
  enabled: z.boolean(),
  createdAt: z.string().nullable(),
  role: z.enum(['admin', 'predict']),
  datasets: z.array(z.string()).describe('datasets of a predict key; empty for admin (all datasets)'),
}) satisfies z.ZodType<ApiKeyInfo>;

/** `POST /keys` (201): the only answer that shows the key's value. */
export const CreatedApiKeySchema = ApiKeyInfoSchema.extend({
  value: z.string().min(1),
}) satisfies z.ZodType<CreatedApiKey>;

/** `GET /keys`. */
export const ApiKeyListSchema = z.object({ keys: z.array(ApiKeyInfoSchema) });

/** `POST /datasets/{d}/batches` (202). */
export const BatchStartedSchema = z.object({ id: z.string(), status: z.literal('running') });

/** `GET /datasets/{d}/batches/{id}`. */
export const BatchStatusSchema = z.object({
  id: z.string(),
  status: z.enum(['running', 'succeeded', 'failed']),
  counts: z.object({ total: count, done: count, failed: count }),
  results: z.object({ jsonl: z.string(), csv: z.string(), summary: z.string() }),
  modelVersion: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
}) satisfies z.ZodType<BatchStatus>;

/** `POST /datasets/{d}/reindex` (202). */
export const ReindexPageSchema = z.object({
  dataset: z.string(),
  scanned: count,
  enqueued: count,
  current: count,
  skipped: count,
  nextToken: z.string().nullable().describe('pass back as `token` for the next page; null when done'),
}) satisfies z.ZodType<ReindexPage>;

/** `GET /datasets/{d}/quality`: quality.json (passed through as stored when it is older than its schema). */
export const QualityResponseSchema = QualityDocumentSchema;

/** `GET /datasets/{d}/model/predictions`: a page of held-out predictions. */
export const PredictionsPageSchema = z.object({
  dataset: z.string(),
  version: z.string(),
  classes: z.array(z.string()),
  items: z.array(HeldOutPredictionSchema),
  total: count.describe('predictions matching the filter over all pages'),
  limit: count,
  nextToken: z.string().nullable(),
});

/** `GET /datasets/{d}/model/curves`: a page of precision/recall curve points. */
export const CurvesPageSchema = z.object({
  dataset: z.string(),
  version: z.string(),
  items: z.array(CurveItemSchema),
  total: count,
  limit: count,
  nextToken: z.string().nullable(),
});

/** `GET`/`PUT /datasets/{d}/settings`. */
export const SettingsResponseSchema = z.object({ dataset: z.string(), settings: DatasetSettings });

/** `GET /datasets/{d}/captures`: captures left to review, one page. */
export const CapturePageSchema = z.object({
  dataset: z.string(),
  order: z.enum(['uncertain', 'recent']),
  captures: z.array(CaptureDocument),
  nextToken: z.string().optional().describe('pass as `token` for the next page; absent on the last'),
  pending: count.describe('captures still to review (all pages)'),
  reviewed: count.describe('captures reviewed and still stored'),
});

/** Label, discard or undo of one capture. */
export const CaptureResultSchema = z.object({ capture: CaptureDocument });

/** `GET /datasets/{d}/suggestions`. */
export const SuggestionsResponseSchema = z.object({
  dataset: z.string(),
  model: z.object({ version: z.string() }),
  pool: z.object({
    images: count,
    withFeatures: count,
    scored: count.describe('the newest pool images scored (at most 2,000)'),
    otherSpec: count.describe('pool features of another feature spec, left out'),
  }),
  suggestions: z.array(
    z.object({
      key: z.string().describe('the pool image, unlabelled/{d}/…'),
      label: z.string().describe('the model’s guess'),
      confidence: z.number(),
      margin: z.number().describe('top probability minus the second: small = uncertain'),
      scores: z.array(ScoreSchema),
    }),
  ),
});

/** `POST /datasets/{d}/suggestions/label`. */
export const SuggestionLabelledSchema = z.object({
  dataset: z.string(),
  key: z.string(),
  datasetKey: z.string(),
});

/** One model version over the monitoring window (lib/capture/monitoring.ts `VersionSummary`). */
export const VersionSummarySchema = VersionDay.extend({
  version: z.string(),
  abstainRate: z.number(),
  meanConfidence: z.number().nullable(),
  drift: z.object({
    labelPsi: z.number().nullable().describe('PSI of predicted-label shares against the held-out set'),
    meanConfidenceShift: z.number().nullable(),
    alert: z.boolean(),
    threshold: z.number().describe('the PSI above which `alert` is set'),
  }),
  days: z.array(VersionDay.extend({ day: z.string(), labelPsi: z.number().nullable() })),
});

/** `GET /datasets/{d}/monitoring`. */
export const MonitoringResponseSchema = z.object({
  dataset: z.string(),
  days: z.array(z.string()),
  versions: z.array(VersionSummarySchema),
});
