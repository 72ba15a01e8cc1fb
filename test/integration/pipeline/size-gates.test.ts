import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FeatureMessage } from '../../../lib/features/messages.ts';
import { FeatureErrorRecord } from '../../../lib/features/metadata.ts';
import { type ExtractDeps, extractImages } from '../../../lib/pipeline/extract.ts';
import type { ImageJob } from '../../../lib/pipeline/feature-records.ts';
import { imageJobsFromMessages } from '../../../lib/pipeline/ingest.ts';
import { reindexDataset } from '../../../lib/pipeline/reindex.ts';
import { featureErrorKey, parseImageKey } from '../../../lib/storage/keys.ts';
import { putLargeObject } from '../../../lib/storage/multipart.ts';
import { deleteObject, getJson } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { countRequests } from '../../helpers/count-requests.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { drainQueue } from './support.ts';

const HUGE_KEY = 'datasets/pets/cat/huge.jpg';
const HUGE_BYTES = 120 * 1024 * 1024;

/** Runs `fn` while sampling the process's ArrayBuffer memory; returns its result and the peak growth. */
async function withPeakMemory<T>(fn: () => Promise<T>): Promise<{ result: T; peakGrowth: number }> {
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }, 2);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    return { result, peakGrowth: peak - base };
  } finally {
    clearInterval(timer);
  }
}

function errorKeyOf(key: string): string {
  const parsed = parseImageKey(key);
  if (!parsed.ok) throw new Error(`bad test key ${key}`);
  return featureErrorKey(parsed.image);
}

describe('size gates: an image over the stored-image limit is recorded without being read', () => {
  let emu: Emulator;
  let featuresQueueUrl: string;
  let hugeEtag: string;
  let deps: ExtractDeps;

  beforeAll(async () => {
    emu = await startEmulator();
    featuresQueueUrl = emu.createQueue('features').queueUrl;
    deps = {
      s3: emu.clients.s3,
      sqs: emu.clients.sqs,
      bucket: emu.bucket,
      featuresQueueUrl,
      extractor: fakeExtractor(),
      batchSize: 4,
      log: silentLog,
    };
    // 120 MB of zeros named like a photo, written once for every test.
    // Multipart, as `aws s3 cp` sends it.
    hugeEtag = (await putLargeObject(emu.clients.s3, emu.bucket, HUGE_KEY, Buffer.alloc(HUGE_BYTES))).etag;
  }, 60_000);
  afterAll(async () => {
    await emu.stop();
  });

  async function extractWithCounts(job: ImageJob) {
    await deleteObject(emu.clients.s3, emu.bucket, errorKeyOf(HUGE_KEY));
    await drainQueue(emu.clients.sqs, featuresQueueUrl);
    const gets = countRequests(emu.clients.s3, 'GetObjectCommand');
    const started = performance.now();
    try {
      const { result, peakGrowth } = await withPeakMemory(() => extractImages([job], deps));
      const ms = performance.now() - started;
      return { result, peakGrowth, gets: gets.count(), ms };
    } finally {
      gets.remove();
    }
  }

  async function assessTooLarge(sqs: SQSClient) {
    const record = await getJson(emu.clients.s3, emu.bucket, errorKeyOf(HUGE_KEY), FeatureErrorRecord);
    expect(record).toMatchObject({ imageKey: HUGE_KEY, sourceEtag: hugeEtag, code: 'ImageTooLarge' });
    expect(record.reason).toContain('120.0 MB, over the limit of 50.0 MB');
    const messages = (await drainQueue(sqs, featuresQueueUrl)).map((m) => FeatureMessage.parse(m));
    expect(messages).toEqual([
      expect.objectContaining({
        type: 'feature.failed',
        imageKey: HUGE_KEY,
        reason: expect.stringContaining('ImageTooLarge'),
      }),
    ]);
  }

  it('records a 120 MB huge.jpg as ImageTooLarge from its event size, without a GET', async () => {
    // Prepare: the event S3 sends for the upload.
    const job: ImageJob = { recordId: 'm1', key: HUGE_KEY, etag: hugeEtag, size: HUGE_BYTES };

    // Act
    const { result, gets, ms, peakGrowth } = await extractWithCounts(job);

    // Assess
    expect(result.outcomes).toEqual([expect.objectContaining({ status: 'failed', code: 'ImageTooLarge' })]);
    expect(gets).toBe(0);
    expect(peakGrowth).toBeLessThan(HUGE_BYTES / 4);
    expect(ms).toBeLessThan(5_000);
    await assessTooLarge(emu.clients.sqs);
  });

  it('stops reading at the limit when the event claims a small size (a lying or stale event)', async () => {
    // Prepare: an event whose size says 1 KB.
    const job: ImageJob = { recordId: 'm1', key: HUGE_KEY, etag: hugeEtag, size: 1024 };

    // Act
    const { result, gets, ms, peakGrowth } = await extractWithCounts(job);

    // Assess: one GET, abandoned on its Content-Length; memory did not grow by the object's size.
    expect(result.outcomes).toEqual([expect.objectContaining({ status: 'failed', code: 'ImageTooLarge' })]);
    expect(gets).toBe(1);
    expect(peakGrowth).toBeLessThan(HUGE_BYTES / 4);
    expect(ms).toBeLessThan(5_000);
    await assessTooLarge(emu.clients.sqs);
  });

  it('records an oversized image of a reindex from the listing size, without a GET', async () => {
    // Prepare: a reindex sends the S3-shaped event of every image without a current record.
    await deleteObject(emu.clients.s3, emu.bucket, errorKeyOf(HUGE_KEY));
    const ingestQueueUrl = emu.createQueue('ingest').queueUrl;
    await reindexDataset('pets', {}, { ...deps, region: emu.region, ingestQueueUrl });
    const bodies = await drainQueue(emu.clients.sqs, ingestQueueUrl);
    const { jobs } = imageJobsFromMessages(
      bodies.map((b, i) => ({ id: `r${i}`, body: JSON.stringify(b), receiveCount: 1 })),
      emu.bucket,
      silentLog,
    );
    expect(jobs).toEqual([expect.objectContaining({ key: HUGE_KEY, size: HUGE_BYTES })]);
    const job = jobs[0];
    if (!job) throw new Error('no job');

    // Act
    const { result, gets } = await extractWithCounts(job);

    // Assess
    expect(result.outcomes).toEqual([expect.objectContaining({ status: 'failed', code: 'ImageTooLarge' })]);
    expect(gets).toBe(0);
    await assessTooLarge(emu.clients.sqs);
  });
});
