import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExtractDeps, extractImages } from '../../../lib/pipeline/extract.ts';
import type { ImageJob } from '../../../lib/pipeline/feature-records.ts';
import { putObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { countRequests } from '../../helpers/count-requests.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage } from '../../helpers/images.ts';

describe('extractImages overlaps reading the next chunk with the forward pass of the current one', () => {
  let emu: Emulator;
  let featuresQueueUrl: string;
  const jobs: ImageJob[] = [];

  beforeAll(async () => {
    emu = await startEmulator();
    featuresQueueUrl = emu.createQueue('features').queueUrl;
    for (let i = 0; i < 6; i++) {
      const key = `datasets/pets/cat/${i}.png`;
      const { etag } = await putObject(
        emu.clients.s3,
        emu.bucket,
        key,
        await makeImage('png', { width: 40, height: 30, seed: i }),
        { contentType: 'image/png' },
      );
      jobs.push({ recordId: `m${i}`, key, etag });
    }
  }, 30_000);
  afterAll(async () => {
    await emu.stop();
  });

  it('reads and decodes chunk 2 while chunk 1 runs through the network', async () => {
    // Prepare: a forward pass that takes as long as the next chunk's reads need (up to 2 s), noting
    // how many images had been read by its end and how many inputs were alive at its start.
    const gets = countRequests(emu.clients.s3, 'GetObjectCommand');
    const inner = fakeExtractor();
    const readByEndOfPass: number[] = [];
    const extractor = {
      ...inner,
      async extractBatch(images: Float32Array[]) {
        const deadline = performance.now() + 2000;
        while (gets.count() < jobs.length && performance.now() < deadline)
          await new Promise((r) => setTimeout(r, 5));
        readByEndOfPass.push(gets.count());
        return inner.extractBatch(images);
      },
    };
    const deps: ExtractDeps = {
      s3: emu.clients.s3,
      sqs: emu.clients.sqs,
      bucket: emu.bucket,
      featuresQueueUrl,
      extractor,
      batchSize: 3,
      log: silentLog,
    };
    try {
      // Act
      const r = await extractImages(jobs, deps);
      // Assess: every image read before the first pass ended (one chunk at a time reads 3), and
      // every image extracted, in passes of the batch size.
      expect(readByEndOfPass).toEqual([6, 6]);
      expect(inner.batches).toEqual([3, 3]);
      expect(r.counts).toEqual({ extracted: 6, failed: 0, skipped: 0, retry: 0 });
    } finally {
      gets.remove();
    }
  });
});
