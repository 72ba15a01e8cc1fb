/**
 * A local stand-in for this stack's API Gateway REST API (Lambda proxy integration, payload 1.0): a
 * Node HTTP server on 127.0.0.1 that turns each request into the proxy event API Gateway would send
 * (resources and methods from lib/api/gateway.ts, path parameters, binary media types as base64,
 * API key check with the key's id in the event) and the handler's result back into a response.
 * The gateway's own answers come from the same table the CDK stack turns into gateway responses
 * (GATEWAY_ERRORS): 404 RouteNotFound, 403 Forbidden, 413 PayloadTooLarge over 10 MB, 502
 * BadGateway for an event over Lambda's 6 MB or a crashed / malformed handler, 504 Timeout.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import {
  GATEWAY_ERRORS,
  GATEWAY_MAX_BODY_BYTES,
  GATEWAY_TIMEOUT_MS,
  type GatewayErrorName,
  type GatewayMethod,
  gatewayErrorBody,
  gatewayMethods,
  LAMBDA_MAX_EVENT_BYTES,
  LAMBDA_MAX_RESPONSE_BYTES,
} from '../api/gateway.ts';
import { LOCAL_ADMIN_KEY_ID, type LocalKeyStore } from '../api/keys.ts';
import { BINARY_MEDIA_TYPES } from '../api/routes.ts';
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';
import { createLambdaContext, type LambdaHandler, LOCAL_ACCOUNT_ID } from './lambda-context.ts';
import { gracefulStop, listenOnLoopback } from './listen.ts';
import { isLoopbackHost, misdirected, sendJsonError } from './loopback.ts';

/** One API resource + method, as defined on the REST API. */
export interface ApiRoute {
  /** An HTTP method or `ANY`. */
  method: string;
  /** Resource path with `{param}` (or a trailing `{param+}`) placeholders. */
  resource: string;
  /** Whether the gateway asks for an API key on this method. @default true */
  apiKeyRequired?: boolean;
}

/** The REST API's methods (lib/api/gateway.ts, as the CDK stack defines them). */
export const DEFAULT_API_ROUTES: readonly ApiRoute[] = gatewayMethods().map((m: GatewayMethod) => ({
  method: m.method,
  resource: m.resource,
  apiKeyRequired: m.apiKeyRequired,
}));

/** Media types API Gateway passes base64-encoded (the REST API's binaryMediaTypes). */
export const DEFAULT_BINARY_MEDIA_TYPES: readonly string[] = BINARY_MEDIA_TYPES;

/** Options of {@link startHttpApi}. */
export interface HttpApiOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one. @default 3000 */
  port?: number;
  handler: LambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>;
  region: string;
  routes?: readonly ApiRoute[];
  binaryMediaTypes?: readonly string[];
  /** Requests with a larger body get 413 without reaching the handler. @default 10 MiB (API Gateway's) */
  maxBodyBytes?: number;
  /** Proxy events over this size get 502 BadGateway, as Lambda refuses them. @default 6 MiB */
  maxEventBytes?: number;
  /** Function results (JSON) over this size get 502 BadGateway, as Lambda fails them. @default 6 MiB */
  maxResponseBytes?: number;
  /**
   * When set, methods that need a key need this one or one of `keys` in `x-api-key` (else 403, like
   * API Gateway); it is the admin key `local-admin`. Without it a request with no key gets through
   * (an unknown key is still refused).
   */
  apiKey?: string;
  /** Scoped keys (lib/api/keys.ts): a request's key id goes into `requestContext.identity.apiKeyId`. */
  keys?: LocalKeyStore;
  /** Stage name in `requestContext`. @default 'local' */
  stage?: string;
  /** Integration timeout. @default GATEWAY_TIMEOUT_MS (29 s, API Gateway's) */
  timeoutMs?: number;
  log: Log;
}

/** A running API. */
export interface HttpApi {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting connections and waits (up to `graceMs`) for requests in flight. */
  stop(graceMs?: number): Promise<void>;
}

/** A route with its matcher. */
export interface CompiledRoute extends ApiRoute {
  regex: RegExp;
  params: string[];
}

/** Compiles resource templates into matchers. */
export function compileRoutes(routes: readonly ApiRoute[]): CompiledRoute[] {
  return routes.map((r) => {
    const params: string[] = [];
    const pattern = r.resource
      .split('/')
      .map((seg) => {
        const m = /^\{([A-Za-z0-9_-]+)(\+?)\}$/.exec(seg);
        if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        params.push(m[1] ?? '');
        return m[2] === '+' ? '(.+)' : '([^/]+)';
      })
      .join('/');
    return { ...r, method: r.method.toUpperCase(), regex: new RegExp(`^${pattern}$`), params };
  });
}

/** The route matching a method and a raw (still percent-encoded) path, with decoded path parameters. */
export function matchRoute(
  routes: readonly CompiledRoute[],
  method: string,
  rawPath: string,
): { route: CompiledRoute; pathParameters: Record<string, string> | null } | undefined {
  const path = rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath;
  // API Gateway picks the declared method over the resource's ANY.
  const ordered = [...routes.filter((r) => r.method === method), ...routes.filter((r) => r.method === 'ANY')];
  for (const route of ordered) {
    const m = route.regex.exec(path);
    if (!m) continue;
    if (route.params.length === 0) return { route, pathParameters: null };
    const pathParameters: Record<string, string> = {};
    route.params.forEach((name, i) => {
      const raw = m[i + 1] ?? '';
      try {
        pathParameters[name] = decodeURIComponent(raw);
      } catch {
        pathParameters[name] = raw;
      }
    });
    return { route, pathParameters };
  }
  return undefined;
}

/** Whether a content type is one of the binary media types (`image/*` style wildcards allowed). */
export function isBinaryMediaType(contentType: string | undefined, binaryTypes: readonly string[]): boolean {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === '') return false;
  return binaryTypes.some((b) => {
    const t = b.toLowerCase();
    if (t === '*/*') return true;
    if (t.endsWith('/*')) return type.startsWith(t.slice(0, -1));
    return type === t;
  });
}

/** Inputs of {@link buildProxyEvent}: what the server knows about one request. */
export interface RawRequest {
  method: string;
  /** Path and query as sent, e.g. `/datasets/pets/predictions?top=3`. */
  url: string;
  /** Header name/value pairs in the client's spelling and order (Node's `rawHeaders` pairs). */
  rawHeaders: readonly string[];
  body: Buffer;
  sourceIp: string;
  httpVersion: string;
}

/**
 * Builds the API Gateway REST proxy event (payload 1.0) for a matched request: headers keep the
 * client's spelling (last value wins in `headers`, all in `multiValueHeaders`), query parameters
 * are decoded, `path` keeps its percent-encoding while path parameters are decoded, and bodies of
 * binary media types are base64 with `isBase64Encoded: true`.
 */
export function buildProxyEvent(
  req: RawRequest,
  match: { route: ApiRoute; pathParameters: Record<string, string> | null },
  opts: {
    stage: string;
    binaryMediaTypes: readonly string[];
    requestId: string;
    now?: Date;
    /** The id of the request's API key (API Gateway sets it on methods that need a key). */
    apiKeyId?: string | null;
  },
): APIGatewayProxyEvent {
  const now = opts.now ?? new Date();
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? '';
    const value = req.rawHeaders[i + 1] ?? '';
    // Same header in another spelling: keep the first spelling seen, like one logical header.
    const existing =
      Object.keys(multiValueHeaders).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
    headers[existing] = value;
    multiValueHeaders[existing] = [...(multiValueHeaders[existing] ?? []), value];
  }
  const url = new URL(req.url, 'http://local');
  const rawPath = req.url.split('?')[0] ?? '/';
  let queryStringParameters: Record<string, string> | null = null;
  let multiValueQueryStringParameters: Record<string, string[]> | null = null;
  for (const [k, v] of url.searchParams) {
    queryStringParameters ??= {};
    multiValueQueryStringParameters ??= {};
    queryStringParameters[k] = v;
    multiValueQueryStringParameters[k] = [...(multiValueQueryStringParameters[k] ?? []), v];
  }
  const lower = (name: string) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  const binary = isBinaryMediaType(lower('content-type'), opts.binaryMediaTypes);
  const body =
    req.body.length === 0 ? null : binary ? req.body.toString('base64') : req.body.toString('utf8');
  const requestTime = now.toUTCString().replace(/^\w+, (\d+) (\w+) (\d+) ([\d:]+) GMT$/, '$1/$2/$3:$4 +0000');
  return {
    resource: match.route.resource,
    path: rawPath,
    httpMethod: req.method,
    headers,
    multiValueHeaders,
    queryStringParameters,
    multiValueQueryStringParameters,
    pathParameters: match.pathParameters,
    stageVariables: null,
    body,
    isBase64Encoded: body !== null && binary,
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: 'local',
      authorizer: undefined,
      domainName: lower('host') ?? '127.0.0.1',
      domainPrefix: (lower('host') ?? '127').split('.')[0],
      extendedRequestId: opts.requestId,
      httpMethod: req.method,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: lower('x-api-key') ?? null,
        apiKeyId: opts.apiKeyId ?? null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: req.sourceIp,
        user: null,
        userAgent: lower('user-agent') ?? null,
        userArn: null,
      },
      path: `/${opts.stage}${rawPath}`,
      protocol: `HTTP/${req.httpVersion}`,
      requestId: opts.requestId,
      requestTime,
      requestTimeEpoch: now.getTime(),
      resourceId: createHash('sha1').update(match.route.resource).digest('hex').slice(0, 6),
      resourcePath: match.route.resource,
      stage: opts.stage,
    },
  };
}

/** A handler result API Gateway would accept, or undefined (→ 502). */
function validResult(result: unknown): APIGatewayProxyResult | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  const r = result as Partial<APIGatewayProxyResult>;
  if (
    typeof r.statusCode !== 'number' ||
    !Number.isInteger(r.statusCode) ||
    r.statusCode < 100 ||
    r.statusCode > 599
  )
    return undefined;
  if (r.body !== undefined && r.body !== null && typeof r.body !== 'string') return undefined;
  return r as APIGatewayProxyResult;
}

function safeEqual(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

type Outcome = { status: number; note?: string };

/** {@link startHttpApi}'s options with their defaults applied, shared by the request functions below. */
interface ApiState {
  opts: HttpApiOptions;
  routes: CompiledRoute[];
  binaryMediaTypes: readonly string[];
  maxBody: number;
  maxEvent: number;
  maxResponse: number;
  stage: string;
  timeoutMs: number;
  /** Requests being answered, which a graceful stop waits for. */
  inFlight: Set<Promise<void>>;
  /** The port listened on (0 until then), named by the answer to a non-loopback Host. */
  port: number;
}

/** One of the gateway's own answers (lib/api/gateway.ts), as API Gateway sends it. */
function gatewayError(
  res: ServerResponse,
  name: GatewayErrorName,
  requestId: string,
  status?: number,
): Outcome {
  const row = GATEWAY_ERRORS[name];
  const code = row.status ?? status ?? 500;
  const text = gatewayErrorBody(name);
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': requestId,
    'x-amzn-errortype': row.type,
  });
  res.end(text);
  return { status: code };
}

/** The id of the request's key: undefined = no key, null = a key that is not valid. */
async function keyIdOf(req: IncomingMessage, opts: HttpApiOptions): Promise<string | null | undefined> {
  const given = req.headers['x-api-key'];
  if (typeof given !== 'string' || given === '') return undefined;
  if (opts.apiKey !== undefined && safeEqual(given, opts.apiKey)) return LOCAL_ADMIN_KEY_ID;
  return (await opts.keys?.idForValue(given)) ?? null;
}

/** Reads the body up to `maxBody` bytes; undefined when over it (413 already sent). */
function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  maxBody: number,
): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => {
      // Stop buffering; answer now and close the connection once the answer is out.
      res.setHeader('connection', 'close');
      gatewayError(res, 'payloadTooLarge', requestId);
      req.removeAllListeners('data');
      req.resume(); // drain without keeping anything, so the client can read the answer
      resolve(undefined);
    };
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > maxBody) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBody) return tooLarge();
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * One request, as API Gateway would take it: Host check, route, API key, body limit and event
 * size, then the function ({@link invokeFunction}).
 */
async function handleRequest(
  s: ApiState,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<Outcome> {
  const { opts } = s;
  const method = (req.method ?? 'GET').toUpperCase();
  const rawUrl = req.url ?? '/';
  // DNS rebinding: only a loopback Host reaches the function (lib/local/loopback.ts).
  if (!isLoopbackHost(req.headers.host)) {
    req.resume();
    return sendJsonError(res, misdirected(req.headers.host, s.port), requestId);
  }
  const match = matchRoute(s.routes, method, rawUrl.split('?')[0] ?? '/');
  if (!match) {
    req.resume();
    return gatewayError(res, 'routeNotFound', requestId);
  }
  const keyId = await keyIdOf(req, opts);
  const keyNeeded =
    match.route.apiKeyRequired !== false && (opts.apiKey !== undefined || keyId !== undefined);
  if (keyNeeded && (keyId === undefined || keyId === null)) {
    req.resume();
    return gatewayError(res, 'invalidApiKey', requestId);
  }
  const body = await readBody(req, res, requestId, s.maxBody);
  if (body === undefined) return { status: 413 };
  const event = buildProxyEvent(
    {
      method,
      url: rawUrl,
      rawHeaders: req.rawHeaders,
      body,
      sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
      httpVersion: req.httpVersion,
    },
    match,
    { stage: s.stage, binaryMediaTypes: s.binaryMediaTypes, requestId, apiKeyId: keyNeeded ? keyId : null },
  );
  // Lambda refuses an invoke over 6 MB (the event, body as base64) before the function runs.
  if (Buffer.byteLength(JSON.stringify(event)) > s.maxEvent) {
    return { ...gatewayError(res, 'integrationFailure', requestId), note: 'event over the Lambda limit' };
  }
  return invokeFunction(s, event, res, requestId, `${method} ${rawUrl.split('?')[0]}`);
}

/**
 * Runs the function on `event` within the integration timeout and sends its result, or the
 * gateway's 502 / 504 when it throws, times out, or returns a malformed or oversized result.
 * `route` (method and path) is for the log.
 */
async function invokeFunction(
  s: ApiState,
  event: APIGatewayProxyEvent,
  res: ServerResponse,
  requestId: string,
  route: string,
): Promise<Outcome> {
  const { log, region } = s.opts;
  const context = createLambdaContext('api', { region, timeoutMs: s.timeoutMs });
  let timer: NodeJS.Timeout | undefined;
  let raw: unknown;
  try {
    raw = await Promise.race([
      s.opts.handler(event, context),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new IntegrationTimeout()), s.timeoutMs);
      }),
    ]);
  } catch (err) {
    if (err instanceof IntegrationTimeout) {
      return { ...gatewayError(res, 'timeout', requestId), note: 'timeout' };
    }
    log.error(`api handler threw on ${route}`, { error: describeError(err) });
    return { ...gatewayError(res, 'integrationFailure', requestId), note: 'handler threw' };
  } finally {
    clearTimeout(timer);
  }
  const result = validResult(raw);
  if (!result) {
    log.error(`api handler returned a malformed proxy result on ${route}`);
    return { ...gatewayError(res, 'integrationFailure', requestId), note: 'malformed result' };
  }
  // Lambda fails an invoke whose result is over 6 MB (JSON, binary bodies as base64): a 502.
  if (Buffer.byteLength(JSON.stringify(result)) > s.maxResponse) {
    log.error(`api handler returned over ${s.maxResponse} bytes on ${route}`);
    return {
      ...gatewayError(res, 'integrationFailure', requestId),
      note: 'response over the Lambda limit',
    };
  }
  return sendResult(res, result, event.httpMethod === 'HEAD', requestId);
}

/** Sends a proxy result: lower-cased headers (multi-value ones win), the body decoded from base64 if so marked. */
function sendResult(
  res: ServerResponse,
  result: APIGatewayProxyResult,
  head: boolean,
  requestId: string,
): Outcome {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k.toLowerCase()] = String(v);
  for (const [k, vs] of Object.entries(result.multiValueHeaders ?? {}))
    headers[k.toLowerCase()] = vs.map(String);
  headers['x-amzn-requestid'] = requestId;
  const out = result.isBase64Encoded
    ? Buffer.from(result.body ?? '', 'base64')
    : Buffer.from(result.body ?? '', 'utf8');
  headers['content-length'] = String(out.length);
  res.writeHead(result.statusCode, headers);
  res.end(head ? undefined : out);
  return { status: result.statusCode };
}

/**
 * The server's request listener: answers the request ({@link handleRequest}), turns an unexpected
 * failure into the gateway's 500 (or 499 when the client hung up), logs one line, and tracks the
 * request in `s.inFlight` until it is done.
 */
function serveRequest(s: ApiState, req: IncomingMessage, res: ServerResponse): void {
  const { log } = s.opts;
  const started = Date.now();
  const requestId = randomUUID();
  const work = handleRequest(s, req, res, requestId)
    .catch((err: unknown): Outcome => {
      // A client that hangs up mid-request is the client's business, not a server error.
      if (req.destroyed && !res.headersSent) {
        log.info('client closed the connection before the request was read', { error: describeError(err) });
        return { status: 499, note: 'client closed request' };
      }
      log.error('api request failed', { error: describeError(err) });
      if (!res.headersSent) return gatewayError(res, 'default5xx', requestId, 500);
      res.destroy();
      return { status: 500 };
    })
    .then((outcome) => {
      const path = (req.url ?? '/').split('?')[0];
      log.info(
        `${req.method} ${path} ${outcome.status} ${Date.now() - started} ms${outcome.note ? ` (${outcome.note})` : ''}`,
      );
    })
    .finally(() => s.inFlight.delete(work));
  s.inFlight.add(work);
}

/**
 * Starts the API on 127.0.0.1. Never crashes on a bad request; logs one line per request.
 *
 * @example
 * const api = await startHttpApi({ port: 3000, handler, region: 'us-east-1', log });
 * // curl -s --data-binary @cat.png -H 'content-type: image/png' http://127.0.0.1:3000/datasets/demo/predictions
 */
export async function startHttpApi(opts: HttpApiOptions): Promise<HttpApi> {
  const s: ApiState = {
    opts,
    routes: compileRoutes(opts.routes ?? DEFAULT_API_ROUTES),
    binaryMediaTypes: opts.binaryMediaTypes ?? DEFAULT_BINARY_MEDIA_TYPES,
    maxBody: opts.maxBodyBytes ?? GATEWAY_MAX_BODY_BYTES,
    maxEvent: opts.maxEventBytes ?? LAMBDA_MAX_EVENT_BYTES,
    maxResponse: opts.maxResponseBytes ?? LAMBDA_MAX_RESPONSE_BYTES,
    stage: opts.stage ?? 'local',
    timeoutMs: opts.timeoutMs ?? GATEWAY_TIMEOUT_MS,
    inFlight: new Set<Promise<void>>(),
    port: 0,
  };

  const server = createServer((req, res) => serveRequest(s, req, res));
  server.on('clientError', (_err, socket) => {
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  server.requestTimeout = 60_000;

  const port = await listenOnLoopback(server, opts.port ?? 3000, '--port');
  s.port = port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: gracefulStop(server, async (graceMs) => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...s.inFlight]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }),
  };
}

class IntegrationTimeout extends Error {}
