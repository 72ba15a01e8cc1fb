/**
 * Scoped API keys: what a key may do (its role and datasets), the store that keeps them (API
 * Gateway's own API keys and usage plan on AWS, lib/api/keys-aws.ts; a small JSON file locally,
 * below) and the request body of `POST /keys`. The scope is carried by the key itself (tags on AWS),
 * so the function authorizes from the request's API key id alone.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { DATASET_NAME_RE, DatasetName } from '../storage/keys.ts';

/** Tag (AWS) / field naming a key's role. */
export const KEY_ROLE_TAG = 'tlearn-role';
/** Tag naming a predict key's datasets, space-separated (tag values allow no commas). */
export const KEY_DATASETS_TAG = 'tlearn-datasets';
/**
 * Tag (AWS) naming the stack a key belongs to: the API role's IAM policy lets it read, delete and
 * create only keys carrying its own stack's value (infra/stack.ts, docs/ARCHITECTURE.md "Tenancy").
 */
export const KEY_STACK_TAG = 'tlearn-stack';

/** Roles a key can have: `admin` may do everything on every dataset; `predict` see lib/api/auth.ts. */
export const KEY_ROLES = ['admin', 'predict'] as const;
export type KeyRole = (typeof KEY_ROLES)[number];

/** What a key may do. */
export interface KeyScope {
  role: KeyRole;
  /** Datasets of a predict key; empty for admin (all datasets). */
  datasets: readonly string[];
}

/** A key as listed (never its value). */
export interface ApiKeyInfo extends KeyScope {
  id: string;
  name: string;
  enabled: boolean;
  createdAt: string | null;
}

/** A key just created: the only time its value is shown. */
export interface CreatedApiKey extends ApiKeyInfo {
  value: string;
}

/** The API stage a request came through (on AWS it selects the usage plan keys are added to). */
export interface GatewayStage {
  apiId: string;
  stage: string;
}

/** Where keys live. */
export interface KeyStore {
  /** The scope of an enabled key, or undefined (unknown, revoked, disabled or without a role). */
  scopeOf(id: string): Promise<KeyScope | undefined>;
  list(stage: GatewayStage): Promise<ApiKeyInfo[]>;
  create(input: CreateKeyInput, stage: GatewayStage): Promise<CreatedApiKey>;
  /** Deletes a key of this API; false when there is no such key. */
  revoke(id: string, stage: GatewayStage): Promise<boolean>;
}

/** `POST /keys` body. */
export const CreateKeyInput = z
  .object({
    role: z.enum(KEY_ROLES),
    datasets: z.array(DatasetName).max(20, 'at most 20 datasets per key').default([]),
    name: z
      .string()
      .regex(/^[A-Za-z0-9 _.:/=+@-]{1,64}$/, 'a name has 1-64 letters, digits, spaces or _.:/=+@-')
      .optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.role === 'predict' && v.datasets.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['datasets'],
        message: 'a predict key needs at least one dataset',
      });
    }
    if (v.role === 'admin' && v.datasets.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['datasets'],
        message: 'an admin key covers every dataset; omit datasets',
      });
    }
  });
export type CreateKeyInput = z.output<typeof CreateKeyInput>;

/** A key's scope as tags (AWS) and back. */
export function scopeToTags(scope: KeyScope): Record<string, string> {
  return scope.role === 'admin'
    ? { [KEY_ROLE_TAG]: 'admin' }
    : { [KEY_ROLE_TAG]: 'predict', [KEY_DATASETS_TAG]: [...new Set(scope.datasets)].sort().join(' ') };
}

/** The scope carried by a key's tags; undefined when the tags name no known role. */
export function scopeFromTags(tags: Record<string, string> | undefined): KeyScope | undefined {
  const role = tags?.[KEY_ROLE_TAG];
  if (role === 'admin') return { role, datasets: [] };
  if (role !== 'predict') return undefined;
  const datasets = (tags?.[KEY_DATASETS_TAG] ?? '').split(' ').filter((d) => DATASET_NAME_RE.test(d));
  return { role, datasets };
}

/** A default name for a new key: `predict-pets-cats`. */
export function defaultKeyName(input: CreateKeyInput): string {
  return [input.role, ...input.datasets].join('-').slice(0, 64);
}

interface StoredKey extends ApiKeyInfo {
  value: string;
}

/** A key store with lookup by value: what the local API Gateway stand-in checks `x-api-key` with. */
export interface LocalKeyStore extends KeyStore {
  /** The id of the enabled key with this value, if any. */
  idForValue(value: string): Promise<string | undefined>;
}

/**
 * The local stack's keys, in a JSON file (mode 0600) that the local API Gateway stand-in and the
 * API function both read (each call reads it again, so a key created through one is seen by the
 * other). `local-admin` is the admin key (listed always): the `--api-key` value (`adminKey`) on the
 * stand-in's side; without `--api-key`, requests without a key are admin (lib/api/auth.ts).
 */
export function createLocalKeyStore(opts: {
  file: string;
  adminKey?: string;
  now?: () => Date;
}): LocalKeyStore {
  const now = opts.now ?? (() => new Date());
  const load = async (): Promise<StoredKey[]> => {
    try {
      const stored = JSON.parse(await readFile(opts.file, 'utf8')) as StoredKey[];
      return stored.filter((k) => k.id !== LOCAL_ADMIN_KEY_ID);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  };
  const save = async (keys: StoredKey[]) => {
    await mkdir(dirname(opts.file), { recursive: true });
    const tmp = `${opts.file}.${process.pid}.${randomUUID()}.tmp`;
    await writeFile(tmp, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, opts.file);
  };
  const admin: StoredKey = {
    id: LOCAL_ADMIN_KEY_ID,
    name: 'local admin (--api-key)',
    role: 'admin',
    datasets: [],
    enabled: true,
    createdAt: null,
    value: opts.adminKey ?? '',
  };
  const info = ({ value: _value, ...rest }: StoredKey): ApiKeyInfo => rest;
  return {
    async scopeOf(id) {
      const k = [admin, ...(await load())].find((x) => x.id === id && x.enabled);
      return k ? { role: k.role, datasets: k.datasets } : undefined;
    },
    async idForValue(value) {
      if (opts.adminKey !== undefined && value === opts.adminKey) return LOCAL_ADMIN_KEY_ID;
      return (await load()).find((x) => x.enabled && x.value === value)?.id;
    },
    async list() {
      return [admin, ...(await load())].map(info);
    },
    async create(input) {
      const keys = await load();
      const key: StoredKey = {
        id: randomUUID().replace(/-/g, '').slice(0, 10),
        name: input.name ?? defaultKeyName(input),
        role: input.role,
        datasets: [...new Set(input.datasets)].sort(),
        enabled: true,
        createdAt: now().toISOString(),
        value: randomBytes(30).toString('base64url'),
      };
      await save([...keys, key]);
      return key;
    },
    async revoke(id) {
      const keys = await load();
      const kept = keys.filter((k) => k.id !== id);
      if (kept.length === keys.length) return false;
      await save(kept);
      return true;
    },
  };
}

/** The local stack's keys file, under its data dir. */
export const LOCAL_KEYS_FILE = 'api-keys.json';

/** Id of the local admin key (`--api-key`). */
export const LOCAL_ADMIN_KEY_ID = 'local-admin';
