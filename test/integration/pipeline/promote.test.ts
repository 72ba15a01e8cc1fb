import { CopyObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { type PromoteDeps, type PromoteResult, promoteModel } from '../../../lib/pipeline/promote.ts';
import { runTrainingJob } from '../../../lib/pipeline/train-job.ts';
import { CurrentPointer } from '../../../lib/serving/current-pointer.ts';
import { currentModelKey, modelFileKey } from '../../../lib/storage/keys.ts';
import { getJson, putJson, putObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeContext, loadEvent, putImageWithFeature, setHandlerEnv } from './support.ts';

const OLD = '20260101T000000Z-aaaaaaaa';
const NEW = '20260101T010000Z-bbbbbbbb';
const NEWER = '20260102T000000Z-cccccccc';

describe('promoting a model version (emulated S3)', () => {
  let emu: Emulator;
  let deps: PromoteDeps;
  /** A real model.json, trained once, copied under every version a test needs. */
  let modelJson: Record<string, unknown>;
  const conditionalHeaders: Record<string, string | undefined>[] = [];

  async function version(v: string, dataset = 'pets'): Promise<void> {
    await putJson(emu.clients.s3, emu.bucket, modelFileKey(dataset, v, 'model.json'), {
      ...modelJson,
      dataset,
      version: v,
    });
  }

  async function current(dataset = 'pets'): Promise<CurrentPointer> {
    return getJson(emu.clients.s3, emu.bucket, currentModelKey(dataset), CurrentPointer);
  }

  beforeAll(async () => {
    emu = await startEmulator();
    emu.clients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string; IfMatch?: string; IfNoneMatch?: string };
        if (context.commandName === 'PutObjectCommand' && input.Key?.endsWith('current.json')) {
          conditionalHeaders.push({ IfMatch: input.IfMatch, IfNoneMatch: input.IfNoneMatch });
        }
        return next(args);
      },
      { step: 'initialize', name: 'record-conditions' },
    );
    deps = {
      s3: emu.clients.s3,
      bucket: emu.bucket,
      log: silentLog,
      now: () => new Date('2026-01-02T12:00:00Z'),
    };
    for (const label of ['cat', 'dog']) {
      for (let i = 0; i < 3; i++)
        await putImageWithFeature(emu, `datasets/seed/${label}/${i}.png`, { seed: i });
    }
    const trained = await runTrainingJob(
      { dataset: 'seed', trigger: 'manual', requestedAt: '2026-01-01T00:00:00Z' },
      {
        s3: emu.clients.s3,
        bucket: emu.bucket,
        training: { featureConcurrency: 4, refitOnAll: false, C: 1, maxIter: 50 },
        log: silentLog,
      },
    );
    modelJson = await getJson(
      emu.clients.s3,
      emu.bucket,
      modelFileKey('seed', trained.version, 'model.json'),
      z.record(z.unknown()),
    );
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
    conditionalHeaders.length = 0;
  });

  it('promotes the first version with previous null, creating current.json only if absent', async () => {
    await version(OLD);

    const r = await promoteModel({ dataset: 'pets', version: OLD }, deps);

    expect(r).toEqual({ promoted: true, version: OLD, previous: null });
    expect(await current()).toEqual({ version: OLD, promotedAt: '2026-01-02T12:00:00.000Z', previous: null });
    expect(conditionalHeaders).toEqual([{ IfMatch: undefined, IfNoneMatch: '*' }]);
  });

  it('lets a newer version replace the current one, conditional on the ETag read', async () => {
    await version(OLD);
    await version(NEW);
    await promoteModel({ dataset: 'pets', version: OLD }, deps);

    const r = await promoteModel({ dataset: 'pets', version: NEW }, deps);

    expect(r).toEqual({ promoted: true, version: NEW, previous: OLD });
    expect(await current()).toMatchObject({ version: NEW, previous: OLD });
    expect(conditionalHeaders[1]?.IfMatch).toMatch(/^"[^"]+"$/);
  });

  it('never lets an older version overwrite a newer one', async () => {
    await version(OLD);
    await version(NEW);
    await promoteModel({ dataset: 'pets', version: NEW }, deps);

    const r = await promoteModel({ dataset: 'pets', version: OLD }, deps);

    expect(r).toMatchObject({ promoted: false, version: OLD, previous: NEW });
    expect(r.reason).toContain(`a newer version (${NEW}) is already promoted`);
    expect(await current()).toMatchObject({ version: NEW, previous: null });
  });

  it('never promotes a version without model.json or with an invalid one', async () => {
    await version(OLD);
    await promoteModel({ dataset: 'pets', version: OLD }, deps);
    await putJson(emu.clients.s3, emu.bucket, modelFileKey('pets', NEW, 'report.json'), { partial: true });
    await putObject(
      emu.clients.s3,
      emu.bucket,
      modelFileKey('pets', NEWER, 'model.json'),
      '{"classes": ["cat"',
    );

    const missing = await promoteModel({ dataset: 'pets', version: NEW }, deps);
    const invalid = await promoteModel({ dataset: 'pets', version: NEWER }, deps);

    expect(missing).toMatchObject({ promoted: false, reason: expect.stringContaining('has no model.json') });
    expect(invalid).toMatchObject({
      promoted: false,
      reason: expect.stringContaining('is not a valid model'),
    });
    expect((await current()).version).toBe(OLD);
  });

  it("refuses another dataset's model", async () => {
    await version(NEW, 'birds');
    await emu.clients.s3.send(
      new CopyObjectCommand({
        Bucket: emu.bucket,
        CopySource: `${emu.bucket}/${modelFileKey('birds', NEW, 'model.json')}`,
        Key: modelFileKey('pets', NEW, 'model.json'),
      }),
    );

    const r = await promoteModel({ dataset: 'pets', version: NEW }, deps);

    expect(r).toMatchObject({
      promoted: false,
      reason: expect.stringContaining("belongs to dataset 'birds'"),
    });
  });

  it('answers a retried promotion of the current version as promoted, without rewriting', async () => {
    await version(OLD);
    await version(NEW);
    await promoteModel({ dataset: 'pets', version: OLD }, deps);
    await promoteModel({ dataset: 'pets', version: NEW }, deps);

    const r = await promoteModel(
      { dataset: 'pets', version: NEW },
      { ...deps, now: () => new Date('2030-01-01T00:00:00Z') },
    );

    expect(r).toEqual({ promoted: true, version: NEW, previous: OLD, reason: 'already current' });
    expect((await current()).promotedAt).toBe('2026-01-02T12:00:00.000Z');
    expect(conditionalHeaders).toHaveLength(2);
  });

  it('re-reads after losing a conditional-write race and then declines a step back', async () => {
    await version(OLD);
    await version(NEWER);
    // Another promotion of NEWER lands between this one's read and write (S3 answers 412).
    let raced = false;
    emu.clients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        if (!raced && context.commandName === 'PutObjectCommand' && input.Key?.endsWith('current.json')) {
          raced = true;
          await putJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), {
            version: NEWER,
            promotedAt: '2026-01-02T11:59:59.000Z',
            previous: null,
          });
          // What the SDK throws for S3's 412 answer.
          throw new S3ServiceException({
            name: 'PreconditionFailed',
            $fault: 'client',
            $metadata: { httpStatusCode: 412 },
            message: 'At least one of the pre-conditions you specified did not hold',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'race' },
    );

    let r: PromoteResult;
    try {
      r = await promoteModel({ dataset: 'pets', version: OLD }, deps);
    } finally {
      emu.clients.s3.middlewareStack.remove('race');
    }

    expect(raced).toBe(true);
    expect(r).toMatchObject({ promoted: false, previous: NEWER });
    expect((await current()).version).toBe(NEWER);
  });

  it('promote-model handler promotes from the sample event and validates its input', async () => {
    const restore = setHandlerEnv(emu);
    try {
      vi.resetModules();
      const { handler } = (await import('../../../functions/promote-model/handler.ts')) as unknown as {
        handler: (e: unknown, c: Context) => Promise<PromoteResult>;
      };
      const event = loadEvent<{ dataset: string; version: string }>('promote-model.json');
      await version(event.version, event.dataset);

      const r = await handler(event, fakeContext('promote-model'));

      expect(r).toEqual({ promoted: true, version: event.version, previous: null });
      await expect(
        handler({ dataset: 'pets', version: 'latest' }, fakeContext('promote-model')),
      ).rejects.toThrow(/promote-model needs \{dataset, version\}/);
    } finally {
      restore();
    }
  });
});
