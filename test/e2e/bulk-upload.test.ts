/**
 * Single-flight training under load (docs/ARCHITECTURE.md "Orchestration"): a bulk upload like
 * `aws s3 sync` (1,000 small PNGs, many parallel PUTs through the AWS SDK) into the local stack
 * running in this process, with the local settings derived from the deployed ones. Asserts: no
 * failed execution, at most one training running at any time (sampled), the final model trained
 * on every image; then one retrain after a delete and one after a move (`aws s3 mv`: copy +
 * delete) that relabels the image.
 *
 * Kept fast: 32x32 input, average pooling, seeded random weights, the onnx engine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CopyObjectCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { type ExecutionListItem, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../lib/config.ts';
import type { LocalStack } from '../../lib/local/stack.ts';
import { headObject } from '../../lib/storage/s3.ts';
import { mapWithConcurrency } from '../../lib/util/concurrency.ts';
import { makeLabelledImages } from '../helpers/images.ts';
import { pollUntil } from '../helpers/poll.ts';
import { startTestStack } from '../helpers/stack.ts';

const DATASET = 'bulk';
const LABELS = ['red', 'green', 'blue', 'yellow'];
const PER_CLASS = Number(process.env.BULK_PER_CLASS ?? 250);
const TOTAL = LABELS.length * PER_CLASS;
/** Parallel PUTs, like the AWS CLI's default max_concurrent_requests (10) times a few. */
const UPLOAD_CONCURRENCY = 32;

interface ModelInfo {
  version: string;
  total: number;
  perClass: Record<string, number>;
}

describe('a bulk upload into the local stack (1,000 images through the AWS SDK)', () => {
  let tmp: string;
  let stack: LocalStack | undefined;
  let s3: S3Client;
  let sfn: SFNClient;
  let sampler: ReturnType<typeof setInterval> | undefined;
  let maxRunning = 0;
  let samples = 0;
  const savedBackend = process.env[ENV.BACKEND];

  const the = () => {
    if (!stack) throw new Error('the stack is not running');
    return stack;
  };

  async function executions(status?: 'RUNNING' | 'FAILED'): Promise<ExecutionListItem[]> {
    const out = await sfn.send(
      new ListExecutionsCommand({
        stateMachineArn: the().stateMachineArn,
        ...(status ? { statusFilter: status } : {}),
        maxResults: 1000,
      }),
    );
    return out.executions ?? [];
  }

  async function model(): Promise<ModelInfo | undefined> {
    const res = await fetch(`${the().apiUrl}/datasets/${DATASET}/model`);
    if (res.status !== 200) return undefined;
    const body = (await res.json()) as {
      model: { version: string };
      report: { counts: { total: number; perClass: { label: string; total: number }[] } };
    };
    return {
      version: body.model.version,
      total: body.report.counts.total,
      perClass: Object.fromEntries(body.report.counts.perClass.map((c) => [c.label, c.total])),
    };
  }

  let seen = '';
  /** The served model once it has `total` images and no training runs any more. */
  async function settledModel(total: number, notVersion?: string): Promise<ModelInfo> {
    return pollUntil(
      `a served model trained on ${total} images, no training running`,
      async () => {
        const m = await model();
        const running = await executions('RUNNING');
        seen = JSON.stringify({ model: m, running: running.map((e) => e.name) });
        if (!m || m.total !== total || m.version === notVersion) return undefined;
        return running.length === 0 ? m : undefined;
      },
      // Generous: the machine running the suite may be shared and slow.
      600_000,
      1000,
      () => seen,
    );
  }

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-bulk-'));
    process.env[ENV.BACKEND] = 'onnx';
    stack = await startTestStack(join(tmp, 'data'), { weights: 'random:3' });
    const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
    s3 = new S3Client({
      region: stack.region,
      endpoint: stack.awsEndpoint,
      forcePathStyle: true,
      credentials,
    });
    sfn = new SFNClient({ region: stack.region, endpoint: stack.sfnEndpoint, credentials });
    // At most one training of the dataset at any time: sampled all along.
    sampler = setInterval(() => {
      executions('RUNNING').then(
        (running) => {
          samples++;
          maxRunning = Math.max(maxRunning, running.length);
        },
        () => undefined,
      );
    }, 500);
  }, 120_000);

  afterAll(async () => {
    if (sampler) clearInterval(sampler);
    s3?.destroy();
    sfn?.destroy();
    await stack?.stop();
    if (savedBackend === undefined) delete process.env[ENV.BACKEND];
    else process.env[ENV.BACKEND] = savedBackend;
    await rm(tmp, { recursive: true, force: true });
  });

  it('trains once per burst on every image, never two at a time, none failed; a delete and a move retrain once each', async () => {
    const images = await makeLabelledImages({
      labels: LABELS,
      perClass: PER_CLASS,
      width: 32,
      height: 32,
      seed: 9,
    });
    const bucket = the().bucket;

    // Upload like `aws s3 sync`: many parallel PUTs.
    const t0 = performance.now();
    await mapWithConcurrency(images, UPLOAD_CONCURRENCY, (img) =>
      s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `datasets/${DATASET}/${img.label}/${img.file}`,
          Body: img.data,
          ContentType: 'image/png',
        }),
      ),
    );
    const uploadedMs = performance.now() - t0;
    const first = await settledModel(TOTAL);
    const firstMs = performance.now() - t0;
    const afterUpload = await executions();

    expect(first.perClass).toEqual(Object.fromEntries(LABELS.map((l) => [l, PER_CLASS])));
    expect(await executions('FAILED')).toEqual([]);

    // Delete one image: its feature goes, one retrain without it.
    const gone = `datasets/${DATASET}/red/img-000.png`;
    const t1 = performance.now();
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: gone }));
    const afterDelete = await settledModel(TOTAL - 1, first.version);
    const deleteMs = performance.now() - t1;
    expect(afterDelete.perClass.red).toBe(PER_CLASS - 1);
    expect(await headObject(s3, bucket, `features/${DATASET}/red/img-000.png.npy`)).toBeUndefined();
    const deleteExecutions = (await executions()).length - afterUpload.length;

    // Move one image to another label (what `aws s3 mv` does): copy, then delete. It is relabelled.
    const from = `datasets/${DATASET}/green/img-001.png`;
    const to = `datasets/${DATASET}/blue/moved-img-001.png`;
    const t2 = performance.now();
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: `${bucket}/${from}` }));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: from }));
    const afterMove = await pollUntil(
      'a model with the moved image under its new label',
      async () => {
        const m = await settledModel(TOTAL - 1, afterDelete.version);
        return m.perClass.blue === PER_CLASS + 1 ? m : undefined;
      },
      240_000,
      1000,
    );
    const moveMs = performance.now() - t2;
    expect(afterMove.perClass).toMatchObject({
      green: PER_CLASS - 1,
      blue: PER_CLASS + 1,
      red: PER_CLASS - 1,
    });
    const moveExecutions = (await executions()).length - afterUpload.length - deleteExecutions;

    const all = await executions();
    expect(all.filter((e) => e.status === 'FAILED')).toEqual([]);
    expect(maxRunning).toBe(1);
    expect(samples).toBeGreaterThan(10);
    expect(deleteExecutions).toBe(1);
    expect(moveExecutions).toBe(1);
    console.log(
      [
        `bulk upload of ${TOTAL} images: PUTs done in ${(uploadedMs / 1000).toFixed(1)} s, final model ${(firstMs / 1000).toFixed(1)} s after the first PUT`,
        `  executions: ${afterUpload.length} for the upload, ${deleteExecutions} after the delete (${(deleteMs / 1000).toFixed(1)} s), ${moveExecutions} after the move (${(moveMs / 1000).toFixed(1)} s); failed: 0; at most ${maxRunning} running (${samples} samples)`,
      ].join('\n'),
    );
  }, 1_500_000);
});
