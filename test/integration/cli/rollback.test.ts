import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CurrentPointerSchema, rollbackModel, runModel } from '../../../lib/cli/commands/model.ts';
import { EXIT } from '../../../lib/cli/exit-codes.ts';
import { ConflictError, NotFoundError } from '../../../lib/errors.ts';
import { currentModelKey, modelFileKey } from '../../../lib/storage/keys.ts';
import { deleteObject, getJson, putJson } from '../../../lib/storage/s3.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { closedPortUrl, testContext } from './helpers.ts';

const V1 = '20261127T090000Z-old001';
const V2 = '20261128T103418Z-new002';

describe('tlearn model --rollback against the S3 emulator', () => {
  let emu: Emulator;
  let cwd: string;
  let flags: string[];

  beforeAll(async () => {
    emu = await startEmulator();
    cwd = await mkdtemp(join(tmpdir(), 'tlearn-rollback-'));
    flags = ['--s3-endpoint', emu.endpoint, '--bucket', emu.bucket, '--region', emu.region];
  });
  afterAll(async () => {
    await emu.stop();
    await rm(cwd, { recursive: true, force: true });
  });
  beforeEach(async () => {
    emu.reset();
    const { s3 } = emu.clients;
    await putJson(s3, emu.bucket, modelFileKey('pets', V1, 'model.json'), { classes: ['cat', 'dog'] });
    await putJson(s3, emu.bucket, modelFileKey('pets', V2, 'model.json'), { classes: ['cat', 'dog'] });
    await putJson(s3, emu.bucket, currentModelKey('pets'), {
      version: V2,
      promotedAt: '2026-11-28T10:35:00.000Z',
      previous: V1,
    });
  });
  const current = () => getJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), CurrentPointerSchema);

  it('points current.json at the previous version, keeping the rolled-back one as previous', async () => {
    const { ctx, stdout } = testContext(cwd);

    const code = await runModel(['pets', '--rollback', ...flags], ctx);

    expect(code).toBe(EXIT.OK);
    const pointer = await current();
    expect(pointer.version).toBe(V1);
    expect(pointer.previous).toBe(V2);
    expect(Date.now() - Date.parse(pointer.promotedAt)).toBeLessThan(60_000);
    expect(stdout()).toBe(`rolled back 'pets' from ${V2} to ${V1}; undo with: tlearn model pets --rollback`);
  });

  it('rolling back twice returns to the original version', async () => {
    await rollbackModel(emu.clients.s3, emu.bucket, 'pets', new Date('2026-11-29T00:00:00Z'));

    const r = await rollbackModel(emu.clients.s3, emu.bucket, 'pets', new Date('2026-11-29T00:01:00Z'));

    expect(r).toEqual({
      from: V1,
      to: V2,
      pointer: { version: V2, promotedAt: '2026-11-29T00:01:00.000Z', previous: V1 },
    });
    expect(await current()).toEqual(r.pointer);
  });

  it('refuses with a clear message when there is no previous version', async () => {
    await putJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), {
      version: V2,
      promotedAt: '2026-11-28T10:35:00.000Z',
      previous: null,
    });
    const { ctx, stderr } = testContext(cwd);

    const code = await runModel(['pets', '--rollback', ...flags], ctx);

    expect(code).toBe(EXIT.FAILURE);
    expect(stderr()).toBe(
      `tlearn model: dataset 'pets' has no previous model to roll back to: ${V2} is the only one promoted`,
    );
    expect((await current()).version).toBe(V2);
  });

  it("refuses when the previous version's model.json is gone, leaving current.json alone", async () => {
    await deleteObject(emu.clients.s3, emu.bucket, modelFileKey('pets', V1, 'model.json'));

    await expect(rollbackModel(emu.clients.s3, emu.bucket, 'pets', new Date())).rejects.toThrow(
      NotFoundError,
    );
    await expect(rollbackModel(emu.clients.s3, emu.bucket, 'pets', new Date())).rejects.toThrow(
      `cannot roll back 'pets' to ${V1}: s3://${emu.bucket}/models/pets/${V1}/model.json does not exist`,
    );
    expect((await current()).version).toBe(V2);
  });

  it('says so when the dataset has no promoted model at all', async () => {
    const { ctx, stderr } = testContext(cwd);

    const code = await runModel(['cats', '--rollback', ...flags], ctx);

    expect(code).toBe(EXIT.FAILURE);
    expect(stderr()).toBe(
      "tlearn model: dataset 'cats' has no promoted model (no models/cats/current.json); nothing to roll back",
    );
  });

  it('treats the first promotion (previous: null) as nothing to roll back to', async () => {
    const first = { version: V2, promotedAt: '2026-11-28T10:35:00.000Z', previous: null };
    await putJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), first);

    await expect(rollbackModel(emu.clients.s3, emu.bucket, 'pets', new Date())).rejects.toThrow(
      ConflictError,
    );
    const raw = await getJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), z.record(z.unknown()));
    expect(raw).toEqual(first);
  });

  it('reports a rollback that loses a race to a concurrent conditional write (409) as a conflict', async () => {
    // S3 answers 409 ConditionalRequestConflict (not 412) when another conditional write won.
    const real = emu.clients.s3;
    const racing = Object.create(real) as S3Client;
    racing.send = ((command: unknown, ...rest: unknown[]) => {
      if (command instanceof PutObjectCommand)
        return Promise.reject(
          new S3ServiceException({
            name: 'ConditionalRequestConflict',
            $fault: 'client',
            $metadata: { httpStatusCode: 409 },
          }),
        );
      return (real.send as (...a: unknown[]) => unknown)(command, ...rest);
    }) as S3Client['send'];

    await expect(rollbackModel(racing, emu.bucket, 'pets', new Date())).rejects.toThrow(
      /current\.json changed while rolling back/,
    );
    expect((await current()).version).toBe(V2);
  });

  it('refuses a pointer the promote step would never write, leaving it as it is', async () => {
    await putJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), { version: V2, promotedAt: 'x' });

    await expect(rollbackModel(emu.clients.s3, emu.bucket, 'pets', new Date())).rejects.toThrow(
      'is not a valid model pointer',
    );
    const raw = await getJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), z.record(z.unknown()));
    expect(raw).toEqual({ version: V2, promotedAt: 'x' });
  });

  it('exits 4 naming the bucket and its source when S3 cannot be reached', async () => {
    const closed = await closedPortUrl();
    const { ctx, stderr } = testContext(cwd);

    const code = await runModel(['pets', '--rollback', '--s3-endpoint', closed, '--timeout', '2'], ctx);

    expect(code).toBe(EXIT.UNAVAILABLE);
    expect(stderr()).toBe(
      `tlearn model: using s3://tlearn-local at ${closed}, the local stack (endpoint from --s3-endpoint; start it with \`npm start\`): connection refused`,
    );
  });
});
