/**
 * The one place where thrown errors become HTTP responses (middy `http-error-handler` style):
 * a `TlearnError` (or a middy `HttpError`) below 500 shows its code and message; anything else is
 * a 500 with a generic message that names only the request id, and is logged at error level.
 * Client errors are logged at info (warn for 429), never at error: they are not our bugs.
 */
import type { APIGatewayProxyResult } from 'aws-lambda';
import { describeError, TlearnError } from '../errors.ts';
import type { Log } from '../util/log.ts';

/** The path exists but not with this method. */
export class MethodNotAllowedError extends TlearnError {
  /** Methods the path accepts (sent back in the `Allow` header). */
  readonly allow: readonly string[];
  constructor(message: string, allow: readonly string[]) {
    super('MethodNotAllowed', message, 405);
    this.allow = allow;
  }
}

/** The request is valid but names something the caller may not use (e.g. another dataset's image). */
export class ForbiddenError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'Forbidden', message, 403, options);
  }
}

/** A downstream service throttled us; the client should retry after a pause. */
export class TooManyRequestsError extends TlearnError {
  /** Seconds the client should wait (`Retry-After`). */
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 1, options?: { cause?: unknown }) {
    super('TooManyRequests', message, 429, options);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** JSON body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** What an error maps to, before it is written as a response. */
export interface MappedError {
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
  /** Whether the error is the client's (status < 500): logged at info/warn, shown verbatim. */
  expose: boolean;
}

// AWS SDK errors that mean "slow down" (S3 SlowDown, SFN/any ThrottlingException, ...).
const THROTTLING_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'SlowDown',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
]);

function isThrottling(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const meta = (err as { $metadata?: { httpStatusCode?: number } }).$metadata;
  return THROTTLING_NAMES.has(err.name) || meta?.httpStatusCode === 429;
}

/** middy's `createError` objects (e.g. from other middlewares): status + expose, no `code`. */
function isHttpError(err: unknown): err is Error & { statusCode: number; expose?: boolean } {
  return (
    err instanceof Error &&
    typeof (err as { statusCode?: unknown }).statusCode === 'number' &&
    !(err instanceof TlearnError)
  );
}

/**
 * The error table: the code of each client-error status when nothing more specific is known (a
 * middy `HttpError`; `TlearnError`s name their own). Read by the OpenAPI document (lib/api/openapi.ts).
 */
export const ERROR_STATUS_CODES: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  421: 'MisdirectedRequest',
  422: 'UnprocessableEntity',
  429: 'TooManyRequests',
};

/**
 * Maps any thrown value to a status, code, message and headers. Only errors that declare
 * themselves safe (`expose`, i.e. status < 500) keep their message; everything else becomes
 * `InternalError` with a message naming the request id so support can find the log line.
 *
 * @example mapError(new NotFoundError("dataset 'x' does not exist"), 'req-1') // { status: 404, code: 'NotFound', … }
 */
export function mapError(err: unknown, requestId: string | undefined): MappedError {
  if (err instanceof TlearnError && err.expose) {
    const headers: Record<string, string> = {};
    if (err instanceof MethodNotAllowedError) headers.allow = err.allow.join(', ');
    if (err instanceof TooManyRequestsError) headers['retry-after'] = String(err.retryAfterSeconds);
    return { status: err.status, code: err.code, message: err.message, headers, expose: true };
  }
  if (isHttpError(err) && err.statusCode < 500 && err.expose !== false) {
    return {
      status: err.statusCode,
      code: ERROR_STATUS_CODES[err.statusCode] ?? 'ClientError',
      message: err.message,
      headers: {},
      expose: true,
    };
  }
  if (isThrottling(err)) {
    return {
      status: 429,
      code: 'TooManyRequests',
      message: 'the service is busy; retry in a moment',
      headers: { 'retry-after': '1' },
      expose: true,
    };
  }
  const ref = requestId ? ` (request id ${requestId})` : '';
  return {
    status: 500,
    code: 'InternalError',
    message: `internal error${ref}; it has been logged`,
    headers: {},
    expose: false,
  };
}

/** A serializable description of an error and its cause chain, for logs (never for responses). */
export function errorForLog(err: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { message: describeError(err) };
  if (err instanceof Error) {
    out.name = err.name;
    if (err.stack) out.stack = err.stack;
    if (err.cause !== undefined) out.cause = errorForLog(err.cause);
  }
  return out;
}

/**
 * Maps an error, logs it at the right level, and writes the JSON error response.
 * `extraHeaders` (e.g. CORS) are added to every response.
 */
export function errorResponse(
  err: unknown,
  ctx: { requestId: string | undefined; log: Log; route: string; extraHeaders?: Record<string, string> },
): APIGatewayProxyResult {
  const mapped = mapError(err, ctx.requestId);
  const fields = { status: mapped.status, code: mapped.code, route: ctx.route, requestId: ctx.requestId };
  if (!mapped.expose) {
    ctx.log.error('request failed', { ...fields, error: errorForLog(err) });
  } else if (mapped.status === 429) {
    ctx.log.warn('request throttled', { ...fields, reason: mapped.message });
  } else {
    ctx.log.info('request rejected', { ...fields, reason: mapped.message });
  }
  const body: ErrorBody = { error: { code: mapped.code, message: mapped.message } };
  return {
    statusCode: mapped.status,
    headers: { 'content-type': 'application/json', ...ctx.extraHeaders, ...mapped.headers },
    body: JSON.stringify(body),
  };
}
