/**
 * Batch predictions end to end on the local stack in this process (free ports,
 * seeded random weights, no network): a model is trained by the pipeline itself, a batch of good
 * images plus one corrupt image is uploaded under batches/{d}/{id}/input/, started with the real
 * API and scored by the batch worker through the emulator's SQS queue. Every good row must equal
 * the API's own single prediction of the same bytes; the corrupt one is a row with an error.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionResponse } from '../../lib/api/predict.ts';
import { type BatchRow, type BatchStatus, SummarySchema } from '../../lib/batch/layout.ts';
import { newBatchId } from '../../lib/batch/start.ts';
import { runRemotePredict } from '../../lib/cli/commands/predict-remote.ts';
import { EXIT } from '../../lib/cli/exit-codes.ts';
import type { CliContext } from '../../lib/cli/remote.ts';
import { createTargetS3Client } from '../../lib/cli/target.ts';
import type { LocalStack } from '../../lib/local/stack.ts';
import { batchInputPrefix, imageKey } from '../../lib/storage/keys.ts';
import { getObject, putObject } from '../../lib/storage/s3.ts';
import { makeLabelledImages, truncateImage } from '../helpers/images.ts';
import { pollUntil } from '../helpers/poll.ts';
import { startTestStack } from '../helpers/stack.ts';

const DATASET = 'shapes';

describe('batch predictions on the local stack', () => {
  let tmp: string;
  let stack: LocalStack | undefined;
  let s3: S3Client | undefined;
  const good: { key: string; data: Buffer }[] = [];
  let badKey = '';
  let batchId = '';

  const api = () => {
    if (!stack) throw new Error('the stack is not running');
    return stack;
  };
  const bucket = () => {
    if (!s3) throw new Error('no S3 client');
    return s3;
  };
  const text = async (key: string) =>
    Buffer.from((await getObject(bucket(), api().bucket, key)).body).toString('utf8');

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-batch-'));
    stack = await startTestStack(join(tmp, 'data'), { settleSeconds: 1 });
    s3 = createTargetS3Client(
      { bucket: stack.bucket, region: stack.region, endpoint: stack.awsEndpoint },
      10_000,
    );
    // Training images: the pipeline extracts and trains by itself.
    const images = await makeLabelledImages({ labels: ['red', 'green'], perClass: 8, seed: 3 });
    for (const [i, img] of images.entries()) {
      if (i % 8 < 5) await putObject(s3, stack.bucket, imageKey(DATASET, img.label, img.file), img.data);
    }
    await pollUntil(
      'a promoted model',
      async () =>
        (await fetch(`${stack?.apiUrl}/datasets/${DATASET}/model`)).status === 200 ? true : undefined,
      90_000,
    );
    // The batch: the held-out images (3 per class) and one corrupt image, uploaded as a client would.
    batchId = newBatchId();
    const input = batchInputPrefix(DATASET, batchId);
    for (const [i, img] of images.entries()) {
      if (i % 8 < 5) continue;
      const key = `${input}${img.label}-${img.file}`;
      await putObject(s3, stack.bucket, key, img.data);
      good.push({ key, data: img.data });
    }
    badKey = `${input}broken.png`;
    await putObject(s3, stack.bucket, badKey, truncateImage(images[0]?.data ?? Buffer.alloc(0), 0.3));
  }, 120_000);

  afterAll(async () => {
    s3?.destroy();
    await stack?.stop();
    await rm(tmp, { recursive: true, force: true });
  }, 60_000);

  it('scores every image like the API does and reports the corrupt one as a row with an error', async () => {
    const start = await fetch(`${api().apiUrl}/datasets/${DATASET}/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prefix: batchInputPrefix(DATASET, batchId) }),
    });
    expect(start.status).toBe(202);
    expect(await start.json()).toEqual({ id: batchId, status: 'running' });

    const status = await pollUntil(
      'the batch to finish',
      async () => {
        const res = await fetch(`${api().apiUrl}/datasets/${DATASET}/batches/${batchId}`);
        expect(res.status).toBe(200);
        const body = (await res.json()) as BatchStatus;
        return body.status === 'running' ? undefined : body;
      },
      90_000,
    );
    expect(status.status).toBe('succeeded');
    expect(status.counts).toEqual({ total: good.length + 1, done: good.length + 1, failed: 1 });

    const rows = (await text(status.results.jsonl))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as BatchRow);
    expect(rows.map((r) => r.key).sort()).toEqual([...good.map((g) => g.key), badKey].sort());
    expect(rows.find((r) => r.key === badKey)?.error).toMatch(/corrupt|truncated|decode|image/i);

    for (const g of good) {
      const res = await fetch(`${api().apiUrl}/datasets/${DATASET}/predictions`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: g.data,
      });
      expect(res.status).toBe(200);
      const single = (await res.json()) as PredictionResponse;
      const row = rows.find((r) => r.key === g.key);
      expect(row?.error).toBeUndefined();
      expect(row?.label).toBe(single.label);
      expect(row?.abstained).toBe(single.abstained);
      expect(row?.confidence).toBeCloseTo(single.confidence, 6);
      for (const s of single.scores) {
        expect(row?.scores?.find((x) => x.label === s.label)?.probability).toBeCloseTo(s.probability, 6);
      }
      expect(single.model.version).toBe(status.modelVersion);
    }

    const csv = (await text(status.results.csv)).trim().split('\r\n');
    expect(csv[0]).toBe('key,label,confidence,abstained,p:green,p:red,error');
    expect(csv).toHaveLength(good.length + 2);
    const summary = SummarySchema.parse(JSON.parse(await text(status.results.summary)));
    expect(summary.counts).toEqual(status.counts);
    expect(Object.values(summary.labels).reduce((a, b) => a + b, 0)).toBe(good.length);
  }, 120_000);

  it('scores a local folder with tlearn predict --batch, writes the CSV and exits 3 for the corrupt image', async () => {
    const dir = join(tmp, 'to-score');
    await mkdir(dir);
    for (const g of good.slice(0, 3)) await writeFile(join(dir, g.key.split('/').pop() ?? 'x.png'), g.data);
    await writeFile(join(dir, 'broken.png'), truncateImage(good[0]?.data ?? Buffer.alloc(0), 0.3));
    const out: string[] = [];
    const progress = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });
    const ctx: CliContext = {
      env: {},
      cwd: tmp,
      out: (l) => out.push(l),
      err: () => undefined,
      progress: progress as unknown as NodeJS.WriteStream,
    };
    const csvPath = join(tmp, 'results.csv');
    const code = await runRemotePredict(
      [
        DATASET,
        '--batch',
        dir,
        '--out',
        csvPath,
        '--interval',
        '0.2',
        '--endpoint',
        api().apiUrl,
        '--s3-endpoint',
        api().awsEndpoint,
        '--bucket',
        api().bucket,
        '--region',
        api().region,
      ],
      ctx,
    );
    expect(code).toBe(EXIT.PARTIAL);
    expect(out[0]).toMatch(/^3\/4 images scored, 1 failed \(model /);
    const lines = (await readFile(csvPath, 'utf8')).trim().split('\r\n');
    expect(lines).toHaveLength(5);
    expect(lines.find((l) => l.includes('/input/broken.png'))).toMatch(/,[^,]+$/);
  }, 120_000);

  it('answers 404 for an unknown batch and 400 for a prefix outside the readable ones', async () => {
    const missing = await fetch(`${api().apiUrl}/datasets/${DATASET}/batches/${newBatchId()}`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('BatchNotFound');
    const outside = await fetch(`${api().apiUrl}/datasets/${DATASET}/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prefix: 'models/' }),
    });
    expect(outside.status).toBe(400);
    expect(((await outside.json()) as { error: { code: string } }).error.code).toBe('InvalidPrefix');
  });
});
