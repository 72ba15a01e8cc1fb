import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, SpecMismatchError, TlearnError } from '../../../lib/errors.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { currentModelKey, modelFileKey } from '../../../lib/storage/keys.ts';
import { putObject } from '../../../lib/storage/s3.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { makeHead, promote, seedModel } from './support.ts';

const SPEC = 'vgg16/random-1/32x32/avg/caffe/bilinear';
const V1 = '20261128T100000Z-aaaaaa';
const V2 = '20261128T110000Z-bbbbbb';

/** Wraps the S3 client so every command it sends is recorded as `Command key`. */
function countingS3(s3: S3Client): { s3: S3Client; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(s3, {
    get(target, prop, receiver) {
      if (prop === 'send') {
        return (command: { constructor: { name: string }; input: { Key?: string; Prefix?: string } }) => {
          calls.push(
            `${command.constructor.name.replace(/Command$/, '')} ${command.input.Key ?? command.input.Prefix}`,
          );
          return (target.send as (c: unknown) => Promise<unknown>)(command);
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
  return { s3: proxy, calls };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('createModelCache', () => {
  let em: Emulator;
  const head1 = makeHead(['cat', 'dog'], 512, SPEC, 1);
  const head2 = makeHead(['cat', 'dog', 'fox'], 512, SPEC, 2);

  beforeAll(async () => {
    em = await startEmulator();
  });
  afterAll(async () => {
    await em.stop();
  });
  beforeEach(() => {
    em.reset();
  });

  it('loads the promoted model whole, with its head and metadata', async () => {
    // Prepare
    const { s3, bucket } = { s3: em.clients.s3, bucket: em.bucket };
    await seedModel(s3, bucket, 'pets', V1, head1);
    await promote(s3, bucket, 'pets', V1);
    const cache = createModelCache({ s3, bucket, refreshSeconds: 0 });
    // Act
    const model = await cache.get('pets', SPEC);
    // Assess
    expect(model).toMatchObject({
      dataset: 'pets',
      version: V1,
      spec: SPEC,
      randomWeights: true,
      trainedAt: '2026-11-28T10:30:00.000Z',
    });
    expect(model.head).toEqual(head1);
    expect(Object.isFrozen(model)).toBe(true);
    expect(cache.state()).toEqual([expect.objectContaining({ dataset: 'pets', version: V1, spec: SPEC })]);
  });

  it('shares one load between concurrent first requests', async () => {
    await seedModel(em.clients.s3, em.bucket, 'pets', V1, head1);
    await promote(em.clients.s3, em.bucket, 'pets', V1);
    const { s3, calls } = countingS3(em.clients.s3);
    const cache = createModelCache({ s3, bucket: em.bucket, refreshSeconds: 0 });

    const models = await Promise.all(Array.from({ length: 8 }, () => cache.get('pets', SPEC)));

    expect(new Set(models).size).toBe(1);
    expect(calls.filter((c) => c === `GetObject ${modelFileKey('pets', V1, 'model.json')}`)).toHaveLength(1);
    expect(calls.filter((c) => c === `GetObject ${currentModelKey('pets')}`)).toHaveLength(1);
  });

  it('checks current.json at most every refreshSeconds, with a HEAD while it is unchanged', async () => {
    await seedModel(em.clients.s3, em.bucket, 'pets', V1, head1);
    await promote(em.clients.s3, em.bucket, 'pets', V1);
    const { s3, calls } = countingS3(em.clients.s3);
    let clock = 1_000_000;
    const cache = createModelCache({ s3, bucket: em.bucket, refreshSeconds: 5, now: () => clock });
    await cache.get('pets', SPEC);
    calls.length = 0;

    // Within the interval: no request at all.
    clock += 4_999;
    await cache.get('pets', SPEC);
    expect(calls).toEqual([]);

    // After it, unchanged: one HEAD.
    clock += 2;
    await cache.get('pets', SPEC);
    expect(calls).toEqual([`HeadObject ${currentModelKey('pets')}`]);
  });

  it('notices a newly promoted model after the interval and swaps it in', async () => {
    await seedModel(em.clients.s3, em.bucket, 'pets', V1, head1);
    await seedModel(em.clients.s3, em.bucket, 'pets', V2, head2);
    await promote(em.clients.s3, em.bucket, 'pets', V1);
    let clock = 0;
    const cache = createModelCache({
      s3: em.clients.s3,
      bucket: em.bucket,
      refreshSeconds: 5,
      now: () => clock,
    });
    const before = await cache.get('pets', SPEC);

    await promote(em.clients.s3, em.bucket, 'pets', V2, V1);
    clock += 1_000;
    const stale = await cache.get('pets', SPEC);
    clock += 5_000;
    const fresh = await cache.get('pets', SPEC);

    expect(before.version).toBe(V1);
    expect(stale).toBe(before);
    expect(fresh.version).toBe(V2);
    expect(fresh.head.classes).toEqual(['cat', 'dog', 'fox']);
    // The old entry object is untouched (requests holding it finish with a whole model).
    expect(before.head.classes).toEqual(['cat', 'dog']);
  });

  it('refuses a model of another feature spec with 409 SpecMismatch', async () => {
    const other = 'vgg16/3f2a9c0d11e4b7a1/32x32/avg/caffe/bilinear';
    await seedModel(em.clients.s3, em.bucket, 'pets', V1, makeHead(['a', 'b'], 512, other, 3));
    await promote(em.clients.s3, em.bucket, 'pets', V1);
    const cache = createModelCache({ s3: em.clients.s3, bucket: em.bucket, refreshSeconds: 0 });

    const err = await rejection(cache.get('pets', SPEC));

    expect(err).toBeInstanceOf(SpecMismatchError);
    expect((err as SpecMismatchError).status).toBe(409);
    expect((err as SpecMismatchError).message).toContain(other);
    expect((err as SpecMismatchError).message).toContain(SPEC);
  });

  it('answers 404 for an unknown dataset and 409 for a dataset without a promoted model', async () => {
    await putObject(em.clients.s3, em.bucket, 'datasets/pets/cat/1.png', 'x');
    const cache = createModelCache({ s3: em.clients.s3, bucket: em.bucket, refreshSeconds: 0 });

    const unknown = await rejection(cache.get('ghosts', SPEC));
    const untrained = await rejection(cache.get('pets', SPEC));

    expect(unknown).toBeInstanceOf(NotFoundError);
    expect((unknown as NotFoundError).code).toBe('DatasetNotFound');
    expect(untrained).toBeInstanceOf(ConflictError);
    expect((untrained as ConflictError).message).toBe(
      "dataset 'pets' has no promoted model yet; POST /datasets/pets/trainings to train one",
    );
  });

  it('fails with a 500 when the promoted model.json is missing or corrupt, and recovers when fixed', async () => {
    await seedModel(em.clients.s3, em.bucket, 'pets', V1, head1);
    await promote(em.clients.s3, em.bucket, 'pets', V2, V1);
    const cache = createModelCache({ s3: em.clients.s3, bucket: em.bucket, refreshSeconds: 0 });

    const missing = await rejection(cache.get('pets', SPEC));
    await putObject(em.clients.s3, em.bucket, modelFileKey('pets', V2, 'model.json'), '{"classes": [');
    const corrupt = await rejection(cache.get('pets', SPEC));
    await seedModel(em.clients.s3, em.bucket, 'pets', V2, head2);
    const fixed = await cache.get('pets', SPEC);

    expect(missing).toMatchObject({ code: 'ModelMissing', status: 500 });
    expect(corrupt).toBeInstanceOf(TlearnError);
    expect(corrupt).toMatchObject({ code: 'CorruptObject', status: 500 });
    expect(fixed.version).toBe(V2);
  });

  it('refuses a head whose shapes do not fit its spec', async () => {
    await seedModel(em.clients.s3, em.bucket, 'pets', V1, makeHead(['a', 'b'], 100, SPEC, 4));
    await promote(em.clients.s3, em.bucket, 'pets', V1);
    const cache = createModelCache({ s3: em.clients.s3, bucket: em.bucket, refreshSeconds: 0 });

    const err = await rejection(cache.get('pets', SPEC));

    expect(err).toMatchObject({ code: 'CorruptObject', status: 500 });
    expect((err as Error).message).toContain('512 features');
  });

  it('keeps at most maxEntries datasets, dropping the least recently used', async () => {
    for (const d of ['a', 'b', 'c']) {
      await seedModel(em.clients.s3, em.bucket, d, V1, head1, { report: false });
      await promote(em.clients.s3, em.bucket, d, V1);
    }
    const cache = createModelCache({
      s3: em.clients.s3,
      bucket: em.bucket,
      refreshSeconds: 60,
      maxEntries: 2,
    });

    await cache.get('a', SPEC);
    await cache.get('b', SPEC);
    await cache.get('a', SPEC);
    await cache.get('c', SPEC);

    expect(cache.state().map((s) => s.dataset)).toEqual(['a', 'c']);
  });
});
