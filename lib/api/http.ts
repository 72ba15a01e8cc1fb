/**
 * Request reading for the API: headers, body bytes, JSON, query and path parameters, each
 * validated at the edge with a clear client error. Knows the API Gateway REST (payload 1.0)
 * request shape only as far as `ApiRequest` below, so a Node HTTP server can build one too.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { z } from 'zod';
import { PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError } from '../errors.ts';
import { DatasetName } from '../storage/keys.ts';

/** Lambda's synchronous payload limit; API Gateway bodies above it never reach us whole. */
export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;

/** Finds a header case-insensitively (API Gateway keeps the client's spelling). */
export function getHeader(event: Pick<APIGatewayProxyEvent, 'headers'>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(event.headers ?? {})) {
    if (k.toLowerCase() === wanted && v !== undefined) return v;
  }
  return undefined;
}

/** The media type of a request without parameters, lower case (`image/png; x=y` → `image/png`). */
export function mediaType(event: Pick<APIGatewayProxyEvent, 'headers'>): string | undefined {
  const raw = getHeader(event, 'content-type');
  if (raw === undefined) return undefined;
  const type = raw.split(';')[0]?.trim().toLowerCase() ?? '';
  return type === '' ? undefined : type;
}

/** Largest base64 text that can decode to at most `bytes` bytes (4 chars per 3 bytes, plus padding). */
function maxBase64Chars(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL_RE = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes strict base64 (standard or URL alphabet, whitespace ignored) without allocating more than
 * `maxBytes`: Node's decoder silently skips invalid characters, which would turn a typo into a
 * garbage image instead of a clear 400.
 */
export function decodeBase64(text: string, maxBytes: number, what: string): Buffer {
  const tooLarge = () =>
    new PayloadTooLargeError(`${what} is larger than the limit of ${formatBytes(maxBytes)}`);
  const limitChars = maxBase64Chars(maxBytes);
  // Size checks before decoding: the decoded size is known from the length. The first, on the raw
  // text, leaves room for MIME line breaks (2 chars per 76) so wrapped base64 is not refused early.
  if (text.length > limitChars + Math.ceil(limitChars / 76) * 2) throw tooLarge();
  const compact = /\s/.test(text) ? text.replace(/\s+/g, '') : text;
  if (compact.length > limitChars) throw tooLarge();
  if (!(BASE64_RE.test(compact) || BASE64URL_RE.test(compact)) || compact.length % 4 === 1) {
    throw new ValidationError(`${what} is not valid base64`, { code: 'InvalidBase64' });
  }
  const bytes = Buffer.from(compact, 'base64');
  if (bytes.length > maxBytes) throw tooLarge();
  return bytes;
}

/** `6291456` → `6 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${+(bytes / (1024 * 1024)).toFixed(1)} MB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} bytes`;
}

/**
 * The raw request body as bytes, enforcing `maxBytes` (413). API Gateway sends binary media types
 * (`image/*`) base64-encoded with `isBase64Encoded: true`; text bodies arrive as strings.
 */
export function readBodyBytes(
  event: Pick<APIGatewayProxyEvent, 'body' | 'isBase64Encoded'>,
  maxBytes: number,
): Buffer {
  const body = event.body ?? '';
  if (event.isBase64Encoded) return decodeBase64(body, maxBytes, 'request body');
  // Cheap upper bound first (a UTF-8 char is at most 3 bytes per UTF-16 unit) before counting.
  if (body.length * 3 > maxBytes && Buffer.byteLength(body, 'utf8') > maxBytes) {
    throw new PayloadTooLargeError(`request body is larger than the limit of ${formatBytes(maxBytes)}`);
  }
  return Buffer.from(body, 'utf8');
}

/** Parses a JSON body (400 with the parser's reason when it is not JSON). */
export function parseJsonBody(bytes: Uint8Array): unknown {
  const text = Buffer.from(bytes).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ValidationError(`request body is not valid JSON: ${reason}`, {
      code: 'InvalidJson',
      cause: err,
    });
  }
}

/**
 * A JSON request body: 415 unless it is sent as `application/json`, 400 when it is not JSON. The
 * type is required because a page on any other origin may POST `text/plain` (or a form) without
 * asking the browser's CORS preflight, never `application/json`: the console and the CLI always
 * send the type, so only such cross-site requests are refused (docs/ARCHITECTURE.md "Local API exposure").
 */
export function readJsonBody(
  event: Pick<APIGatewayProxyEvent, 'headers' | 'body' | 'isBase64Encoded'>,
  maxBytes: number,
): unknown {
  const type = mediaType(event);
  if (type !== 'application/json') {
    throw new UnsupportedMediaTypeError(
      `content type ${type === undefined ? '(none)' : `'${type}'`} is not accepted; send the JSON body with Content-Type: application/json`,
    );
  }
  return parseJsonBody(readBodyBytes(event, maxBytes));
}

/** Formats zod issues as `path: message; …` for a 400 message. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/** Parses a value with a schema, turning failures into a 400 that names `what`. */
export function parseWith<S extends z.ZodTypeAny>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ValidationError(`${what} is invalid: ${formatIssues(result.error)}`, { cause: result.error });
  }
  return result.data;
}

/**
 * The dataset named in the path, validated (400). API Gateway passes path parameters decoded,
 * a Node server may not: a `%` sequence is decoded once so the message shows what the client meant.
 */
export function datasetParam(event: Pick<APIGatewayProxyEvent, 'pathParameters'>): string {
  let raw = event.pathParameters?.d ?? event.pathParameters?.dataset ?? '';
  if (raw.includes('%')) {
    try {
      raw = decodeURIComponent(raw);
    } catch {
      // Not valid percent-encoding: validate it as given.
    }
  }
  const result = DatasetName.safeParse(raw);
  if (!result.success) {
    const shown = raw.length > 80 ? `${raw.slice(0, 80)}…` : raw;
    throw new ValidationError(`invalid dataset name '${shown}': ${formatIssues(result.error)}`, {
      code: 'InvalidDatasetName',
    });
  }
  return result.data;
}

/** Throws 415 unless the body's media type is one of `accepted` (`image/*` matches any image type). */
export function requireMediaType(type: string | undefined, accepted: readonly string[]): string {
  const ok =
    type !== undefined &&
    accepted.some((a) => (a.endsWith('/*') ? type.startsWith(a.slice(0, -1)) : a === type));
  if (!ok || type === undefined) {
    throw new UnsupportedMediaTypeError(
      `content type ${type === undefined ? '(none)' : `'${type}'`} is not accepted; send ${accepted.join(', ')}`,
    );
  }
  return type;
}

/** A JSON response with the API's headers. */
export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}
