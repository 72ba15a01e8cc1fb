import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Manifest, SummarySchema } from '../../../lib/batch/layout.ts';
import { batchStatus } from '../../../lib/batch/start.ts';
import { ENV } from '../../../lib/config.ts';
import { FeatureMessage } from '../../../lib/features/messages.ts';
import { FeatureErrorRecord } from '../../../lib/features/metadata.ts';
import { checkReadiness } from '../../../lib/pipeline/readiness.ts';
import {
  batchKeys,
  featureErrorKey,
  featureKey,
  modelFileKey,
  parseImageKey,
} from '../../../lib/storage/keys.ts';
import { getJson, getObject, headObject, putJson, putObject } from '../../../lib/storage/s3.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { drainQueue, fakeContext, loadEvent, s3PutEvent, setHandlerEnv } from './support.ts';

type Handler = (event: SQSEvent, ctx: ReturnType<typeof fakeContext>) => Promise<SQSBatchResponse>;

function refOf(key: string) {
  const parsed = parseImageKey(key);
  if (!parsed.ok) throw new Error(`bad test key ${key}`);
  return parsed.image;
}

describe('dead-letters handler: what reaches a dead-letter queue becomes a record (emulated S3 + SQS)', () => {
  let emu: Emulator;
  let featuresQueueUrl: string;
  let restoreEnv: () => void;
  let handler: Handler;
  const ctx = fakeContext('dead-letters');

  beforeAll(async () => {
    emu = await startEmulator();
    featuresQueueUrl = emu.createQueue('features').queueUrl;
    restoreEnv = setHandlerEnv(emu, { [ENV.FEATURES_QUEUE_URL]: featuresQueueUrl });
    vi.resetModules();
    handler = (await import('../../../functions/dead-letters/handler.ts')).handler as unknown as Handler;
  });
  afterAll(async () => {
    restoreEnv();
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
  });

  it('records an image whose ingest message died as ExtractionFailed, so readiness stops counting it pending', async () => {
    // Prepare: two images; one has its feature, the other's extraction crashed on every receive.
    const ready = 'datasets/pets/cat/1.jpg';
    const dead = 'datasets/pets/dog/2.jpg';
    await putObject(emu.clients.s3, emu.bucket, ready, 'pixels');
    const { etag } = await putObject(emu.clients.s3, emu.bucket, dead, 'pixels that kill the extractor');
    await putObject(emu.clients.s3, emu.bucket, featureKey(refOf(ready)), 'npy');
    expect((await checkReadiness(emu.clients.s3, emu.bucket, 'pets')).pending).toBe(1);
    const event = s3PutEvent([{ key: dead, etag, size: 30, receiveCount: 1 }], emu.bucket);

    // Act
    const out = await handler(event, ctx);

    // Assess
    expect(out.batchItemFailures).toEqual([]);
    const record = await getJson(
      emu.clients.s3,
      emu.bucket,
      featureErrorKey(refOf(dead)),
      FeatureErrorRecord,
    );
    expect(record).toMatchObject({ imageKey: dead, sourceEtag: etag, code: 'ExtractionFailed' });
    expect(record.reason).toContain('dead-letter queue');
    const readiness = await checkReadiness(emu.clients.s3, emu.bucket, 'pets');
    expect(readiness).toMatchObject({ total: 2, ready: 1, failed: 1, pending: 0 });
    const messages = (await drainQueue(emu.clients.sqs, featuresQueueUrl)).map((m) =>
      FeatureMessage.parse(m),
    );
    expect(messages).toEqual([
      expect.objectContaining({
        type: 'feature.failed',
        imageKey: dead,
        reason: expect.stringContaining('ExtractionFailed'),
      }),
    ]);
  });

  it('leaves an image alone when a record of its content exists, and when it was deleted since', async () => {
    // Prepare: one image got its feature after all (its last receive wrote it); one is gone.
    const done = 'datasets/pets/cat/done.jpg';
    const { etag } = await putObject(emu.clients.s3, emu.bucket, done, 'pixels');
    await putObject(emu.clients.s3, emu.bucket, featureKey(refOf(done)), 'npy', {
      metadata: {
        'source-etag': etag,
        'feature-spec': 'vgg16/random-1/32x32/flatten/caffe/bilinear',
        label: 'cat',
      },
    });
    const event = s3PutEvent(
      [
        { key: done, etag, size: 6 },
        { key: 'datasets/pets/cat/gone.jpg', etag: 'e0', size: 6 },
      ],
      emu.bucket,
    );

    // Act
    const out = await handler(event, ctx);

    // Assess
    expect(out.batchItemFailures).toEqual([]);
    expect(await headObject(emu.clients.s3, emu.bucket, featureErrorKey(refOf(done)))).toBeUndefined();
    expect(await headObject(emu.clients.s3, emu.bucket, featureKey(refOf(done)))).toBeDefined();
    expect(
      await headObject(emu.clients.s3, emu.bucket, featureErrorKey(refOf('datasets/pets/cat/gone.jpg'))),
    ).toBeUndefined();
    expect(await drainQueue(emu.clients.sqs, featuresQueueUrl)).toEqual([]);
  });

  it('takes the sample ingest dead letter of events/ as Lambda sends it', async () => {
    // Prepare: the image of the sample event, with the sample's ETag unknown to S3 (any content).
    const event = loadEvent<SQSEvent>('dead-letters-ingest.json');
    const key = 'datasets/pets/cat/my cat été+1.png';
    await putObject(emu.clients.s3, emu.bucket, key, 'pixels');

    // Act
    const out = await handler(event, ctx);

    // Assess
    expect(out.batchItemFailures).toEqual([]);
    const record = await getJson(emu.clients.s3, emu.bucket, featureErrorKey(refOf(key)), FeatureErrorRecord);
    expect(record).toMatchObject({ imageKey: key, code: 'ExtractionFailed', spec: 'dead-letter' });
  });

  it('turns a dead batch chunk into failed rows and finishes the batch', async () => {
    // Prepare: a batch of two chunks; chunk 0 was scored, chunk 1 died in batch-predict.
    const id = '20261206T230000Z-ab12cd34';
    const manifest: Manifest = {
      id,
      dataset: 'pets',
      prefix: 'inbox/',
      createdAt: new Date().toISOString(),
      modelVersion: '20261206T220000Z-model1',
      threshold: 'none',
      chunks: [['inbox/a.jpg'], ['inbox/b.jpg', 'inbox/c.jpg']],
      total: 3,
    };
    const k = batchKeys('pets', id);
    await putJson(emu.clients.s3, emu.bucket, k.manifest, manifest);
    await putJson(emu.clients.s3, emu.bucket, modelFileKey('pets', manifest.modelVersion, 'model.json'), {
      classes: ['cat', 'dog'],
    });
    const scored = { key: 'inbox/a.jpg', label: 'cat', confidence: 0.9, abstained: false, scores: [] };
    await putObject(emu.clients.s3, emu.bucket, k.part(0), `${JSON.stringify(scored)}\n`);
    expect((await batchStatus(emu.clients.s3, emu.bucket, 'pets', id)).status).toBe('running');
    const event = loadEvent<SQSEvent>('dead-letters-batch.json');

    // Act
    const out = await handler(event, ctx);

    // Assess: the batch reached its terminal state, with the dead chunk's images as failed rows.
    expect(out.batchItemFailures).toEqual([]);
    const status = await batchStatus(emu.clients.s3, emu.bucket, 'pets', id);
    expect(status).toMatchObject({ status: 'succeeded', counts: { total: 3, done: 3, failed: 2 } });
    const summary = await getJson(emu.clients.s3, emu.bucket, k.summary, SummarySchema);
    expect(summary.labels).toEqual({ cat: 1 });
    const rows = Buffer.from((await getObject(emu.clients.s3, emu.bucket, k.jsonl)).body)
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => [r.key, r.error?.slice(0, 16)])).toEqual([
      ['inbox/a.jpg', undefined],
      ['inbox/b.jpg', 'BatchChunkFailed'],
      ['inbox/c.jpg', 'BatchChunkFailed'],
    ]);
    const csv = Buffer.from((await getObject(emu.clients.s3, emu.bucket, k.csv)).body).toString('utf8');
    expect(csv.split('\r\n')[0]).toBe('key,label,confidence,abstained,p:cat,p:dog,error');
  });

  it('keeps the part a worker wrote before it died finishing the batch', async () => {
    // Prepare: a one-chunk batch whose part exists (the worker died after writing it).
    const id = '20261206T230000Z-ab12cd34';
    const manifest: Manifest = {
      id,
      dataset: 'pets',
      prefix: 'inbox/',
      createdAt: new Date().toISOString(),
      modelVersion: '20261206T220000Z-model1',
      threshold: 'none',
      chunks: [['inbox/a.jpg']],
      total: 1,
    };
    const k = batchKeys('pets', id);
    await putJson(emu.clients.s3, emu.bucket, k.manifest, manifest);
    const scored = { key: 'inbox/a.jpg', label: 'cat', confidence: 0.9, abstained: false, scores: [] };
    await putObject(emu.clients.s3, emu.bucket, k.part(0), `${JSON.stringify(scored)}\n`);
    const event = loadEvent<SQSEvent>('dead-letters-batch.json');
    const record = event.Records[0];
    if (!record) throw new Error('sample event has no record');
    record.body = JSON.stringify({ dataset: 'pets', id, part: 0 });

    // Act
    await handler(event, ctx);

    // Assess
    const status = await batchStatus(emu.clients.s3, emu.bucket, 'pets', id);
    expect(status).toMatchObject({ status: 'succeeded', counts: { total: 1, done: 1, failed: 0 } });
  });
});
