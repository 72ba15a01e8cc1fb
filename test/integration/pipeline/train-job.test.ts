import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { InsufficientDataError, SpecMismatchError } from '../../../lib/errors.ts';
import { featureMetadata } from '../../../lib/features/metadata.ts';
import { encodeNpy } from '../../../lib/features/npy.ts';
import { scanDataset, scanFingerprint } from '../../../lib/pipeline/readiness.ts';
import { runTrainingJob, type TrainJobDeps, type TrainJobResult } from '../../../lib/pipeline/train-job.ts';
import { parseQualityDocument } from '../../../lib/quality/document.ts';
import { modelFileKey } from '../../../lib/storage/keys.ts';
import { getObject, listAllObjects, putObject, touchObject } from '../../../lib/storage/s3.ts';
import { parseModelDocument, parseReportDocument } from '../../../lib/training/model-document.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import {
  clusterVector,
  fakeContext,
  loadEvent,
  putImageWithFeature,
  setHandlerEnv,
  TEST_SPEC,
} from './support.ts';

const OTHER_SPEC = 'vgg16/random-2/32x32/flatten/caffe/bilinear';
const INPUT = { dataset: 'pets', trigger: 'auto' as const, requestedAt: '2026-01-01T00:00:05.000Z' };
const NOW = new Date('2026-01-01T00:05:10Z');

describe('training job (emulated S3, synthetic features)', () => {
  let emu: Emulator;
  let deps: TrainJobDeps;
  const putOrder: string[] = [];

  /** n images per label with features of `spec`. */
  async function dataset(labels: Record<string, number>, spec = TEST_SPEC, prefix = ''): Promise<void> {
    for (const [label, n] of Object.entries(labels)) {
      for (let i = 0; i < n; i++) {
        await putImageWithFeature(emu, `datasets/pets/${label}/${prefix}${i}.png`, { spec, seed: i });
      }
    }
  }

  beforeAll(async () => {
    emu = await startEmulator();
    emu.clients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        if (context.commandName === 'PutObjectCommand' && input.Key?.startsWith('models/'))
          putOrder.push(input.Key);
        return next(args);
      },
      { step: 'initialize', name: 'record-model-puts' },
    );
    deps = {
      s3: emu.clients.s3,
      bucket: emu.bucket,
      training: { featureConcurrency: 4, refitOnAll: false, C: 1, maxIter: 100 },
      log: silentLog,
      now: () => NOW,
      shortId: () => 'abc12345',
    };
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
    putOrder.length = 0;
  });

  it('writes report.json, report.html, quality.json and then model.json under a new version', async () => {
    await dataset({ cat: 5, dog: 5 });

    const r = await runTrainingJob(INPUT, deps);

    expect(r).toMatchObject({
      dataset: 'pets',
      version: '20260101T000510Z-abc12345',
      spec: TEST_SPEC,
      classes: ['cat', 'dog'],
      nTrain: 8,
      nTest: 2,
      excluded: [],
    });
    expect(r.accuracy).toBe(1);
    const v = r.version;
    expect(putOrder).toEqual([
      modelFileKey('pets', v, 'report.json'),
      modelFileKey('pets', v, 'report.html'),
      modelFileKey('pets', v, 'quality.json'),
      modelFileKey('pets', v, 'model.json'),
    ]);
    const model = parseModelDocument(
      Buffer.from(
        (await getObject(emu.clients.s3, emu.bucket, modelFileKey('pets', v, 'model.json'))).body,
      ).toString(),
    );
    expect(model).toMatchObject({ dataset: 'pets', version: v, spec: TEST_SPEC, classes: ['cat', 'dog'] });
    expect(model.coef).toHaveLength(1);
    expect(model.coef[0]).toHaveLength(512);
    const report = parseReportDocument(
      Buffer.from(
        (await getObject(emu.clients.s3, emu.bucket, modelFileKey('pets', v, 'report.json'))).body,
      ).toString(),
    );
    expect(report.counts).toMatchObject({ total: 10, train: 8, test: 2 });
    const html = await getObject(emu.clients.s3, emu.bucket, modelFileKey('pets', v, 'report.html'));
    expect(html.contentType).toMatch(/^text\/html/);
    expect(Buffer.from(html.body).toString()).toContain('Confusion matrix');
    expect(Buffer.from(html.body).toString()).toContain('Data quality');
  });

  it('finds an image uploaded twice under two labels by its ETag and keeps the copies on one side of the split', async () => {
    await dataset({ cat: 6, dog: 6 });
    // The same bytes as cat/0.png (so the same ETag) filed under dog, with the same features.
    const original = await getObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/0.png');
    const copy = await putObject(emu.clients.s3, emu.bucket, 'datasets/pets/dog/copy.png', original.body);
    expect(copy.etag).toBe(original.etag);
    await putImageWithFeature(emu, 'datasets/pets/dog/copy.png', {
      vector: clusterVector('cat', 512, 0),
      sourceEtag: copy.etag,
    });
    // putImageWithFeature wrote placeholder bytes: put the copy's bytes (and ETag) back, then
    // re-date the feature as the extractor does for an identical re-upload (readiness compares dates).
    await putObject(emu.clients.s3, emu.bucket, 'datasets/pets/dog/copy.png', original.body);
    const feature = await getObject(emu.clients.s3, emu.bucket, 'features/pets/dog/copy.png.npy');
    await touchObject(emu.clients.s3, emu.bucket, 'features/pets/dog/copy.png.npy', feature);

    const r = await runTrainingJob(INPUT, deps);

    const quality = parseQualityDocument(
      Buffer.from(
        (await getObject(emu.clients.s3, emu.bucket, modelFileKey('pets', r.version, 'quality.json'))).body,
      ).toString(),
    );
    expect(quality).toMatchObject({ dataset: 'pets', version: r.version, images: 13 });
    expect(quality.duplicates).toEqual([
      {
        kind: 'exact',
        similarity: 1,
        keys: ['datasets/pets/cat/0.png', 'datasets/pets/dog/copy.png'],
        labels: ['cat', 'dog'],
      },
    ]);
    expect(quality.conflicts).toEqual([
      { keys: ['datasets/pets/cat/0.png', 'datasets/pets/dog/copy.png'], labels: ['cat', 'dog'] },
    ]);
    expect(quality.split).toMatchObject({ groupAware: true, groups: 1, groupedImages: 2 });
    expect(quality.leaks).toEqual([]);
  });

  it('fails with a readable InsufficientDataError when there is one label, writing nothing', async () => {
    await dataset({ cat: 4 });

    const err = await runTrainingJob(INPUT, deps).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(InsufficientDataError);
    expect((err as Error).message).toMatch(/only one label \('cat'\)/);
    expect(await listAllObjects(emu.clients.s3, emu.bucket, 'models/')).toEqual([]);
  });

  it('fails with a readable error when a label has a single image', async () => {
    await dataset({ cat: 3, dog: 1 });

    await expect(runTrainingJob(INPUT, deps)).rejects.toThrow(/too few for 'dog' \(1\)/);
  });

  it('fails with a readable error when no feature is ready yet', async () => {
    await putObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/1.png', 'x');

    await expect(runTrainingJob(INPUT, deps)).rejects.toThrow(
      /no ready features \(1 images: 0 unusable, 1 pending\)/,
    );
  });

  it("trains on the deployment's spec only and reports the features it left out", async () => {
    await dataset({ cat: 3, dog: 3 });
    await dataset({ cat: 4, dog: 4 }, OTHER_SPEC, 'old-');

    const r = await runTrainingJob(INPUT, {
      ...deps,
      expect: { weights: 'random-1', input: [32, 32], pooling: 'flatten', resize: 'bilinear' },
    });

    expect(r.spec).toBe(TEST_SPEC);
    expect(r.nTrain + r.nTest).toBe(6);
    expect(r.accuracy).toBe(1); // rows kept their labels through the in-place compaction
    expect(r.excluded).toEqual([{ reason: 'other-spec', spec: OTHER_SPEC, count: 8 }]);
    const report = parseReportDocument(
      Buffer.from(
        (await getObject(emu.clients.s3, emu.bucket, modelFileKey('pets', r.version, 'report.json'))).body,
      ).toString(),
    );
    expect(report.note).toContain(`8 feature(s) of spec '${OTHER_SPEC}'`);
  });

  it('without a deployment spec takes the majority, and refuses a tie naming both specs', async () => {
    await dataset({ cat: 2, dog: 2 });
    await dataset({ cat: 3, dog: 3 }, OTHER_SPEC, 'new-');

    const majority: TrainJobResult = await runTrainingJob(INPUT, deps);
    expect(majority.spec).toBe(OTHER_SPEC);
    expect(majority.nTrain + majority.nTest).toBe(6);
    expect(majority.accuracy).toBe(1); // rows kept their labels through the set-aside path
    expect(majority.excluded).toEqual([{ reason: 'other-spec', spec: TEST_SPEC, count: 4 }]);

    emu.reset();
    await dataset({ cat: 2, dog: 2 });
    await dataset({ cat: 2, dog: 2 }, OTHER_SPEC, 'new-');
    const err = await runTrainingJob(INPUT, deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecMismatchError);
    expect((err as Error).message).toContain(TEST_SPEC);
    expect((err as Error).message).toContain(OTHER_SPEC);
  });

  it("refuses when no feature matches the deployment's extractor", async () => {
    await dataset({ cat: 2, dog: 2 }, OTHER_SPEC);

    await expect(runTrainingJob(INPUT, { ...deps, expect: { weights: 'random-1' } })).rejects.toThrow(
      /no feature of dataset matches the deployment's extractor \(weights random-1\)/,
    );
  });

  it('leaves out a feature whose image changed after the readiness check', async () => {
    await dataset({ cat: 3, dog: 3 });
    const key = 'datasets/pets/cat/changed.png';
    await putObject(emu.clients.s3, emu.bucket, key, 'new content');
    await sleep(1_100);
    // Listed as ready (written a second after the image), but computed from older content: only
    // the metadata the loader reads with the body tells.
    await putObject(
      emu.clients.s3,
      emu.bucket,
      'features/pets/cat/changed.png.npy',
      encodeNpy(new Float32Array(512)),
      {
        metadata: featureMetadata('an-older-etag', TEST_SPEC, 'cat'),
      },
    );

    const r = await runTrainingJob(INPUT, deps);

    expect(r.nTrain + r.nTest).toBe(6);
    expect(r.excluded).toEqual([{ reason: 'stale', count: 1 }]);
    // What Finish compares (training-lock.ts): the listing trained from; the feature of the new
    // content changes it, so the model that left the stale one out is trained again.
    const fingerprint = async () => scanFingerprint(await scanDataset(emu.clients.s3, emu.bucket, 'pets'));
    expect(r.fingerprint).toBe(await fingerprint());
    const image = await getObject(emu.clients.s3, emu.bucket, key);
    await putObject(
      emu.clients.s3,
      emu.bucket,
      'features/pets/cat/changed.png.npy',
      encodeNpy(new Float32Array(512).fill(1)),
      { metadata: featureMetadata(image.etag, TEST_SPEC, 'cat') },
    );
    expect(await fingerprint()).not.toBe(r.fingerprint);
  });

  it('train-head handler trains from the sample event', async () => {
    const restore = setHandlerEnv(emu);
    try {
      vi.resetModules();
      const { handler } = (await import('../../../functions/train-head/handler.ts')) as unknown as {
        handler: (e: unknown, c: Context) => Promise<TrainJobResult>;
      };
      await dataset({ cat: 3, dog: 3 });
      await dataset({ cat: 1 }, OTHER_SPEC, 'other-');

      const r = await handler(loadEvent('train-head.json'), fakeContext('train-head'));

      expect(r).toMatchObject({ dataset: 'pets', spec: TEST_SPEC, trigger: 'auto' });
      expect(r.excluded).toEqual([{ reason: 'other-spec', spec: OTHER_SPEC, count: 1 }]);
      await expect(handler({ dataset: 'pets' }, fakeContext('train-head'))).rejects.toThrow(
        /train-head needs \{dataset, trigger, requestedAt\}/,
      );
    } finally {
      restore();
    }
  });
});
