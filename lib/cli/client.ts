import { z } from 'zod';
import type { DatasetStatus, ModelSummary } from '../api/datasets.ts';
import type { ExecutionSummary } from '../api/executions.ts';
import type { PredictionResponse } from '../api/predict.ts';
import type { startTrainingRoute } from '../api/trainings.ts';
import { TlearnError } from '../errors.ts';
import { TRAINING_TRIGGERS } from '../features/messages.ts';
import type { CurrentPointer } from '../pipeline/current-pointer.ts';
import type { LabelReadiness } from '../pipeline/readiness.ts';
import { type ModelDocument, ReportDocument, TrainingOptionsSchema } from '../training/model-document.ts';

/**
 * A small client of the HTTP API (DESIGN.md "HTTP API") for the CLI: one timeout per request,
 * `x-api-key` when set, errors mapped to ApiError (`{ error: { code, message } }` bodies) or
 * UnreachableError (nothing answered).
 */

/** The server answered with an error status. `code`/`message` come from its JSON error body. */
export class ApiError extends TlearnError {
  constructor(code: string, message: string, status: number, options?: { cause?: unknown }) {
    super(code, message, status, options);
  }
}

/** Nothing answered (connection refused, DNS, timeout): the CLI exits 4. */
export class UnreachableError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('Unreachable', message, 503, options);
  }
}

const UNREACHABLE_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (offline?)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'connection closed',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'no answer in time',
};

/**
 * Says why nothing answered, or undefined when `err` is not a network failure. Looks through
 * `cause` chains and AggregateErrors (Node tries IPv4 and IPv6 for `localhost`), for fetch
 * (undici) and AWS SDK (node-http-handler) errors alike.
 */
export function unreachableReason(err: unknown, depth = 0): string | undefined {
  if (depth > 5 || typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && UNREACHABLE_CODES[e.code] !== undefined) return UNREACHABLE_CODES[e.code];
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'no answer in time';
  if (err instanceof UnreachableError) return err.message;
  if (Array.isArray(e.errors))
    for (const inner of e.errors) {
      const r = unreachableReason(inner, depth + 1);
      if (r) return r;
    }
  return unreachableReason(e.cause, depth + 1);
}

/**
 * A schema whose output is the API's own type. The response types are imported from `lib/api/`
 * (type-only: nothing of the API is loaded), so when the API changes a field this file stops
 * compiling instead of the CLI misreading answers at run time.
 */
type SchemaOf<T> = z.ZodType<T, z.ZodTypeDef, unknown>;

const count = z.number().int().nonnegative();

/** A prediction (POST /datasets/{d}/predictions → `PredictionResponse` of lib/api/predict.ts). */
export const PredictionSchema: SchemaOf<PredictionResponse> = z.object({
  dataset: z.string(),
  model: z.object({
    version: z.string(),
    trainedAt: z.string(),
    spec: z.string(),
    randomWeights: z.boolean(),
  }),
  label: z.string().nullable(),
  confidence: z.number(),
  // Stacks from before thresholds do not send it: they never abstain.
  abstained: z.boolean().default(false),
  threshold: z.number().nullable().optional(),
  scores: z.array(z.object({ label: z.string(), probability: z.number() })),
  timingsMs: z.object({
    fetch: z.number().optional(),
    decode: z.number(),
    forward: z.number(),
    head: z.number(),
    total: z.number(),
  }),
});
export type Prediction = PredictionResponse;

/** A started training (POST /datasets/{d}/trainings → 202, lib/api/trainings.ts). */
export type TrainingStarted = Awaited<ReturnType<typeof startTrainingRoute>>;
export const TrainingStartedSchema: SchemaOf<TrainingStarted> = z.object({
  dataset: z.string(),
  executionArn: z.string(),
  executionName: z.string(),
  startedAt: z.string(),
});

const LabelReadinessSchema: SchemaOf<LabelReadiness> = z.object({
  images: count,
  ready: count,
  failed: count,
  pending: count,
});

/** The promoted model's summary (`ModelSummary` of lib/api/datasets.ts). */
const ModelSummarySchema: SchemaOf<ModelSummary> = z.object({
  version: z.string(),
  promotedAt: z.string(),
  trainedAt: z.string(),
  spec: z.string(),
  randomWeights: z.boolean(),
  classes: z.array(z.string()),
});

/** The newest training execution (`ExecutionSummary` of lib/api/executions.ts). */
const ExecutionSummarySchema: SchemaOf<ExecutionSummary> = z.object({
  name: z.string(),
  executionArn: z.string(),
  status: z.string(),
  startedAt: z.string(),
  stoppedAt: z.string().nullable(),
  trigger: z.enum(TRAINING_TRIGGERS).nullable(),
  error: z.string().nullable(),
  cause: z.string().nullable(),
});

/** GET /datasets/{d} (`DatasetStatus` of lib/api/datasets.ts). */
export const DatasetStatusSchema: SchemaOf<DatasetStatus> = z.object({
  dataset: z.string(),
  images: z.object({ total: count, ready: count, failed: count, pending: count, skipped: count }),
  labels: z.record(LabelReadinessSchema),
  featuresSettled: z.boolean(),
  model: ModelSummarySchema.nullable(),
  lastTraining: z
    .object({ version: z.string(), at: z.string().nullable(), promoted: z.boolean() })
    .nullable(),
  // Older stacks do not send it: absent reads as unknown (null).
  lastExecution: ExecutionSummarySchema.nullable().default(null),
});
export type { DatasetStatus };

/**
 * The model part of GET /datasets/{d}/model: `model.json` without its weights (lib/training/
 * model-document.ts), the summary, and the version the current one replaced (current.json).
 */
export type ModelMeta = ModelSummary &
  Pick<ModelDocument, 'metrics' | 'options'> & { previous: CurrentPointer['previous'] };

const ModelMetaSchema: SchemaOf<ModelMeta> = ModelSummarySchema.and(
  z.object({
    metrics: z.object({
      accuracy: z.number().nullable(),
      logLoss: z.number().nullable(),
      nTrain: count,
      nTest: count,
      converged: z.boolean(),
      nIter: count,
    }),
    options: TrainingOptionsSchema,
    previous: z.string().nullable(),
  }),
);

/** GET /datasets/{d}/model as the CLI uses it. */
export interface ModelInfo {
  dataset: string;
  model: ModelMeta;
  /**
   * report.json, or null when there is none or it does not match today's schema (the API passes
   * an older report through as stored; `reportIssue` says why it is not shown).
   */
  report: ReportDocument | null;
  reportIssue?: string;
}

const ModelResponseSchema = z.object({
  dataset: z.string(),
  model: ModelMetaSchema,
  report: z.unknown(),
});

/** Reads GET /datasets/{d}/model: metadata strictly, the report by `ReportDocument` (null when it is older). */
export function parseModelInfo(body: unknown, what: string): ModelInfo {
  const { dataset, model, report } = parseWith(ModelResponseSchema, body, what);
  if (report === null || report === undefined) return { dataset, model, report: null };
  const r = ReportDocument.safeParse(report);
  if (r.success) return { dataset, model, report: r.data };
  const issue = r.error.issues[0];
  return {
    dataset,
    model,
    report: null,
    reportIssue: `report.json does not match this CLI's schema (${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'invalid'})`,
  };
}

/** Options of `createApiClient`. */
export interface ApiClientOptions {
  /** Base URL without trailing slash (API Gateway: including the stage). */
  baseUrl: string;
  apiKey?: string | undefined;
  timeoutMs: number;
  /** Injected in tests; global fetch otherwise. */
  fetch?: typeof fetch;
}

/** A request's raw outcome. */
export interface ApiResponse {
  status: number;
  body: unknown;
}

/** The HTTP API as functions. */
export interface ApiClient {
  /** Any request; throws ApiError for status ≥ 400, UnreachableError when nothing answers. */
  request(
    method: string,
    path: string,
    opts?: {
      body?: Uint8Array | string;
      contentType?: string;
      query?: Record<string, string>;
      /** A binary type (e.g. `image/jpeg`): a 2xx body comes back as bytes, not parsed. */
      accept?: string;
    },
  ): Promise<ApiResponse>;
  getDataset(dataset: string): Promise<{ parsed: DatasetStatus; raw: unknown }>;
  startTraining(dataset: string): Promise<TrainingStarted>;
  getModel(dataset: string): Promise<{ parsed: ModelInfo; raw: unknown }>;
  /** `threshold`: `auto` or a number 0..1 (abstains below it). */
  predict(
    dataset: string,
    image: Uint8Array,
    contentType: string,
    top?: number,
    threshold?: string,
  ): Promise<Prediction>;
}

const ErrorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string() }).passthrough(),
});

function toApiError(status: number, statusText: string, body: unknown, text: string): ApiError {
  const parsed = ErrorBodySchema.safeParse(body);
  if (parsed.success) return new ApiError(parsed.data.error.code, parsed.data.error.message, status);
  // API Gateway's own answers (missing key, throttling) are `{ "message": "…" }`.
  const gw = z.object({ message: z.string() }).safeParse(body);
  if (gw.success) {
    if (status === 403)
      return new ApiError(
        'Forbidden',
        `${gw.data.message}: the API key is missing or wrong (pass --api-key or set TLEARN_API_KEY)`,
        status,
      );
    if (status === 429) return new ApiError('TooManyRequests', `${gw.data.message}: try again later`, status);
    return new ApiError(`Http${status}`, gw.data.message, status);
  }
  const snippet = text.trim().slice(0, 200);
  return new ApiError(
    `Http${status}`,
    `HTTP ${status} ${statusText}${snippet ? `: ${snippet}` : ''}`,
    status,
  );
}

function parseWith<S extends z.ZodTypeAny>(schema: S, body: unknown, what: string): z.output<S> {
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ApiError(
      'UnexpectedResponse',
      `${what} answered in an unexpected shape (${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'invalid'}); is the CLI as new as the stack?`,
      502,
      { cause: r.error },
    );
  }
  return r.data;
}

/**
 * Creates the API client.
 * @example const api = createApiClient({ baseUrl: 'http://127.0.0.1:3000', timeoutMs: 30_000 });
 *          const p = await api.predict('pets', bytes, 'image/jpeg', 3);
 */
export function createApiClient(opts: ApiClientOptions): ApiClient {
  const doFetch = opts.fetch ?? fetch;
  const seconds = `${Math.round(opts.timeoutMs / 100) / 10} s`;

  const request: ApiClient['request'] = async (method, path, r = {}) => {
    const qs =
      r.query && Object.keys(r.query).length > 0 ? `?${new URLSearchParams(r.query).toString()}` : '';
    const url = `${opts.baseUrl}${path}${qs}`;
    const headers: Record<string, string> = { accept: r.accept ?? 'application/json' };
    if (opts.apiKey !== undefined) headers['x-api-key'] = opts.apiKey;
    if (r.contentType !== undefined) headers['content-type'] = r.contentType;
    let res: Response;
    let text: string;
    try {
      // One signal covers connect, headers and body: a stuck server cannot hang the CLI.
      const signal = AbortSignal.timeout(opts.timeoutMs);
      res = await doFetch(url, { method, headers, body: r.body, signal });
      if (r.accept !== undefined && res.ok) {
        return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
      }
      text = await res.text();
    } catch (err) {
      const reason = unreachableReason(err);
      if (reason === undefined) throw err;
      throw new UnreachableError(reason === 'no answer in time' ? `no answer within ${seconds}` : reason, {
        cause: err,
      });
    }
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.status >= 400) throw toApiError(res.status, res.statusText, body, text);
    if (body === undefined && text !== '')
      throw new ApiError(
        'UnexpectedResponse',
        `${method} ${path} answered ${res.status} with a body that is not JSON: ${text.trim().slice(0, 120)}`,
        502,
      );
    return { status: res.status, body };
  };

  const ds = (d: string) => `/datasets/${encodeURIComponent(d)}`;
  return {
    request,
    async getDataset(dataset) {
      const { body } = await request('GET', ds(dataset));
      return { parsed: parseWith(DatasetStatusSchema, body, `GET ${ds(dataset)}`), raw: body };
    },
    async startTraining(dataset) {
      const { body } = await request('POST', `${ds(dataset)}/trainings`, {
        body: JSON.stringify({}),
        contentType: 'application/json',
      });
      return parseWith(TrainingStartedSchema, body, `POST ${ds(dataset)}/trainings`);
    },
    async getModel(dataset) {
      const { body } = await request('GET', `${ds(dataset)}/model`);
      return { parsed: parseModelInfo(body, `GET ${ds(dataset)}/model`), raw: body };
    },
    async predict(dataset, image, contentType, top, threshold) {
      const { body } = await request('POST', `${ds(dataset)}/predictions`, {
        body: image,
        contentType,
        query: {
          ...(top !== undefined ? { top: String(top) } : {}),
          ...(threshold !== undefined ? { threshold } : {}),
        },
      });
      return parseWith(PredictionSchema, body, `POST ${ds(dataset)}/predictions`);
    },
  };
}
