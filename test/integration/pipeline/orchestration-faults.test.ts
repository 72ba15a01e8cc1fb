/**
 * The pipeline's faults, each against the emulated S3 + SQS: an image whose extraction keeps failing
 * gets an ExtractionFailed record on its last receive (never pending behind the DLQ); an identical
 * re-upload is made current by the extractor so readiness needs no HEAD; a deleted image loses its
 * feature and asks for a retrain. (Late features: state-machine/training.test.ts; stale locks:
 * pipeline/start-training.test.ts; 409 TrainingInProgress: api/api.test.ts.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ReindexBody } from '../../../lib/api/reindex.ts';
import { FeatureMessage } from '../../../lib/features/messages.ts';
import { FeatureErrorRecord } from '../../../lib/features/metadata.ts';
import { type ExtractDeps, extractImages } from '../../../lib/pipeline/extract.ts';
import { EXTRACTION_FAILED } from '../../../lib/pipeline/feature-records.ts';
import { imageJobsFromMessages } from '../../../lib/pipeline/ingest.ts';
import { checkReadiness } from '../../../lib/pipeline/readiness.ts';
import { removeImages } from '../../../lib/pipeline/remove.ts';
import { PIPELINE_SETTINGS } from '../../../lib/pipeline/settings.ts';
import { FinishTrainingInput } from '../../../lib/pipeline/training-lock.ts';
import { getJson, headObject, putObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { countRequests } from '../../helpers/count-requests.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage } from '../../helpers/images.ts';
import { drainQueue, loadEvent } from './support.ts';

const toMessages = (e: SQSEvent) =>
  e.Records.map((r) => ({ id: r.messageId, body: r.body, receiveCount: 1 }));

describe('orchestration faults (emulated S3 + SQS)', () => {
  let emu: Emulator;
  let queueUrl: string;
  const MAX = PIPELINE_SETTINGS.ingest.maxReceiveCount;

  const deps = (over: Partial<ExtractDeps> = {}): ExtractDeps => ({
    s3: emu.clients.s3,
    sqs: emu.clients.sqs,
    bucket: emu.bucket,
    featuresQueueUrl: queueUrl,
    extractor: fakeExtractor(),
    batchSize: 4,
    maxReceiveCount: MAX,
    log: silentLog,
    ...over,
  });

  async function putImages(n: number): Promise<{ key: string; etag: string }[]> {
    const out: { key: string; etag: string }[] = [];
    for (let i = 0; i < n; i++) {
      const key = `datasets/faults/${i % 2 ? 'cat' : 'dog'}/${i}.png`;
      const { etag } = await putObject(emu.clients.s3, emu.bucket, key, await makeImage('png', { seed: i }));
      out.push({ key, etag });
    }
    return out;
  }

  beforeAll(async () => {
    emu = await startEmulator();
    queueUrl = emu.createQueue('features').queueUrl;
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
  });

  it('retries a failing extraction, and on the last receive writes an ExtractionFailed record instead of a DLQ trip', async () => {
    const [img] = await putImages(1);
    if (!img) throw new Error('no image');
    const broken = fakeExtractor({ fail: new Error('model crashed') });
    const job = (receiveCount: number) => [
      { recordId: 'm1', key: img.key, etag: img.etag, receiveCount, redelivered: receiveCount > 1 },
    ];

    const early = await extractImages(job(MAX - 1), deps({ extractor: broken }));
    const last = await extractImages(job(MAX), deps({ extractor: broken }));

    expect(early.failedRecordIds).toEqual(['m1']);
    expect(last.failedRecordIds).toEqual([]);
    expect(last.outcomes).toMatchObject([{ status: 'failed', code: EXTRACTION_FAILED }]);
    const record = await getJson(
      emu.clients.s3,
      emu.bucket,
      'features/faults/dog/0.png.error.json',
      FeatureErrorRecord,
    );
    expect(record).toMatchObject({ code: 'ExtractionFailed', sourceEtag: img.etag, imageKey: img.key });
    expect(record.reason).toContain('model crashed');
    const sent = (await drainQueue(emu.clients.sqs, queueUrl)).map((b) => FeatureMessage.parse(b));
    expect(sent).toMatchObject([{ type: 'feature.failed', imageKey: img.key }]);
    // Training is never blocked by it: the image counts as failed, not pending.
    expect(await checkReadiness(emu.clients.s3, emu.bucket, 'faults')).toMatchObject({
      failed: 1,
      pending: 0,
    });
  });

  it('makes an identical re-upload current again without any HEAD from readiness', async () => {
    const images = await putImages(20);
    const jobs = images.map((i, n) => ({ recordId: `r${n}`, key: i.key, etag: i.etag }));
    await extractImages(jobs, deps());
    await sleep(1_100); // LastModified may have second precision
    // `aws s3 sync --exact-timestamps` or a plain re-copy: same bytes, new LastModified.
    for (const [n, i] of images.entries())
      await putObject(emu.clients.s3, emu.bucket, i.key, await makeImage('png', { seed: n }));
    expect(await checkReadiness(emu.clients.s3, emu.bucket, 'faults')).toMatchObject({
      ready: 0,
      pending: 20,
    });

    const again = await extractImages(jobs, deps());
    const heads = countRequests(emu.clients.s3, 'HeadObjectCommand');
    try {
      const r = await checkReadiness(emu.clients.s3, emu.bucket, 'faults');

      expect(again.counts).toMatchObject({ extracted: 0, skipped: 20 });
      expect(r).toMatchObject({ ready: 20, pending: 0 });
      expect(heads.count()).toBe(0);
    } finally {
      heads.remove();
    }
  });

  it('removes the feature of a deleted image and asks for a retrain; a re-uploaded one is left alone', async () => {
    const images = await putImages(2);
    await extractImages(
      images.map((i, n) => ({ recordId: `r${n}`, key: i.key, etag: i.etag })),
      deps(),
    );
    await drainQueue(emu.clients.sqs, queueUrl);
    const [deleted, back] = images;
    if (!deleted || !back) throw new Error('no images');
    await emu.clients.s3.send(new DeleteObjectCommand({ Bucket: emu.bucket, Key: deleted.key }));
    const removedEvent = (key: string) =>
      JSON.stringify({
        Records: [
          { eventName: 'ObjectRemoved:Delete', s3: { bucket: { name: emu.bucket }, object: { key } } },
        ],
      });
    const batch = imageJobsFromMessages(
      [
        { id: 'd1', body: removedEvent(deleted.key), receiveCount: 1 },
        { id: 'd2', body: removedEvent(back.key), receiveCount: 1 },
      ],
      emu.bucket,
      silentLog,
    );

    const r = await removeImages(batch.removals, { ...deps(), log: silentLog });

    expect(batch.jobs).toEqual([]);
    expect(r).toEqual({ removed: 1, skipped: 1, failedRecordIds: [] });
    expect(await headObject(emu.clients.s3, emu.bucket, 'features/faults/dog/0.png.npy')).toBeUndefined();
    expect(await headObject(emu.clients.s3, emu.bucket, 'features/faults/cat/1.png.npy')).toBeDefined();
    const sent = (await drainQueue(emu.clients.sqs, queueUrl)).map((b) => FeatureMessage.parse(b));
    expect(sent).toMatchObject([{ type: 'feature.removed', dataset: 'faults', imageKey: deleted.key }]);
  });

  it('parses the sample events of deletes, removals and the Finish step', () => {
    const del = loadEvent<SQSEvent>('s3-delete-in-sqs.json');
    const batch = imageJobsFromMessages(toMessages(del), 'tlearn-test', silentLog);
    const removed = loadEvent<SQSEvent>('feature-removed-in-sqs.json');

    expect(batch.removals).toEqual([
      { recordId: del.Records[0]?.messageId, key: expect.stringMatching(/^datasets\//) },
    ]);
    expect(FeatureMessage.parse(JSON.parse(removed.Records[0]?.body ?? '')).type).toBe('feature.removed');
    expect(FinishTrainingInput.parse(loadEvent('finish-training.json'))).toMatchObject({
      outcome: 'trained',
    });
    expect(ReindexBody.parse(JSON.parse(loadEvent<{ body: string }>('api-reindex.json').body))).toEqual({
      all: false,
    });
  });
});
