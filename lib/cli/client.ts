import { z } from 'zod';
import {
  ApiCallError,
  createApiClient as createTypedClient,
  type RequestOf,
  type ResponseOf,
  type TypedApiClient,
} from '../api/client.ts';
import type { RouteKey } from '../api/routes.ts';
import {
  DatasetStatusSchema as ApiDatasetStatusSchema,
  ExecutionSummarySchema,
  ModelMetaSchema,
  PredictionResponseSchema,
  TrainingStartedSchema,
} from '../api/schemas.ts';
import { TlearnError } from '../errors.ts';
import { type ReportSummary, ReportSummarySchema } from '../training/report-summary.ts';

/**
 * A small client of the HTTP API (docs/ARCHITECTURE.md "HTTP API") for the CLI: one timeout per
 * request, `x-api-key` when set, errors mapped to ApiError (`{ error: { code, message } }` bodies) or
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

/*
 * The answers' schemas and types are the API's own (lib/api/schemas.ts, through the route table's
 * lib/api/contract.ts), so when the API changes a field this file stops compiling or the answer is
 * refused with a clear message, instead of the CLI misreading it.
 */

/** A prediction (POST /datasets/{d}/predictions). Stacks from before thresholds send no `abstained`: they never abstain. */
export const PredictionSchema = PredictionResponseSchema.extend({ abstained: z.boolean().default(false) });
export type Prediction = ResponseOf<'POST /datasets/{d}/predictions'>;

/** A started training (POST /datasets/{d}/trainings → 202). */
export type TrainingStarted = ResponseOf<'POST /datasets/{d}/trainings'>;
export { TrainingStartedSchema };

/** GET /datasets/{d}. Older stacks do not send `lastExecution`: absent reads as unknown (null). */
export const DatasetStatusSchema = ApiDatasetStatusSchema.extend({
  lastExecution: ExecutionSummarySchema.nullable().default(null),
  // Only with ?timeline=true.
  timeline: z
    .object({
      firstUploadAt: z.string().nullable(),
      lastUploadAt: z.string().nullable(),
      lastFeatureAt: z.string().nullable(),
      promotedAt: z.string().nullable(),
      phases: z.array(
        z.object({
          training: z.number(),
          phase: z.string(),
          startedAt: z.string(),
          ms: z.number(),
          rounds: z.number().optional(),
        }),
      ),
    })
    .optional(),
});
export type DatasetStatus = ResponseOf<'GET /datasets/{d}'>;

/**
 * The model part of GET /datasets/{d}/model: `model.json` without its weights (lib/training/
 * model-document.ts), the summary, and the version the current one replaced (current.json).
 */
export type ModelMeta = z.output<typeof ModelMetaSchema>;

/** GET /datasets/{d}/model as the CLI uses it. */
export interface ModelInfo {
  dataset: string;
  model: ModelMeta;
  /**
   * report.json, or null when there is none or it does not match today's schema (the API passes
   * an older report through as stored; `reportIssue` says why it is not shown).
   */
  report: ReportSummary | null;
  reportIssue?: string;
}

const ModelResponseSchema = z.object({
  dataset: z.string(),
  model: ModelMetaSchema,
  report: z.unknown(),
});

/** Reads GET /datasets/{d}/model: metadata strictly, the report's summary by its schema (null when it is older). */
export function parseModelInfo(body: unknown, what: string): ModelInfo {
  const { dataset, model, report } = parseWith(ModelResponseSchema, body, what);
  if (report === null || report === undefined) return { dataset, model, report: null };
  const r = ReportSummarySchema.safeParse(report);
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
  /**
   * A route of lib/api/routes.ts through the typed client (lib/api/client.ts): its parameters,
   * query and body are checked against the route's schemas at compile time; the answer is typed
   * (not validated: the methods below validate what they read).
   */
  call<K extends RouteKey>(route: K, req: RequestOf<K>): Promise<ResponseOf<K>>;
  /** `timeline`: ask for the phases of the last training too (`?timeline=true`). */
  getDataset(
    dataset: string,
    opts?: { timeline?: boolean },
  ): Promise<{ parsed: DatasetStatus; raw: unknown }>;
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

  // The typed client over the same transport rules: one timeout per request, errors as ApiError,
  // nothing answering as UnreachableError.
  const typed: TypedApiClient = createTypedClient(opts.baseUrl, opts.apiKey, {
    fetch: (url, init) => doFetch(url, { ...init, signal: AbortSignal.timeout(opts.timeoutMs) }),
    toError: toApiError,
  });
  const call: ApiClient['call'] = async (route, req) => {
    try {
      return await typed.call(route, req);
    } catch (err) {
      if (err instanceof ApiCallError) throw new ApiError(err.code, err.message, 502);
      if (err instanceof ApiError) throw err;
      const reason = unreachableReason(err);
      if (reason === undefined) throw err;
      throw new UnreachableError(reason === 'no answer in time' ? `no answer within ${seconds}` : reason, {
        cause: err,
      });
    }
  };
  const what = (route: string, d: string) => route.replace('{d}', encodeURIComponent(d));
  return {
    request,
    call,
    async getDataset(dataset, opts) {
      const route = 'GET /datasets/{d}';
      const body = await call(route, {
        params: { d: dataset },
        ...(opts?.timeline ? { query: { timeline: 'true' } } : {}),
      });
      return { parsed: parseWith(DatasetStatusSchema, body, what(route, dataset)), raw: body };
    },
    async startTraining(dataset) {
      const route = 'POST /datasets/{d}/trainings';
      const body = await call(route, { params: { d: dataset }, body: {} });
      return parseWith(TrainingStartedSchema, body, what(route, dataset));
    },
    async getModel(dataset) {
      const route = 'GET /datasets/{d}/model';
      const body = await call(route, { params: { d: dataset } });
      return { parsed: parseModelInfo(body, what(route, dataset)), raw: body };
    },
    async predict(dataset, image, contentType, top, threshold) {
      const route = 'POST /datasets/{d}/predictions';
      const body = await call(route, {
        params: { d: dataset },
        raw: { data: image, contentType },
        query: { top, threshold },
      });
      return parseWith(PredictionSchema, body, what(route, dataset));
    },
  };
}
