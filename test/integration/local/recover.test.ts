/**
 * Start-up recovery (lib/local/recover.ts): a stack that starts on a data dir left by a crash heals
 * with no manual step. The crash is staged with a first stack whose consumer of one queue does
 * nothing (the messages it took are gone, as after a kill -9: queues live in memory) and, for the
 * lock, a lock written as the dead process's execution would have left it. The real kill -9 runs
 * in `npm run chaos` (bench/chaos/).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import type { LambdaHandler } from '../../../lib/local/lambda-context.ts';
import { createSfnRunner } from '../../../lib/local/sfn-runner.ts';
import type { LocalStack } from '../../../lib/local/stack.ts';
import {
  readTrainingLock,
  trainingExecutionName,
  writeTrainingLock,
} from '../../../lib/pipeline/training-lock.ts';
import { headObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { makeImage, makeLabelledImages } from '../../helpers/images.ts';
import { pollUntil } from '../../helpers/poll.ts';
import { startTestStack } from '../../helpers/stack.ts';

const DATASET = 'crash';
const PER_CLASS = 8;
const TOTAL = 2 * PER_CLASS;

/** A queue consumer that takes its messages and does nothing with them (what a crash does to them). */
const swallow: LambdaHandler = async () => ({ batchItemFailures: [] });

function s3Of(stack: LocalStack): S3Client {
  return new S3Client({
    region: stack.region,
    endpoint: stack.awsEndpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

async function uploadImages(stack: LocalStack, s3: S3Client): Promise<void> {
  const images = await makeLabelledImages({ labels: ['cat', 'dog'], perClass: PER_CLASS, seed: 4 });
  for (const img of images) {
    await s3.send(
      new PutObjectCommand({
        Bucket: stack.bucket,
        Key: `datasets/${DATASET}/${img.label}/${img.file}`,
        Body: img.data,
        ContentType: 'image/png',
      }),
    );
  }
}

async function datasetStatus(
  stack: LocalStack,
): Promise<{ images: { ready: number; pending: number } } | undefined> {
  const res = await fetch(`${stack.apiUrl}/datasets/${DATASET}`);
  return res.status === 200
    ? ((await res.json()) as { images: { ready: number; pending: number } })
    : undefined;
}

/** The promoted model's image count, once it counts `total`. */
function modelCounting(stack: LocalStack, total: number, timeoutMs: number): Promise<number> {
  let seen = '';
  return pollUntil(
    `a promoted model counting ${total} images`,
    async () => {
      const res = await fetch(`${stack.apiUrl}/datasets/${DATASET}/model`);
      seen = `${res.status}`;
      if (res.status !== 200) return undefined;
      const body = (await res.json()) as { report: { counts: { total: number } } };
      seen = `a model counting ${body.report.counts.total}`;
      return body.report.counts.total === total ? total : undefined;
    },
    timeoutMs,
    500,
    () => seen,
  );
}

describe('the local stack after a crash', () => {
  let tmp: string | undefined;
  const stacks: LocalStack[] = [];
  const clients: S3Client[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const s of stacks.splice(0)) await s.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
    tmp = undefined;
  });

  async function start(dataDir: string, handlers: Parameters<typeof startTestStack>[1] = {}) {
    const stack = await startTestStack(dataDir, handlers);
    stacks.push(stack);
    const s3 = s3Of(stack);
    clients.push(s3);
    return { stack, s3 };
  }

  it('takes over a lock held by an execution of the dead process and trains every image', async () => {
    // Prepare: images whose ingest messages were lost, and a lock a dead execution just took.
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-recover-lock-'));
    const dataDir = join(tmp, 'data');
    const crashed = await start(dataDir, { handlers: { 'extract-features': swallow } });
    await uploadImages(crashed.stack, crashed.s3);
    const now = new Date();
    const dead = trainingExecutionName(DATASET, now, 2);
    const wrote = await writeTrainingLock(
      crashed.s3,
      crashed.stack.bucket,
      DATASET,
      {
        state: 'running',
        executionName: dead,
        acquiredAt: now.toISOString(),
        generation: 2,
        trainedGeneration: 0,
        trigger: 'auto',
        updatedAt: now.toISOString(),
      },
      undefined,
    );
    expect(wrote).toBe(true);
    await crashed.stack.stop();
    stacks.length = 0;

    // Act: start again on the same data dir, with every handler.
    const restarted = await start(dataDir);

    // Assess: a model on every image, and the lock released once it trained everything. (The lock's
    // execution never started, so the restart starts it under the lock's own name: names are
    // per lock generation, lib/pipeline/training-lock.ts.)
    expect(await modelCounting(restarted.stack, TOTAL, 90_000)).toBe(TOTAL);
    const lock = await pollUntil(
      'the lock released',
      async () => {
        const l = await readTrainingLock(restarted.s3, restarted.stack.bucket, DATASET);
        return l?.lock.state === 'idle' ? l : undefined;
      },
      30_000,
    );
    expect(lock.lock.trainedGeneration).toBe(lock.lock.generation);
  }, 240_000);

  it('trains on features whose messages were lost, with no upload to trigger it', async () => {
    // Prepare: every image extracted, but the feature messages never reached start-training.
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-recover-model-'));
    const dataDir = join(tmp, 'data');
    const crashed = await start(dataDir, { handlers: { 'start-training': swallow } });
    await uploadImages(crashed.stack, crashed.s3);
    await pollUntil(
      'every feature',
      async () => ((await datasetStatus(crashed.stack))?.images.ready === TOTAL ? true : undefined),
      120_000,
      500,
    );
    await crashed.stack.stop();
    stacks.length = 0;

    // Act
    const restarted = await start(dataDir);

    // Assess
    expect(await modelCounting(restarted.stack, TOTAL, 90_000)).toBe(TOTAL);
  }, 300_000);

  it('extracts again an image replaced after its feature was written, whose message was lost', async () => {
    // Prepare: a trained dataset; then one image replaced while the extractor's messages were lost.
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-recover-stale-'));
    const dataDir = join(tmp, 'data');
    const first = await start(dataDir);
    await uploadImages(first.stack, first.s3);
    await modelCounting(first.stack, TOTAL, 120_000);
    await first.stack.stop();
    stacks.length = 0;
    const crashed = await start(dataDir, { handlers: { 'extract-features': swallow } });
    const key = `datasets/${DATASET}/cat/img-000.png`;
    const replaced = await crashed.s3.send(
      new PutObjectCommand({
        Bucket: crashed.stack.bucket,
        Key: key,
        Body: await makeImage('png', { width: 32, height: 32, seed: 99 }),
        ContentType: 'image/png',
      }),
    );
    await crashed.stack.stop();
    stacks.length = 0;

    // Act
    const restarted = await start(dataDir);

    // Assess: the feature is of the new content.
    const etag = (replaced.ETag ?? '').replaceAll('"', '');
    const featureEtag = await pollUntil(
      "the replaced image's new feature",
      async () => {
        const head = await headObject(
          restarted.s3,
          restarted.stack.bucket,
          `features/${DATASET}/cat/img-000.png.npy`,
        );
        return head?.metadata['source-etag'] === etag ? etag : undefined;
      },
      90_000,
      500,
    );
    expect(featureEtag).toBe(etag);
  }, 360_000);

  it('reads an execution of a killed process as ABORTED, so the lock sees its holder is gone', async () => {
    // Prepare: an execution whose task never ends, and no close (the process "dies").
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-recover-sfn-'));
    const arnOfTask = 'arn:aws:lambda:us-east-1:000000000000:function:hang';
    const spec = {
      name: 'm',
      definition: { StartAt: 'Hang', States: { Hang: { Type: 'Task', Resource: arnOfTask, End: true } } },
      taskHandlers: { [arnOfTask]: () => new Promise<never>(() => {}) },
    };
    const dying = await createSfnRunner({
      region: 'us-east-1',
      stateMachines: [spec],
      dataDir: tmp,
      log: silentLog,
    });
    const { executionArn } = dying.startExecution({
      stateMachineArn: dying.stateMachineArns.m ?? '',
      name: 'crash-1',
      input: '{"dataset":"crash"}',
    });
    await new Promise((r) => setTimeout(r, 200));

    // Act: the next process opens the same records while the first never closed.
    const next = await createSfnRunner({
      region: 'us-east-1',
      stateMachines: [spec],
      dataDir: tmp,
      log: silentLog,
    });

    // Assess
    expect(next.getExecution(executionArn)).toMatchObject({ status: 'ABORTED', error: 'Local.StackStopped' });
    await dying.close(0);
    await next.close(0);
  });
});
