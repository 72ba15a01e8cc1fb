/**
 * The batch worker against the S3 + SQS emulator with a fast fake extractor: chunks are scored
 * into parts, a redelivered chunk does not count twice, finishing twice writes the same results,
 * and a batch without its model fails with failed.json instead of retrying forever.
 */
import { readFile } from 'node:fs/promises';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { finishBatch } from '../../../lib/batch/finish.ts';
import { type BatchRow, ChunkMessageSchema, SummarySchema } from '../../../lib/batch/layout.ts';
import {
  batchStatus,
  newBatchId,
  readManifest,
  StartBatchBody,
  startBatch,
} from '../../../lib/batch/start.ts';
import { runChunk } from '../../../lib/batch/worker.ts';
import { batchInputPrefix, batchKeys } from '../../../lib/storage/keys.ts';
import { putLargeObject } from '../../../lib/storage/multipart.ts';
import { getObject, putObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage, truncateImage } from '../../helpers/images.ts';
import { makeHead, promote, seedModel } from '../api/support.ts';

const DATASET = 'pets';
const VERSION = '20261206T220000Z-abc123';

describe('the batch worker', () => {
  let emu: Emulator;
  let queueUrl = '';
  const extractor = fakeExtractor();

  beforeAll(async () => {
    emu = await startEmulator();
    queueUrl = emu.createQueue('batch').queueUrl;
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(async () => {
    emu.reset();
  });

  const deps = () => ({
    s3: emu.clients.s3,
    bucket: emu.bucket,
    extractor,
    limitInputPixels: 40_000_000,
    log: silentLog,
  });

  /** Uploads `n` good images and one corrupt one, starts a batch with chunks of 2, returns its messages. */
  async function start(n: number) {
    const { s3 } = emu.clients;
    await seedModel(
      s3,
      emu.bucket,
      DATASET,
      VERSION,
      makeHead(['cat', 'dog'], 512, extractor.specId, 3, 0.05),
    );
    await promote(s3, emu.bucket, DATASET, VERSION);
    const id = newBatchId();
    const input = batchInputPrefix(DATASET, id);
    for (let i = 0; i < n; i++) {
      await putObject(
        s3,
        emu.bucket,
        `${input}img-${i}.png`,
        await makeImage('png', { seed: i, color: [i * 40, 90, 30] }),
      );
    }
    await putObject(
      s3,
      emu.bucket,
      `${input}zz-bad.png`,
      truncateImage(await makeImage('png', { seed: 99 }), 0.3),
    );
    await startBatch(
      { s3, bucket: emu.bucket, sqs: emu.clients.sqs, queueUrl, chunkSize: 2 },
      DATASET,
      { prefix: input },
      VERSION,
    );
    const out = await emu.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }),
    );
    const messages = (out.Messages ?? []).map((m) => ChunkMessageSchema.parse(JSON.parse(m.Body ?? '')));
    return { id, messages: messages.sort((a, b) => a.part - b.part) };
  }

  it('scores every chunk, finishes once all parts exist, and a duplicate delivery counts once', async () => {
    const { id, messages } = await start(4);
    expect(messages.map((m) => m.part)).toEqual([0, 1, 2]);
    const [first, second, third] = messages;
    if (!first || !second || !third) throw new Error('expected three chunks');
    expect((await runChunk(deps(), first)).batch).toBe('running');
    // The same chunk delivered again (SQS is at-least-once).
    expect((await runChunk(deps(), first)).batch).toBe('running');
    const mid = await batchStatus(emu.clients.s3, emu.bucket, DATASET, id);
    expect(mid).toMatchObject({ status: 'running', counts: { total: 5, done: 2, failed: 0 } });
    await runChunk(deps(), second);
    const last = await runChunk(deps(), third);
    expect(last).toMatchObject({ batch: 'finished', rows: 1, failed: 1 });
    const done = await batchStatus(emu.clients.s3, emu.bucket, DATASET, id);
    expect(done).toMatchObject({ status: 'succeeded', counts: { total: 5, done: 5, failed: 1 } });
    // A late duplicate of an earlier chunk after the batch finished changes nothing.
    await runChunk(deps(), second);
    expect((await batchStatus(emu.clients.s3, emu.bucket, DATASET, id)).counts).toEqual(done.counts);

    const k = batchKeys(DATASET, id);
    const jsonl = Buffer.from((await getObject(emu.clients.s3, emu.bucket, k.jsonl)).body).toString('utf8');
    const rows = jsonl
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as BatchRow);
    expect(rows.map((r) => r.key.split('/').pop())).toEqual([
      'img-0.png',
      'img-1.png',
      'img-2.png',
      'img-3.png',
      'zz-bad.png',
    ]);
    expect(rows[4]?.error).toBeDefined();
    expect(rows.slice(0, 4).every((r) => r.scores?.length === 2 && r.error === undefined)).toBe(true);
  });

  it('gives an image over 50 MB a row with ImageTooLarge, without reading it whole', async () => {
    // Prepare: a batch of one 51 MB file of zeros named like a photo.
    const { s3 } = emu.clients;
    await seedModel(
      s3,
      emu.bucket,
      DATASET,
      VERSION,
      makeHead(['cat', 'dog'], 512, extractor.specId, 3, 0.05),
    );
    await promote(s3, emu.bucket, DATASET, VERSION);
    const id = newBatchId();
    const key = `${batchInputPrefix(DATASET, id)}huge.jpg`;
    await putLargeObject(s3, emu.bucket, key, Buffer.alloc(51 * 1024 * 1024));
    await startBatch(
      { s3, bucket: emu.bucket, sqs: emu.clients.sqs, queueUrl, chunkSize: 2 },
      DATASET,
      { prefix: batchInputPrefix(DATASET, id) },
      VERSION,
    );

    // Act
    const outcome = await runChunk(deps(), { dataset: DATASET, id, part: 0 });

    // Assess
    expect(outcome).toMatchObject({ batch: 'finished', rows: 1, failed: 1 });
    const jsonl = Buffer.from((await getObject(s3, emu.bucket, batchKeys(DATASET, id).jsonl)).body).toString(
      'utf8',
    );
    expect((JSON.parse(jsonl) as BatchRow).error).toMatch(/^ImageTooLarge: .*50\.0 MB/);
  });

  it('reads the sample events of events/ as the worker and the API get them', async () => {
    const sqsEvent = JSON.parse(
      await readFile(new URL('../../../events/batch-chunk-in-sqs.json', import.meta.url), 'utf8'),
    ) as {
      Records: { body: string }[];
    };
    expect(ChunkMessageSchema.parse(JSON.parse(sqsEvent.Records[0]?.body ?? ''))).toMatchObject({
      dataset: 'pets',
      part: 0,
    });
    const apiEvent = JSON.parse(
      await readFile(new URL('../../../events/api-start-batch.json', import.meta.url), 'utf8'),
    ) as {
      body: string;
    };
    expect(StartBatchBody.parse(JSON.parse(apiEvent.body))).toEqual({ prefix: 'datasets/pets/' });
  });

  it('writes the same results when the finisher runs twice', async () => {
    const { id, messages } = await start(2);
    for (const m of messages) await runChunk(deps(), m);
    const k = batchKeys(DATASET, id);
    const read = async (key: string) =>
      Buffer.from((await getObject(emu.clients.s3, emu.bucket, key)).body).toString('utf8');
    const before = { jsonl: await read(k.jsonl), csv: await read(k.csv) };
    const manifest = await readManifest(emu.clients.s3, emu.bucket, DATASET, id);
    expect(await finishBatch(deps(), manifest, ['cat', 'dog'])).toBe(true);
    expect({ jsonl: await read(k.jsonl), csv: await read(k.csv) }).toEqual(before);
    const summary = SummarySchema.parse(JSON.parse(await read(k.summary)));
    expect(summary.counts).toEqual({ total: 3, done: 3, failed: 1 });
    expect(summary.modelVersion).toBe(VERSION);
    // Two chunks: two worker invocations with their measured time, priced.
    const lambda = summary.usage?.usage.lambda[0];
    expect(lambda).toMatchObject({ function: 'batch-predict', invocations: 2, architecture: 'x86_64' });
    expect(lambda?.durationMs).toBeGreaterThan(0);
    // Each worker read the manifest, checked the summary and read its images (3 images), then the finisher read 2 parts.
    expect(summary.usage?.usage.s3.get).toBe(2 * 2 + 3 + 2);
    expect(summary.usage?.cost.totalUsd).toBeGreaterThan(0);
  });

  it('fails the batch with failed.json when its model version is gone, without throwing', async () => {
    const { id, messages } = await start(1);
    const { s3 } = emu.clients;
    const first = messages[0];
    if (!first) throw new Error('expected a chunk');
    const manifest = await readManifest(s3, emu.bucket, DATASET, id);
    await putObject(
      s3,
      emu.bucket,
      batchKeys(DATASET, id).manifest,
      JSON.stringify({ ...manifest, modelVersion: '20261206T230000Z-gone12' }),
    );
    expect((await runChunk(deps(), first)).batch).toBe('failed');
    const status = await batchStatus(s3, emu.bucket, DATASET, id);
    expect(status.status).toBe('failed');
    expect(status.error?.code).toBe('ModelMissing');
  });
});
