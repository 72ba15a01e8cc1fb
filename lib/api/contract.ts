/**
 * What each route of lib/api/routes.ts takes and answers, as zod schemas keyed by the route
 * (`'POST /datasets/{d}/predictions'`): the request schemas are the ones the route modules parse
 * with, the response schemas those of lib/api/schemas.ts. The OpenAPI document
 * (lib/api/openapi.ts) and the typed client (lib/api/typed-client.ts) are derived from this table
 * and lib/api/routes.ts, nothing else. A route without an entry still appears in the document
 * (path parameters from its path, its role as security, the shared error answers).
 */
import { z } from 'zod';
import { StartBatchBody } from '../batch/start.ts';
import { DatasetSettings } from '../capture/settings.ts';
import { DatasetName, MODEL_VERSION_RE } from '../storage/keys.ts';
import { ThumbnailQuery } from './images.ts';
import { CreateKeyInput } from './keys.ts';
import { CapturesQuery, LabelBody, MonitoringQuery, PoolLabelBody, SuggestionsQuery } from './loop.ts';
import { CurvesQuery, PredictionsQuery } from './model-report.ts';
import { PromoteRequest } from './model-versions.ts';
import { PREDICTION_MEDIA_TYPES, PredictionJsonBody } from './predict.ts';
import { ReindexBody } from './reindex.ts';
import type { RouteKey } from './routes.ts';
import {
  ApiKeyListSchema,
  BatchStartedSchema,
  BatchStatusSchema,
  CapturePageSchema,
  CaptureResultSchema,
  CreatedApiKeySchema,
  CurvesPageSchema,
  DatasetListSchema,
  DatasetStatusSchema,
  EXPORT_FORMATS,
  ExportResponseSchema,
  FailureListSchema,
  HealthResponseSchema,
  ModelResponseSchema,
  ModelVersionListSchema,
  MonitoringResponseSchema,
  PredictionResponseSchema,
  PredictionsPageSchema,
  PromoteResponseSchema,
  QualityResponseSchema,
  ReindexPageSchema,
  SettingsResponseSchema,
  SuggestionLabelledSchema,
  SuggestionsResponseSchema,
  TrainingStartedSchema,
  UploadsResponseSchema,
} from './schemas.ts';
import { TrainingBody } from './trainings.ts';
import { UploadRequest } from './uploads.ts';

/** A success answer that is not JSON (a page, a thumbnail, a script). */
export interface NonJsonAnswer {
  readonly mediaType: string;
  readonly description: string;
}

/** One route's schemas. Every field is optional but `summary`. */
export interface RouteSchemas {
  readonly summary: string;
  readonly description?: string;
  /** Path parameters; by default each `{name}` of the path is a string (`{d}`: a dataset name). */
  readonly params?: z.AnyZodObject;
  /** Query parameters (values arrive as strings). */
  readonly query?: z.AnyZodObject;
  /** JSON request body (the schema the route parses it with). */
  readonly body?: z.ZodTypeAny;
  /** The body may be left out (an empty body is the same as `{}`). */
  readonly bodyOptional?: boolean;
  /** Raw (non-JSON) request media types the route also takes, e.g. `image/*`. */
  readonly rawBody?: readonly string[];
  /** Success status. @default 200 */
  readonly status?: 200 | 201 | 202;
  /** JSON body of the success answer. */
  readonly response?: z.ZodTypeAny;
  /** The success answer when it is not JSON. */
  readonly answer?: NonJsonAnswer;
  /** Other non-error answers (e.g. a 302), with their JSON body. */
  readonly otherAnswers?: Readonly<Record<number, { description: string; response?: z.ZodTypeAny }>>;
}

/** `{d}`: every dataset path parameter is a dataset name (lib/api/http.ts `datasetParam`). */
export const PATH_PARAM_SCHEMAS: Readonly<Record<string, z.ZodString>> = {
  d: DatasetName,
};

const modelVersion = z
  .string()
  .regex(MODEL_VERSION_RE)
  .describe('a model version like 20260101T000000Z-abc123');

/** Query of `POST /datasets/{d}/predictions` (parsed by `parseTop` and `parseThresholdParam`). */
export const PredictionQuery = z.object({
  top: z
    .string()
    .regex(/^\d{1,6}$/)
    .optional()
    .describe('only the k most probable classes in `scores` (1..number of classes)'),
  threshold: z
    .string()
    .regex(/^(auto|0(\.\d+)?|1(\.0+)?)$/)
    .optional()
    .describe(
      "abstain below this confidence: a number 0..1, or `auto` (the label's threshold for the target precision)",
    ),
});

/** The OpenAPI document itself (`GET /openapi.json`). */
const OpenApiDocumentSchema = z.object({ openapi: z.string() }).passthrough();

/**
 * The schemas of each route. A new route adds an entry here under its key (`'METHOD /path'`, the
 * same as in lib/api/routes.ts); the key type makes a typo a compile error.
 */
export const ROUTE_SCHEMAS = {
  'GET /health': {
    summary: 'Engine, feature spec and loaded models of this container (503 when the extractor failed)',
    response: HealthResponseSchema,
    otherAnswers: {
      503: { description: 'the feature extractor failed to load', response: HealthResponseSchema },
    },
  },
  'GET /openapi.json': {
    summary: 'This document (OpenAPI 3.1, generated from the route table)',
    response: OpenApiDocumentSchema,
  },
  'GET /': {
    summary: 'The web console (one HTML page; its data calls send the key)',
    answer: { mediaType: 'text/html', description: 'the console page' },
  },
  'GET /console/ort/{file}': {
    summary: "The console's browser runtime files (onnxruntime-web)",
    answer: { mediaType: 'application/octet-stream', description: 'a wasm or JavaScript file' },
  },
  'GET /datasets': {
    summary: 'Datasets with image and label counts (a predict key sees only its datasets)',
    response: DatasetListSchema,
  },
  'GET /datasets/{d}': {
    summary: 'Images, features ready/failed/pending, labels, model, running/last training',
    query: z.object({
      timeline: z
        .enum(['true', 'false'])
        .optional()
        .describe('`true`: add where the last upload’s time went'),
    }),
    response: DatasetStatusSchema,
  },
  'POST /datasets/{d}/predictions': {
    summary: 'Predict one image with the promoted model',
    description:
      'The body is the raw image (`image/*` or `application/octet-stream`), or JSON with exactly one of `image` (base64, or a `data:` URL) and `key` (an image key under `datasets/{d}/`).',
    query: PredictionQuery,
    body: PredictionJsonBody,
    rawBody: PREDICTION_MEDIA_TYPES.filter((t) => t !== 'application/json'),
    response: PredictionResponseSchema,
  },
  'POST /datasets/{d}/trainings': {
    summary: 'Start a training (409 TrainingInProgress while one runs)',
    body: TrainingBody,
    bodyOptional: true,
    status: 202,
    response: TrainingStartedSchema,
  },
  'POST /datasets/{d}/reindex': {
    summary: 'Enqueue every image without a current feature (one page per call)',
    body: ReindexBody,
    bodyOptional: true,
    status: 202,
    response: ReindexPageSchema,
  },
  'POST /datasets/{d}/uploads': {
    summary: 'Presigned PUT URLs for images',
    body: UploadRequest,
    response: UploadsResponseSchema,
  },
  'GET /datasets/{d}/images': {
    summary: "A JPEG thumbnail of one of the dataset's images",
    query: ThumbnailQuery,
    answer: { mediaType: 'image/jpeg', description: 'the thumbnail' },
  },
  'GET /datasets/{d}/model': {
    summary: 'The promoted model (without weights) and its report',
    response: ModelResponseSchema,
  },
  'GET /datasets/{d}/settings': {
    summary: 'The dataset’s settings: the capture policy of production predictions, monitoring on/off',
    response: SettingsResponseSchema,
  },
  'PUT /datasets/{d}/settings': {
    summary: 'Replaces the dataset’s settings (rates from 0 to 1)',
    body: DatasetSettings,
    response: SettingsResponseSchema,
  },
  'GET /datasets/{d}/captures': {
    summary:
      'Captured predictions left to review: most uncertain first (smallest top-two margin) or newest first',
    query: CapturesQuery,
    response: CapturePageSchema,
  },
  'POST /datasets/{d}/captures/{id}/label': {
    summary:
      'Labels a capture: its image is copied into datasets/{d}/{label}/ (an upload: features, then a retrain)',
    body: LabelBody,
    response: CaptureResultSchema,
  },
  'POST /datasets/{d}/captures/{id}/undo': {
    summary: 'Undoes a review: back into the queue; a labelled copy is deleted',
    response: CaptureResultSchema,
  },
  'DELETE /datasets/{d}/captures/{id}': {
    summary: 'Discards a capture (it leaves the review queue)',
    response: CaptureResultSchema,
  },
  'GET /datasets/{d}/monitoring': {
    summary: 'Per model version and day: predictions, label and confidence histograms, abstain rate, drift',
    query: MonitoringQuery,
    response: MonitoringResponseSchema,
  },
  'GET /datasets/{d}/suggestions': {
    summary: 'Unlabelled pool images ranked by what a label would teach the model (uncertain and varied)',
    query: SuggestionsQuery,
    response: SuggestionsResponseSchema,
  },
  'POST /datasets/{d}/suggestions/label': {
    summary: 'Labels a pool image: moved into datasets/{d}/{label}/',
    body: PoolLabelBody,
    response: SuggestionLabelledSchema,
  },
  'GET /datasets/{d}/model/predictions': {
    summary:
      'A page of the held-out predictions of a model (filter by true and predicted class: a confusion cell)',
    query: PredictionsQuery,
    response: PredictionsPageSchema,
  },
  'GET /datasets/{d}/model/curves': {
    summary: 'A page of the precision/recall curve points behind the per-class thresholds',
    query: CurvesQuery,
    response: CurvesPageSchema,
  },
  'GET /datasets/{d}/model/export': {
    summary: 'A presigned URL of the one-file ONNX model: a redirect, or JSON with `redirect=false`',
    query: z.object({
      format: z.enum(EXPORT_FORMATS).optional(),
      version: modelVersion.optional(),
      redirect: z.enum(['false']).optional().describe('`false`: answer 200 with the URL instead of a 302'),
    }),
    response: ExportResponseSchema,
    otherAnswers: {
      302: { description: 'redirect to the presigned URL (`Location`)', response: ExportResponseSchema },
    },
  },
  'GET /datasets/{d}/quality': {
    summary: 'The newest quality.json (duplicates, conflicts, leaks, likely label errors)',
    query: z.object({ version: modelVersion.optional() }),
    response: QualityResponseSchema,
  },
  'POST /datasets/{d}/model/promote': {
    summary: 'Promote a model version, or roll back to one',
    body: PromoteRequest,
    response: PromoteResponseSchema,
  },
  'GET /datasets/{d}/models': {
    summary: 'Model versions, newest first, with accuracy and date',
    response: ModelVersionListSchema,
  },
  'GET /datasets/{d}/failures': {
    summary: 'Images that cannot be used, with their error codes',
    response: FailureListSchema,
  },
  'POST /datasets/{d}/batches': {
    summary: 'Start batch predictions over an S3 prefix',
    body: StartBatchBody,
    status: 202,
    response: BatchStartedSchema,
  },
  'GET /datasets/{d}/batches/{id}': {
    summary: 'The status of a batch, and its result keys once it succeeded',
    response: BatchStatusSchema,
  },
  'GET /keys': {
    summary: 'Scoped API keys (never their values)',
    response: ApiKeyListSchema,
  },
  'POST /keys': {
    summary: 'Create a scoped API key (its value is shown only in this answer)',
    body: CreateKeyInput,
    status: 201,
    response: CreatedApiKeySchema,
  },
  'DELETE /keys/{id}': {
    summary: 'Revoke an API key (not the one making the request)',
    response: z.object({ revoked: z.string() }),
  },
} as const satisfies { readonly [K in RouteKey]?: RouteSchemas };

/** The schemas declared for a route, if any. */
export function routeSchemas(key: string): RouteSchemas | undefined {
  return (ROUTE_SCHEMAS as Readonly<Record<string, RouteSchemas>>)[key];
}
