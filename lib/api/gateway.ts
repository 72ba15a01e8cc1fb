/**
 * The gateway contract: what API Gateway itself answers before (or instead of) the function, in one
 * table the CDK stack (infra/constructs/prediction-api.ts, as gateway responses and methods) and
 * the local stand-in (lib/local/http-api.ts) both read, so a request gets the same status, code and
 * JSON shape on AWS and locally. No dependencies beyond lib/api/routes.ts.
 */
import { API_ROUTES, type RouteRole } from './routes.ts';

/** API Gateway's hard limit on a request body (REST APIs): larger bodies get 413 from the gateway. */
export const GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Lambda's synchronous invoke limit on the whole proxy event (JSON, with binary bodies as base64):
 * 6 MiB. An event over it is refused by Lambda before the function runs (a raw image over ~4.4 MB).
 */
export const LAMBDA_MAX_EVENT_BYTES = 6 * 1024 * 1024;

/**
 * Lambda's synchronous invoke limit on the function's result (the proxy result as JSON, a binary
 * body as base64): 6 MiB. A larger result fails the invoke and API Gateway answers 502; the local
 * stand-in enforces the same limit, so a route that would return it fails locally too.
 */
export const LAMBDA_MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

/** API Gateway's integration timeout (REST APIs, default and maximum without a quota raise). */
export const GATEWAY_TIMEOUT_MS = 29_000;

/**
 * One gateway rejection: `type` is API Gateway's ResponseType name; `status` undefined keeps the
 * gateway's own status (catch-alls).
 */
export interface GatewayError {
  readonly type: string;
  readonly status: number | undefined;
  readonly code: string;
  readonly message: string;
  /** Where it happens (documentation; README's error table). */
  readonly when: string;
}

/**
 * Every gateway rejection, rewritten to the API's `{"error": {"code", "message"}}` shape.
 * INTEGRATION_FAILURE is what API Gateway answers when Lambda refuses the invoke (event over 6 MB)
 * or the function crashes: API Gateway cannot tell these apart, so it cannot be a 413; the message
 * says what to do about both.
 */
export const GATEWAY_ERRORS = {
  routeNotFound: {
    type: 'MISSING_AUTHENTICATION_TOKEN',
    status: 404,
    code: 'RouteNotFound',
    message: 'no such route; see the API table in the README (GET /health needs no key)',
    when: 'unknown path',
  },
  invalidApiKey: {
    type: 'INVALID_API_KEY',
    status: 403,
    code: 'Forbidden',
    message: 'missing or invalid x-api-key header',
    when: 'a route that needs a key, called without one or with an unknown or revoked key',
  },
  payloadTooLarge: {
    type: 'REQUEST_TOO_LARGE',
    status: 413,
    code: 'PayloadTooLarge',
    message: 'request body over 10 MB; send a smaller image, or upload it and POST {"key": …}',
    when: 'body over API Gateway’s 10 MB',
  },
  throttled: {
    type: 'THROTTLED',
    status: 429,
    code: 'TooManyRequests',
    message: 'rate limit of this API key exceeded; retry later',
    when: 'the usage plan’s rate or burst',
  },
  quotaExceeded: {
    type: 'QUOTA_EXCEEDED',
    status: 429,
    code: 'QuotaExceeded',
    message: 'daily quota of this API key used up',
    when: 'the usage plan’s daily quota',
  },
  timeout: {
    type: 'INTEGRATION_TIMEOUT',
    status: 504,
    code: 'Timeout',
    message: 'the request took longer than 29 s; retry',
    when: 'the function ran over 29 s',
  },
  integrationFailure: {
    type: 'INTEGRATION_FAILURE',
    status: 502,
    code: 'BadGateway',
    message:
      'the function could not answer: it crashed, its answer was over Lambda’s 6 MB response limit, or the request was over Lambda’s 6 MB event limit (a raw image over ~4.4 MB); send a smaller image, or upload it and POST {"key": …}',
    when: 'the function crashed or returned a malformed result or one over 6 MB, or the event (body as base64) was over 6 MB',
  },
  default4xx: {
    type: 'DEFAULT_4XX',
    status: undefined,
    code: 'ClientError',
    message: 'the request was rejected by the gateway',
    when: 'any other gateway rejection (not produced by this API’s configuration)',
  },
  default5xx: {
    type: 'DEFAULT_5XX',
    status: undefined,
    code: 'InternalError',
    message: 'internal error',
    when: 'any other gateway failure',
  },
} as const satisfies Record<string, GatewayError>;

export type GatewayErrorName = keyof typeof GATEWAY_ERRORS;

/** The JSON body of a gateway rejection (also the gateway response's template on AWS). */
export function gatewayErrorBody(name: GatewayErrorName): string {
  const e: GatewayError = GATEWAY_ERRORS[name];
  return JSON.stringify({ error: { code: e.code, message: e.message } });
}

/** One method on one resource of the REST API. */
export interface GatewayMethod {
  readonly resource: string;
  /** An HTTP method, or `ANY` (every method the resource does not declare: the function answers 405). */
  readonly method: string;
  readonly apiKeyRequired: boolean;
}

/**
 * The REST API's methods, derived from the route table: each declared method (a key unless its
 * role is `none`), `OPTIONS` without a key (CORS preflights carry no headers of ours), and `ANY`
 * for every other method, routed to the function so a wrong method is its 405 with `Allow`
 * (no key needed where the resource has a keyless route).
 */
export function gatewayMethods(
  routes: ReadonlyArray<{ method: string; path: string; role: RouteRole }> = API_ROUTES,
): GatewayMethod[] {
  const byResource = new Map<string, Array<{ method: string; role: RouteRole }>>();
  for (const r of routes) byResource.set(r.path, [...(byResource.get(r.path) ?? []), r]);
  const out: GatewayMethod[] = [];
  for (const [resource, rs] of byResource) {
    for (const r of rs) out.push({ resource, method: r.method, apiKeyRequired: r.role !== 'none' });
    if (!rs.some((r) => r.method === 'OPTIONS')) {
      out.push({ resource, method: 'OPTIONS', apiKeyRequired: false });
    }
    out.push({ resource, method: 'ANY', apiKeyRequired: !rs.some((r) => r.role === 'none') });
  }
  return out;
}
