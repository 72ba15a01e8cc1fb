/**
 * Scoped API keys end to end on loopback: the local API Gateway stand-in with an admin key
 * (`--api-key`), the real API over the S3 emulator, keys made with `tlearn keys create` and used
 * over HTTP. A predict key predicts on its dataset and can do nothing else.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../../../lib/api/app.ts';
import { createLocalKeyStore, LOCAL_KEYS_FILE } from '../../../lib/api/keys.ts';
import { runKeys } from '../../../lib/cli/commands/keys.ts';
import type { CliContext } from '../../../lib/cli/remote.ts';
import { type HttpApi, startHttpApi } from '../../../lib/local/http-api.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { putObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage } from '../../helpers/images.ts';
import { makeHead, promote, seedModel } from '../api/support.ts';

const ADMIN = 'admin-secret-for-this-test';
const V1 = '20261128T100000Z-aaaaaa';
const V2 = '20261129T100000Z-bbbbbb';

describe('scoped API keys through the local stand-in, end to end', () => {
  let em: Emulator;
  let dir: string;
  let http: HttpApi;
  let png: Uint8Array;
  const started: string[] = [];

  /** Runs `tlearn keys …` against the stand-in; stdout lines, stderr lines, exit code. */
  async function cli(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const ctx: CliContext = { env: {}, cwd: dir, out: (l) => out.push(l), err: (l) => err.push(l) };
    const code = await runKeys([...argv, '--endpoint', http.url, '--api-key', ADMIN], ctx);
    return { code, out, err };
  }

  function call(
    method: string,
    path: string,
    key: string | undefined,
    body?: Uint8Array | string,
    type?: string,
  ) {
    return fetch(`${http.url}${path}`, {
      method,
      headers: { ...(key ? { 'x-api-key': key } : {}), ...(type ? { 'content-type': type } : {}) },
      ...(body !== undefined ? { body } : {}),
    });
  }

  beforeAll(async () => {
    em = await startEmulator();
    dir = await mkdtemp(join(tmpdir(), 'tlearn-keys-e2e-'));
    const extractor = fakeExtractor({ size: 32 });
    const { s3 } = em.clients;
    png = await makeImage('png', {
      width: 32,
      height: 32,
      color: [200, 30, 30],
      pattern: 'hstripes',
      seed: 1,
    });
    for (const d of ['pets', 'cars']) {
      await seedModel(s3, em.bucket, d, V1, makeHead(['a', 'b'], extractor.dims, extractor.specId, 5));
      await seedModel(s3, em.bucket, d, V2, makeHead(['a', 'b'], extractor.dims, extractor.specId, 6));
      await promote(s3, em.bucket, d, V2, V1);
      await putObject(s3, em.bucket, `datasets/${d}/a/1.png`, png);
    }
    const file = join(dir, LOCAL_KEYS_FILE);
    const api = createApi({
      s3,
      sfn: {
        send: async () => {
          started.push('training');
          return {
            executionArn: 'arn:aws:states:us-east-1:1:execution:t:x',
            startDate: new Date(),
            $metadata: {},
          };
        },
      },
      extractor: Promise.resolve(extractor),
      cache: createModelCache({ s3, bucket: em.bucket, refreshSeconds: 0, log: silentLog }),
      config: {
        bucket: em.bucket,
        stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:t',
        maxBodyBytes: 6 * 1024 * 1024,
        limitInputPixels: 40_000_000,
        maxBatch: 2,
        corsOrigin: undefined,
      },
      log: silentLog,
      // As the local stack wires it: the handler reads the keys file the stand-in checks values with.
      auth: { keys: createLocalKeyStore({ file }), openWithoutKey: true },
    });
    http = await startHttpApi({
      port: 0,
      region: 'us-east-1',
      handler: (e) => api(e),
      apiKey: ADMIN,
      keys: createLocalKeyStore({ file, adminKey: ADMIN }),
      log: silentLog,
    });
  }, 60_000);

  afterAll(async () => {
    await http?.stop(1000);
    await em?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a predict key with the CLI, printing its value alone on the last stdout line, stored 0600', async () => {
    const created = await cli(['create', '--role', 'predict', '--dataset', 'pets']);
    const value = created.out.at(-1) ?? '';

    expect(created.code).toBe(0);
    expect(created.out).toHaveLength(1);
    expect(value).toMatch(/^[A-Za-z0-9_-]{30,}$/);
    expect(created.err.join('\n')).toMatch(/created predict key \w+ .* for pets/);
    expect((await stat(join(dir, LOCAL_KEYS_FILE))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, LOCAL_KEYS_FILE), 'utf8')).toContain(value);
  });

  it('lets a predict key predict on its dataset and list only its datasets', async () => {
    const key = (await cli(['create', '--role', 'predict', '--dataset', 'pets'])).out.at(-1);

    const predicted = await call('POST', '/datasets/pets/predictions', key, png, 'image/png');
    const model = await call('GET', '/datasets/pets/model', key);
    const list = await call('GET', '/datasets', key);
    const adminList = await call('GET', '/datasets', ADMIN);

    expect(predicted.status).toBe(200);
    expect(((await predicted.json()) as { label: string }).label).toMatch(/^[ab]$/);
    expect(model.status).toBe(200);
    expect(
      ((await list.json()) as { datasets: Array<{ name: string }> }).datasets.map((d) => d.name),
    ).toEqual(['pets']);
    expect(
      ((await adminList.json()) as { datasets: Array<{ name: string }> }).datasets.map((d) => d.name),
    ).toEqual(['cars', 'pets']);
  });

  it('refuses a predict key everything else with 403 Forbidden in the API error shape', async () => {
    const key = (await cli(['create', '--role', 'predict', '--dataset', 'pets'])).out.at(-1);

    const answers = await Promise.all([
      call('POST', '/datasets/pets/trainings', key, '{}', 'application/json'),
      call('POST', '/datasets/cars/predictions', key, png, 'image/png'),
      call('GET', '/datasets/cars/model', key),
      call('GET', '/datasets/pets', key),
      call('GET', '/keys', key),
      call('POST', '/keys', key, JSON.stringify({ role: 'admin' }), 'application/json'),
      // A rollback: promoting the previous version.
      call('POST', '/datasets/pets/model/promote', key, JSON.stringify({ version: V1 }), 'application/json'),
    ]);

    for (const res of answers) {
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('Forbidden');
    }
    expect(started).toEqual([]);
    const model = (await (await call('GET', '/datasets/pets/model', key)).json()) as {
      model: { version: string };
    };
    expect(model.model.version).toBe(V2);
  });

  it('lists keys without their values and revokes one, after which the gateway refuses it', async () => {
    const key = (
      await cli(['create', '--role', 'predict', '--dataset', 'cars', '--name', 'cars-app'])
    ).out.at(-1);
    const listed = await cli(['list', '--json']);
    const keys = JSON.parse(listed.out.join('\n')) as Array<{ id: string; name: string; value?: string }>;
    const id = keys.find((k) => k.name === 'cars-app')?.id ?? '';

    const before = await call('GET', '/datasets/cars/model', key);
    const revoked = await cli(['revoke', id]);
    const after = await call('GET', '/datasets/cars/model', key);
    const again = await cli(['revoke', id]);

    expect(keys.some((k) => k.value !== undefined)).toBe(false);
    expect(keys.map((k) => k.id)).toContain('local-admin');
    expect(before.status).toBe(200);
    expect(revoked).toMatchObject({ code: 0, out: [`revoked key ${id}`] });
    expect(after.status).toBe(403);
    expect(again.code).toBe(1);
    expect(again.err.join('\n')).toMatch(/KeyNotFound/);
  });

  it('keeps the admin key working for everything (a rollback too), and refuses a key revoking itself', async () => {
    const training = await call('POST', '/datasets/cars/trainings', ADMIN, '{}', 'application/json');
    const rollback = await call(
      'POST',
      '/datasets/cars/model/promote',
      ADMIN,
      JSON.stringify({ version: V1 }),
      'application/json',
    );
    const served = (await (await call('GET', '/datasets/cars/model', ADMIN)).json()) as {
      model: { version: string };
    };
    const missing = await call(
      'POST',
      '/datasets/cars/model/promote',
      ADMIN,
      JSON.stringify({ version: '20200101T000000Z-nope00' }),
      'application/json',
    );
    const self = await call('DELETE', '/keys/local-admin', ADMIN);

    expect(rollback.status).toBe(200);
    expect(await rollback.json()).toMatchObject({ pointer: { version: V1, previous: V2 } });
    expect(served.model.version).toBe(V1);
    expect(missing.status).toBe(404);
    expect(training.status).toBe(202);
    expect(self.status).toBe(409);
    expect(started).toEqual(['training']);
  });

  it('answers usage errors of the CLI with exit code 2 before calling the API', async () => {
    await expect(cli(['create', '--role', 'predict'])).rejects.toThrow(/at least one --dataset/);
    await expect(cli(['create', '--role', 'root'])).rejects.toThrow(/predict or admin/);
  });
});
