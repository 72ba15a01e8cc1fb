/**
 * Scoped keys on AWS: API Gateway's own API keys, tagged with their scope (lib/api/keys.ts) and
 * their stack (`tlearn-stack`), in the usage plan of the stage the request came through. The
 * gateway checks the key's value; the function reads its scope by id (cached a minute per
 * container: a revoked key is refused by the gateway itself). The API role's IAM policy admits
 * only keys with this stack's tag and this stack's usage plan (infra/stack.ts), so a key of
 * another stack or app reads as unknown here (AccessDenied), never as an error.
 */
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
import { NotFoundError } from '../errors.ts';
import {
  type ApiKeyInfo,
  defaultKeyName,
  type GatewayStage,
  KEY_STACK_TAG,
  type KeyScope,
  type KeyStore,
  scopeFromTags,
  scopeToTags,
} from './keys.ts';

/** How long a key's scope is trusted without asking API Gateway again. */
export const KEY_SCOPE_CACHE_MS = 60_000;

/** IAM refused: the key exists but is not this stack's (its `tlearn-stack` tag differs). */
function isAccessDenied(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return err.name === 'AccessDeniedException' || status === 403;
}

/**
 * The key store of a deployed stack. `stackTag` (the stack's name) goes on every key it creates
 * and must be on every key it reads: a key without it has no scope here.
 */
export function createApiGatewayKeyStore(
  client: APIGatewayClient,
  opts: { now?: () => number; stackTag?: string | undefined } = {},
): KeyStore {
  const now = opts.now ?? Date.now;
  const stackTags: Record<string, string> = opts.stackTag ? { [KEY_STACK_TAG]: opts.stackTag } : {};
  const cache = new Map<string, { scope: KeyScope | undefined; at: number }>();

  const usagePlanId = async (stage: GatewayStage): Promise<string> => {
    let position: string | undefined;
    do {
      const page = await client.send(new GetUsagePlansCommand({ position, limit: 500 }));
      const plan = page.items?.find((p) =>
        p.apiStages?.some((s) => s.apiId === stage.apiId && s.stage === stage.stage),
      );
      if (plan?.id) return plan.id;
      position = page.position;
    } while (position);
    throw new NotFoundError(
      `no usage plan covers API ${stage.apiId} stage ${stage.stage}; redeploy the stack`,
      {
        code: 'UsagePlanNotFound',
      },
    );
  };

  const describe = async (id: string): Promise<ApiKeyInfo | undefined> => {
    try {
      const k = await client.send(new GetApiKeyCommand({ apiKey: id, includeValue: false }));
      if (opts.stackTag && k.tags?.[KEY_STACK_TAG] !== opts.stackTag) return undefined;
      const scope = scopeFromTags(k.tags);
      if (!scope) return undefined;
      return {
        id,
        name: k.name ?? id,
        enabled: k.enabled ?? false,
        createdAt: k.createdDate ? k.createdDate.toISOString() : null,
        ...scope,
      };
    } catch (err) {
      if (err instanceof NotFoundException || isAccessDenied(err)) return undefined;
      throw err;
    }
  };

  const keyIds = async (stage: GatewayStage): Promise<string[]> => {
    const plan = await usagePlanId(stage);
    const ids: string[] = [];
    let position: string | undefined;
    do {
      const page = await client.send(
        new GetUsagePlanKeysCommand({ usagePlanId: plan, position, limit: 500 }),
      );
      for (const k of page.items ?? []) if (k.id) ids.push(k.id);
      position = page.position;
    } while (position);
    return ids;
  };

  return {
    async scopeOf(id) {
      const hit = cache.get(id);
      if (hit && now() - hit.at < KEY_SCOPE_CACHE_MS) return hit.scope;
      const info = await describe(id);
      const scope = info?.enabled ? { role: info.role, datasets: info.datasets } : undefined;
      cache.set(id, { scope, at: now() });
      return scope;
    },
    async list(stage) {
      const infos = await Promise.all((await keyIds(stage)).map(describe));
      return infos.filter((k): k is ApiKeyInfo => k !== undefined);
    },
    async create(input, stage) {
      const plan = await usagePlanId(stage);
      const name = input.name ?? defaultKeyName(input);
      const created = await client.send(
        new CreateApiKeyCommand({
          name,
          description: `tlearn ${input.role} key`,
          enabled: true,
          tags: { ...scopeToTags(input), ...stackTags },
        }),
      );
      if (!created.id || !created.value) throw new Error('API Gateway returned a key without id or value');
      await client.send(
        new CreateUsagePlanKeyCommand({ usagePlanId: plan, keyId: created.id, keyType: 'API_KEY' }),
      );
      return {
        id: created.id,
        name,
        role: input.role,
        datasets: [...new Set(input.datasets)].sort(),
        enabled: true,
        createdAt: created.createdDate ? created.createdDate.toISOString() : null,
        value: created.value,
      };
    },
    async revoke(id, stage) {
      // Only keys of this API's usage plan: never another stack's or another app's key.
      if (!(await keyIds(stage)).includes(id)) return false;
      await client.send(new DeleteApiKeyCommand({ apiKey: id }));
      cache.delete(id);
      return true;
    },
  };
}
