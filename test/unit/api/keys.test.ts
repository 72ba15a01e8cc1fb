import {
  type APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  GetApiKeyCommand,
  GetUsagePlanKeysCommand,
  GetUsagePlansCommand,
  NotFoundException,
} from '@aws-sdk/client-api-gateway';
import { describe, expect, it } from 'vitest';
import { authorize, scopeOfRequest } from '../../../lib/api/auth.ts';
import { ForbiddenError } from '../../../lib/api/errors.ts';
import { CreateKeyInput, scopeFromTags, scopeToTags } from '../../../lib/api/keys.ts';
import { createApiGatewayKeyStore, KEY_SCOPE_CACHE_MS } from '../../../lib/api/keys-aws.ts';
import { publicErrorCode, publicReason } from '../../../lib/api/public-error.ts';

const STAGE = { apiId: 'api123', stage: 'v1' };

/** API Gateway's key and usage plan API, in memory, answering the commands the store sends. */
function fakeApiGateway() {
  const keys = new Map<
    string,
    { name: string; enabled: boolean; tags: Record<string, string>; value: string }
  >([
    ['admin1', { name: 'admin', enabled: true, tags: { 'tlearn-role': 'admin' }, value: 'v-admin' }],
    ['other', { name: 'other app', enabled: true, tags: {}, value: 'v-other' }],
  ]);
  const planKeys = new Map<string, string[]>([
    ['plan-ours', ['admin1']],
    ['plan-theirs', ['other']],
  ]);
  const sent: string[] = [];
  let n = 0;
  const client = {
    async send(command: unknown) {
      sent.push((command as object).constructor.name);
      if (command instanceof GetUsagePlansCommand) {
        return {
          items: [
            { id: 'plan-theirs', apiStages: [{ apiId: 'zzz', stage: 'v1' }] },
            { id: 'plan-ours', apiStages: [STAGE] },
          ],
        };
      }
      if (command instanceof GetUsagePlanKeysCommand) {
        return { items: (planKeys.get(command.input.usagePlanId ?? '') ?? []).map((id) => ({ id })) };
      }
      if (command instanceof GetApiKeyCommand) {
        // IAM's answer for a key whose tlearn-stack tag is not the role's (infra/stack.ts).
        if (command.input.apiKey === 'denied')
          throw Object.assign(new Error('not authorized to perform: apigateway:GET'), {
            name: 'AccessDeniedException',
            $metadata: { httpStatusCode: 403 },
          });
        const k = keys.get(command.input.apiKey ?? '');
        if (!k)
          throw new NotFoundException({ message: 'Invalid API Key identifier specified', $metadata: {} });
        return {
          id: command.input.apiKey,
          name: k.name,
          enabled: k.enabled,
          tags: k.tags,
          createdDate: new Date(0),
        };
      }
      if (command instanceof CreateApiKeyCommand) {
        n += 1;
        const id = `new${n}`;
        keys.set(id, {
          name: command.input.name ?? '',
          enabled: true,
          tags: command.input.tags ?? {},
          value: `v${n}`,
        });
        return { id, value: `v${n}`, createdDate: new Date(0) };
      }
      if (command instanceof CreateUsagePlanKeyCommand) {
        planKeys.get(command.input.usagePlanId ?? '')?.push(command.input.keyId ?? '');
        return {};
      }
      if (command instanceof DeleteApiKeyCommand) {
        keys.delete(command.input.apiKey ?? '');
        for (const ids of planKeys.values()) ids.splice(ids.indexOf(command.input.apiKey ?? ''), 1);
        return {};
      }
      throw new Error(`unexpected command ${(command as object).constructor.name}`);
    },
  };
  return { client: client as unknown as APIGatewayClient, keys, planKeys, sent };
}

describe('scoped keys on API Gateway (lib/api/keys-aws.ts)', () => {
  it('creates a tagged key in the usage plan of the request’s API stage, and reads its scope back', async () => {
    const gw = fakeApiGateway();
    const store = createApiGatewayKeyStore(gw.client);

    const created = await store.create({ role: 'predict', datasets: ['pets', 'cats', 'pets'] }, STAGE);

    expect(created).toMatchObject({ id: 'new1', value: 'v1', role: 'predict', datasets: ['cats', 'pets'] });
    expect(gw.keys.get('new1')?.tags).toEqual({ 'tlearn-role': 'predict', 'tlearn-datasets': 'cats pets' });
    expect(gw.planKeys.get('plan-ours')).toContain('new1');
    expect(await store.scopeOf('new1')).toEqual({ role: 'predict', datasets: ['cats', 'pets'] });
    expect(await store.scopeOf('admin1')).toEqual({ role: 'admin', datasets: [] });
  });

  it('gives no scope to an unknown key or one without a tlearn role, and caches answers for a minute', async () => {
    const gw = fakeApiGateway();
    let now = 0;
    const store = createApiGatewayKeyStore(gw.client, { now: () => now });

    expect(await store.scopeOf('missing')).toBeUndefined();
    expect(await store.scopeOf('other')).toBeUndefined();
    const calls = gw.sent.length;
    await store.scopeOf('other');
    expect(gw.sent.length).toBe(calls);
    now = KEY_SCOPE_CACHE_MS + 1;
    await store.scopeOf('other');
    expect(gw.sent.length).toBe(calls + 1);
  });

  it('tags the keys it creates with its stack, and gives no scope to a key of another stack', async () => {
    const gw = fakeApiGateway();
    gw.keys.set('sibling', {
      name: 'sibling',
      enabled: true,
      tags: { 'tlearn-role': 'admin', 'tlearn-stack': 'OtherStack' },
      value: 'v-sibling',
    });
    const store = createApiGatewayKeyStore(gw.client, { stackTag: 'Tlearn' });

    const created = await store.create({ role: 'admin', datasets: [] }, STAGE);

    expect(gw.keys.get(created.id)?.tags).toEqual({ 'tlearn-role': 'admin', 'tlearn-stack': 'Tlearn' });
    expect(await store.scopeOf(created.id)).toEqual({ role: 'admin', datasets: [] });
    expect(await store.scopeOf('sibling')).toBeUndefined();
    expect(await store.scopeOf('denied')).toBeUndefined();
  });

  it('lists and revokes only keys of its own usage plan', async () => {
    const gw = fakeApiGateway();
    const store = createApiGatewayKeyStore(gw.client);

    const listed = await store.list(STAGE);
    const foreign = await store.revoke('other', STAGE);

    expect(listed.map((k) => k.id)).toEqual(['admin1']);
    expect(foreign).toBe(false);
    expect(gw.keys.has('other')).toBe(true);
    expect(await store.revoke('admin1', STAGE)).toBe(true);
    expect(gw.keys.has('admin1')).toBe(false);
  });
});

describe('key scopes and authorization', () => {
  it('round-trips a scope through tags, whose values allow no commas', () => {
    const tags = scopeToTags({ role: 'predict', datasets: ['b', 'a'] });
    expect(Object.values(tags).join('')).not.toContain(',');
    expect(scopeFromTags(tags)).toEqual({ role: 'predict', datasets: ['a', 'b'] });
    expect(scopeFromTags({ 'tlearn-role': 'root' })).toBeUndefined();
  });

  it('validates POST /keys bodies: predict needs datasets, admin takes none', () => {
    expect(CreateKeyInput.safeParse({ role: 'predict', datasets: [] }).success).toBe(false);
    expect(CreateKeyInput.safeParse({ role: 'admin', datasets: ['pets'] }).success).toBe(false);
    expect(CreateKeyInput.safeParse({ role: 'predict', datasets: ['Bad Name'] }).success).toBe(false);
    expect(CreateKeyInput.safeParse({ role: 'predict', datasets: ['pets'], extra: 1 }).success).toBe(false);
    expect(CreateKeyInput.parse({ role: 'admin' })).toEqual({ role: 'admin', datasets: [] });
  });

  it('lets a predict key use predict routes of its datasets only, and an admin key everything', () => {
    const predict = { role: 'predict', datasets: ['pets'] } as const;
    const path = (d: string) => ({ pathParameters: { d } });

    expect(() => authorize('predict', predict, path('pets'))).not.toThrow();
    expect(() => authorize('predict', predict, { pathParameters: null })).not.toThrow();
    expect(() => authorize('predict', predict, path('cars'))).toThrow(ForbiddenError);
    expect(() => authorize('admin', predict, path('pets'))).toThrow(/needs an admin key/);
    expect(() => authorize('predict', undefined, path('pets'))).toThrow(ForbiddenError);
    expect(() => authorize('admin', { role: 'admin', datasets: [] }, path('cars'))).not.toThrow();
    expect(() => authorize('predict', predict, path('Bad_Name'))).toThrow(/invalid dataset name/);
  });

  it('treats a request without a key id as admin only where the API runs open', async () => {
    const store = {
      scopeOf: async () => undefined,
      list: async () => [],
      create: async () => {
        throw new Error();
      },
      revoke: async () => false,
    };
    const event = { requestContext: { identity: { apiKeyId: null } } } as never;

    expect(await scopeOfRequest(event, { keys: store, openWithoutKey: true })).toEqual({
      role: 'admin',
      datasets: [],
    });
    expect(await scopeOfRequest(event, { keys: store, openWithoutKey: false })).toBeUndefined();
  });
});

describe('execution errors shown to clients', () => {
  it('keeps a code and one line: no stack, no bucket path, no ARN', () => {
    const cause = JSON.stringify({
      errorType: 'InsufficientDataError',
      errorMessage:
        "only label 'cat' has features under s3://tlearn-data-123/features/pets/ (arn:aws:s3:::tlearn-data-123)",
      trace: [
        'InsufficientDataError: …',
        '    at trainHead (/var/task/functions/train-head/handler.mjs:1:2)',
      ],
    });

    expect(publicReason(cause)).toBe("only label 'cat' has features under (an S3 object) ((an AWS resource)");
    expect(publicReason('Error: boom\n    at x (/var/task/a.js:1:1)')).toBe('Error: boom');
    expect(publicReason('failed reading models/pets/v1/model.json')).toBe('failed reading (an S3 object)');
    expect(publicReason('x'.repeat(500))?.length).toBe(300);
    expect(publicErrorCode('TrainHeadFailed')).toBe('TrainHeadFailed');
    expect(publicErrorCode('States.TaskFailed')).toBe('States.TaskFailed');
    expect(publicErrorCode('weird error text: /var/task')).toBe('Error');
    expect(publicReason(null)).toBeNull();
  });
});
