import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { featureMetadata } from '../../../lib/features/metadata.ts';
import { checkReadiness, checkReadinessStep, scanDataset } from '../../../lib/pipeline/readiness.ts';
import { putObject, touchObject } from '../../../lib/storage/s3.ts';
import { countRequests } from '../../helpers/count-requests.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeContext, loadEvent, setHandlerEnv } from './support.ts';

const SPEC = 'vgg16/random-1/32x32/flatten/caffe/bilinear';

describe('dataset readiness (emulated S3)', () => {
  let emu: Emulator;
  let s3: S3Client;

  async function image(key: string, body = `pixels of ${key}`): Promise<string> {
    return (await putObject(s3, emu.bucket, key, body)).etag;
  }

  async function feature(imageKey: string, etag: string, spec = SPEC): Promise<void> {
    const featureKey = imageKey.replace(/^datasets\//, 'features/').concat('.npy');
    const label = imageKey.split('/')[2] ?? '';
    await putObject(s3, emu.bucket, featureKey, 'npy', { metadata: featureMetadata(etag, spec, label) });
  }

  async function errorRecord(imageKey: string, etag: string): Promise<void> {
    const key = imageKey.replace(/^datasets\//, 'features/').concat('.error.json');
    const label = imageKey.split('/')[2] ?? '';
    await putObject(s3, emu.bucket, key, '{}', { metadata: featureMetadata(etag, SPEC, label) });
  }

  beforeAll(async () => {
    emu = await startEmulator();
    s3 = emu.clients.s3;
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
  });

  it('counts ready, failed, pending and skipped images per label', async () => {
    const cat1 = await image('datasets/pets/cat/1.png');
    const cat2 = await image('datasets/pets/cat/2.png');
    await image('datasets/pets/dog/1.png');
    const dog2 = await image('datasets/pets/dog/2.png', 'old');
    await image('datasets/pets/dog.7.jpg'); // Kaggle style: label 'dog'
    await image('datasets/pets/cat/notes.txt');
    await image('datasets/pets/cat/.DS_Store');
    await image('datasets/pets/Cat/');
    await image('datasets/petsitter/cat/1.png'); // another dataset sharing the prefix 'pets'
    await feature('datasets/pets/cat/1.png', cat1);
    await errorRecord('datasets/pets/cat/2.png', cat2);
    await feature('datasets/pets/dog/2.png', dog2);
    await image('datasets/pets/dog/2.png', 'new content'); // replaced after extraction: stale
    await feature('datasets/pets/gone/1.png', 'etag-of-a-deleted-image');

    const r = await checkReadiness(s3, emu.bucket, 'pets');

    expect(r).toEqual({
      dataset: 'pets',
      total: 5,
      ready: 1,
      failed: 1,
      pending: 3,
      skipped: 3,
      orphaned: 1,
      labels: {
        cat: { images: 2, ready: 1, failed: 1, pending: 0 },
        dog: { images: 3, ready: 0, failed: 0, pending: 3 },
      },
    });
  });

  it('decides from listings alone: an identical re-upload is pending until the extractor refreshes its feature', async () => {
    const a = await image('datasets/pets/cat/a.png');
    const b = await image('datasets/pets/cat/b.png');
    await sleep(1_100); // listings may have second precision
    await feature('datasets/pets/cat/a.png', a);
    await feature('datasets/pets/cat/b.png', b);
    await sleep(1_100);
    await image('datasets/pets/cat/b.png'); // re-uploaded, same bytes: same ETag, newer LastModified
    const heads = countRequests(s3, 'HeadObjectCommand');
    try {
      const before = await scanDataset(s3, emu.bucket, 'pets');
      // What the extractor does when it skips b (feature current by its metadata): stamp it again.
      await sleep(1_100);
      await touchObject(s3, emu.bucket, 'features/pets/cat/b.png.npy', {
        metadata: featureMetadata(b, SPEC, 'cat'),
      });
      const after = await scanDataset(s3, emu.bucket, 'pets');

      expect(before.entries.map((e) => [e.image.file, e.status])).toEqual([
        ['a.png', 'ready'],
        ['b.png', 'pending'],
      ]);
      expect(after.entries.map((e) => [e.image.file, e.status])).toEqual([
        ['a.png', 'ready'],
        ['b.png', 'ready'],
      ]);
      expect(heads.count()).toBe(0);
    } finally {
      heads.remove();
    }
  });

  it('lists many labels in parallel with no HEAD and reports counts only to the state machine', async () => {
    const labels = Array.from({ length: 40 }, (_, i) => `label-${i}`);
    for (const label of labels) {
      for (let i = 0; i < 3; i++) {
        const key = `datasets/pets/${label}/${i}.png`;
        const etag = await image(key);
        if (i < 2) await feature(key, etag);
      }
    }
    const heads = countRequests(s3, 'HeadObjectCommand');
    try {
      const counts = await checkReadinessStep(s3, emu.bucket, 'pets');

      expect(counts).toEqual({
        total: 120,
        ready: 80,
        failed: 0,
        pending: 40,
        skipped: 0,
        orphaned: 0,
        labels: 40,
        generation: 0,
      });
      expect(heads.count()).toBe(0);
    } finally {
      heads.remove();
    }
  });

  it('check-readiness handler returns the counts for the sample event', async () => {
    const restore = setHandlerEnv(emu);
    try {
      vi.resetModules();
      const { handler } = (await import('../../../functions/check-readiness/handler.ts')) as unknown as {
        handler: (e: unknown, c: Context) => Promise<{ total: number; pending: number }>;
      };
      await image('datasets/pets/cat/1.png');

      const r = await handler(loadEvent('check-readiness.json'), fakeContext('check-readiness'));

      expect(r).toMatchObject({ total: 1, pending: 1, ready: 0 });
      await expect(handler({ dataset: '../etc' }, fakeContext('check-readiness'))).rejects.toThrow(
        /check-readiness needs \{dataset\}/,
      );
    } finally {
      restore();
    }
  });
});
