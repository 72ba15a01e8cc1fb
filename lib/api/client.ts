/**
 * A typed client of the HTTP API, derived from the route table (lib/api/routes.ts) and the routes'
 * zod schemas (lib/api/contract.ts): `call('POST /datasets/{d}/predictions', {params: {d}, …})`
 * takes that route's path parameters, query and body and resolves with its response type.
 * Type-only imports: at run time this module needs `fetch` and nothing of the API, so the CLI and
 * the browser console (bundled by esbuild) both use it.
 */
import type { z } from 'zod';
import type { ROUTE_SCHEMAS } from './contract.ts';
import type { RouteKey } from './routes.ts';

type Schemas = typeof ROUTE_SCHEMAS;
type Field<K extends RouteKey, F extends string> = K extends keyof Schemas
  ? F extends keyof Schemas[K]
    ? Schemas[K][F]
    : undefined
  : undefined;

/** The JSON body a route answers with (`unknown` for a route without a declared response). */
export type ResponseOf<K extends RouteKey> =
  Field<K, 'response'> extends z.ZodTypeAny ? z.output<Field<K, 'response'>> : unknown;

/** The JSON body a route takes (`never`: none). */
export type BodyOf<K extends RouteKey> =
  Field<K, 'body'> extends z.ZodTypeAny ? z.input<Field<K, 'body'>> : never;

/** The query a route takes (values are sent as strings). */
export type QueryOf<K extends RouteKey> =
  Field<K, 'query'> extends z.ZodTypeAny ? z.input<Field<K, 'query'>> : Record<string, never>;

type ParamNames<P extends string> = P extends `${string}{${infer N}}${infer Rest}`
  ? N | ParamNames<Rest>
  : never;
type PathOf<K extends RouteKey> = K extends `${string} ${infer P}` ? P : never;

/** The path parameters of a route (`{d}` → `{ d: string }`). */
export type ParamsOf<K extends RouteKey> = Record<ParamNames<PathOf<K>>, string>;

/** What a call sends: path parameters (when the path has any), query, and a JSON or raw body. */
export type RequestOf<K extends RouteKey> = ([ParamNames<PathOf<K>>] extends [never]
  ? { params?: undefined }
  : { params: ParamsOf<K> }) & {
  query?: { [Q in keyof QueryOf<K>]?: string | number | boolean | undefined };
  /** JSON body. */
  body?: BodyOf<K>;
  /** A raw body (an image) with its media type, instead of `body`. */
  raw?: { data: Uint8Array | Blob; contentType: string };
  /** Extra headers (e.g. `accept`). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
};

/** An answer with a status ≥ 400; `code` and `message` from the API's `{error: {code, message}}`. */
export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'ApiCallError';
  }
}

/** Options of {@link createApiClient}. */
export interface ApiClientOptions {
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Turns an error answer into the error thrown. @default an {@link ApiCallError} */
  toError?: (status: number, statusText: string, body: unknown, text: string) => Error;
}

/** The typed client. */
export interface TypedApiClient {
  /** The URL of a route with its parameters and query. */
  url<K extends RouteKey>(route: K, req: RequestOf<K>): string;
  /** Sends a request and returns the raw `Response` (any status), for non-JSON answers. */
  send<K extends RouteKey>(route: K, req: RequestOf<K>): Promise<Response>;
  /** Sends a request and resolves with the JSON answer; throws (`toError`) for a status ≥ 400. */
  call<K extends RouteKey>(route: K, req: RequestOf<K>): Promise<ResponseOf<K>>;
}

/** Reads `{error: {code, message}}` from an error answer, falling back to the status line. */
export function errorOfAnswer(status: number, statusText: string, body: unknown, text: string): ApiCallError {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (e && typeof e.code === 'string' && typeof e.message === 'string')
    return new ApiCallError(status, e.code, e.message, body);
  const snippet = text.trim().slice(0, 200);
  return new ApiCallError(
    status,
    `Http${status}`,
    `HTTP ${status} ${statusText}${snippet ? `: ${snippet}` : ''}`,
    body,
  );
}

function fillPath(path: string, params: Record<string, string> | undefined): string {
  return path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const value = params?.[name];
    if (value === undefined) throw new TypeError(`missing path parameter '${name}' of ${path}`);
    return encodeURIComponent(value);
  });
}

/**
 * Creates a typed client. `baseUrl`: the API's base (API Gateway: including the stage; the console:
 * its page's URL); `apiKey`: sent as `x-api-key` (a function is asked on every call).
 *
 * @example
 * const api = createApiClient('http://127.0.0.1:3000', process.env.TLEARN_API_KEY);
 * const p = await api.call('POST /datasets/{d}/predictions', {
 *   params: { d: 'pets' }, query: { top: 3 }, raw: { data: bytes, contentType: 'image/jpeg' },
 * });
 * p.label; // string | null
 */
export function createApiClient(
  baseUrl: string,
  apiKey?: string | (() => string | null | undefined),
  opts: ApiClientOptions = {},
): TypedApiClient {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const url: TypedApiClient['url'] = (route, req) => {
    const path = route.slice(route.indexOf(' ') + 1);
    const u = new URL(
      fillPath(path, req.params as Record<string, string> | undefined).replace(/^\//, ''),
      base,
    );
    for (const [k, v] of Object.entries(req.query ?? {}))
      if (v !== undefined) u.searchParams.set(k, String(v));
    return u.href;
  };
  const send: TypedApiClient['send'] = (route, req) => {
    const method = route.slice(0, route.indexOf(' '));
    const key = typeof apiKey === 'function' ? apiKey() : apiKey;
    const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
    if (key) headers['x-api-key'] = key;
    let body: RequestInit['body'];
    if (req.raw) {
      headers['content-type'] = req.raw.contentType;
      body = req.raw.data as RequestInit['body'];
    } else if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.body);
    }
    const doFetch = opts.fetch ?? globalThis.fetch;
    return doFetch(url(route, req), { method, headers, body, ...(req.signal ? { signal: req.signal } : {}) });
  };
  const call: TypedApiClient['call'] = async (route, req) => {
    const res = await send(route, req);
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.status >= 400) throw (opts.toError ?? errorOfAnswer)(res.status, res.statusText, json, text);
    if (json === undefined && text !== '') {
      throw new ApiCallError(
        res.status,
        'UnexpectedResponse',
        `${route} answered a body that is not JSON`,
        text,
      );
    }
    return json as ResponseOf<typeof route>;
  };
  return { url, send, call };
}
