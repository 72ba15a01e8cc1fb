/** `GET /keys`, `POST /keys`, `DELETE /keys/{id}`: scoped API keys, managed by an admin key. */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { ConflictError, NotFoundError } from '../errors.ts';
import { apiKeyIdOf } from './auth.ts';
import { parseWith, readJsonBody } from './http.ts';
import {
  type ApiKeyInfo,
  type CreatedApiKey,
  CreateKeyInput,
  type GatewayStage,
  type KeyStore,
} from './keys.ts';
import type { RouteContext } from './types.ts';

function store(ctx: RouteContext): KeyStore {
  if (!ctx.auth) {
    throw new ConflictError('this API runs without a key store; keys cannot be managed here', {
      code: 'KeysUnavailable',
    });
  }
  return ctx.auth.keys;
}

function stageOf(event: APIGatewayProxyEvent): GatewayStage {
  return { apiId: event.requestContext?.apiId ?? 'local', stage: event.requestContext?.stage ?? 'local' };
}

/** `GET /keys`: every key of this API with its scope (never the values). */
export async function listKeysRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ keys: ApiKeyInfo[] }> {
  const keys = await store(ctx).list(stageOf(event));
  return { keys: keys.sort((a, b) => a.name.localeCompare(b.name)) };
}

/** `POST /keys {role, datasets, name?}`: a new key; its value is shown only in this answer. */
export async function createKeyRoute(event: APIGatewayProxyEvent, ctx: RouteContext): Promise<CreatedApiKey> {
  const input = parseWith(CreateKeyInput, readJsonBody(event, 64 * 1024), 'key request');
  return store(ctx).create(input, stageOf(event));
}

/** `DELETE /keys/{id}`: revokes a key (not the one making the request). */
export async function revokeKeyRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ revoked: string }> {
  const id = event.pathParameters?.id ?? '';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id))
    throw new NotFoundError(`no API key '${id.slice(0, 64)}'`, { code: 'KeyNotFound' });
  if (id === apiKeyIdOf(event)) {
    throw new ConflictError('a key cannot revoke itself; use another admin key', { code: 'KeyInUse' });
  }
  if (!(await store(ctx).revoke(id, stageOf(event)))) {
    throw new NotFoundError(`no API key '${id}' in this API; see GET /keys`, { code: 'KeyNotFound' });
  }
  return { revoked: id };
}
