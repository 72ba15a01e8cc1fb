/**
 * Authorization of a request from its API key id (the gateway, or the local stand-in, has already
 * checked the key itself): the key's scope against the route's role (lib/api/routes.ts) and the
 * dataset in the path. Out of scope is 403 `Forbidden` in the API's error shape.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { ForbiddenError } from './errors.ts';
import { datasetParam } from './http.ts';
import type { KeyScope, KeyStore } from './keys.ts';
import type { RouteRole } from './routes.ts';

/** The scope of a request that reaches a keyless deployment (no key store, or the local stack without `--api-key`). */
export const OPEN_SCOPE: KeyScope = { role: 'admin', datasets: [] };

/** The scope of a keyless request on a route that needs none (`GET /health`): no dataset. */
export const NO_SCOPE: KeyScope = { role: 'predict', datasets: [] };

/** How the API learns a request's scope. */
export interface AuthOptions {
  keys: KeyStore;
  /** A request without an API key id is admin (the local stack without `--api-key`); else 403. */
  openWithoutKey: boolean;
}

/** The request's key id, as API Gateway (or the local stand-in) puts it in the proxy event. */
export function apiKeyIdOf(event: Pick<APIGatewayProxyEvent, 'requestContext'>): string | undefined {
  const id = event.requestContext?.identity?.apiKeyId;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/** The scope of the request's key; `undefined` when it has none that counts. */
export async function scopeOfRequest(
  event: Pick<APIGatewayProxyEvent, 'requestContext'>,
  auth: AuthOptions | undefined,
): Promise<KeyScope | undefined> {
  if (!auth) return OPEN_SCOPE;
  const id = apiKeyIdOf(event);
  if (id === undefined) return auth.openWithoutKey ? OPEN_SCOPE : undefined;
  return auth.keys.scopeOf(id);
}

/** Whether a scope covers a dataset. */
export function coversDataset(scope: KeyScope, dataset: string): boolean {
  return scope.role === 'admin' || scope.datasets.includes(dataset);
}

/**
 * Throws 403 unless the scope may call a route of this role (on the dataset in the path, if any).
 * A malformed dataset name is a 400 first, so the error says what is wrong with the request.
 */
export function authorize(
  role: RouteRole,
  scope: KeyScope | undefined,
  event: Pick<APIGatewayProxyEvent, 'pathParameters'>,
): void {
  if (role === 'none') return;
  if (!scope) {
    throw new ForbiddenError('this API key is unknown, revoked or has no role; ask an admin for a key');
  }
  if (role === 'admin' && scope.role !== 'admin') {
    throw new ForbiddenError(
      `this route needs an admin key; this key may only predict on ${scope.datasets.join(', ')}`,
    );
  }
  const d = event.pathParameters?.d;
  if (d !== undefined) {
    const dataset = datasetParam(event);
    if (!coversDataset(scope, dataset)) {
      throw new ForbiddenError(`this API key does not cover dataset '${dataset}'`);
    }
  }
}
