/**
 * Finish's second look (finishTraining in lib/pipeline/training-lock.ts): a lock marked dirty
 * after the readiness check trains again only when the dataset now lists differently from the
 * listing the trainer used (scanFingerprint, lib/pipeline/readiness.ts). The local S3 emulator
 * (lib/local/emulator.ts: conditional writes enforced), a bucket per test; Step Functions is a
 * recorder of StartExecution (a hand-over at the retrain limit starts one).
 */
import { DescribeExecutionCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { featureMetadata } from '../../../lib/features/metadata.ts';
import { type LocalEmulator, startLocalEmulator } from '../../../lib/local/emulator.ts';
import { scanDataset, scanFingerprint } from '../../../lib/pipeline/readiness.ts';
import { startTrainings } from '../../../lib/pipeline/start-training.ts';
import {
  type FinishTrainingDeps,
  type FinishTrainingInput,
  finishTraining,
  readTrainingLock,
  type TrainingSfnClient,
  writeTrainingLock,
} from '../../../lib/pipeline/training-lock.ts';
import { createAwsClients } from '../../../lib/storage/clients.ts';
import { deleteObject, getObject, putObject, touchObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { putImageWithFeature, TEST_SPEC } from './support.ts';

const ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:train-test';
const RUNNING = 'pets-holder';
/** The generation the execution's readiness check read; the lock is one past it (dirty). */
const CHECKED = 2;
const IMAGES = ['cat/a.png', 'cat/b.png', 'dog/a.png', 'dog/b.png'].map((k) => `datasets/pets/${k}`);

describe('Finish after late feature messages: train again only for a change the model lacks (emulated S3)', () => {
  let server: LocalEmulator;
  let clients: ReturnType<typeof createAwsClients>;
  let buckets = 0;
  /** What putImageWithFeature needs: this test's bucket. */
  let emu: { clients: ReturnType<typeof createAwsClients>; bucket: string };
  let started: string[];
  let deps: FinishTrainingDeps;
  /** The fingerprint of the listing the trainer used (taken as runTrainingJob takes it). */
  let trained: string;

  const fingerprintNow = async (dataset: string) =>
    scanFingerprint(await scanDataset(emu.clients.s3, emu.bucket, dataset));
  const finish = (over: Partial<FinishTrainingInput> = {}) =>
    finishTraining(
      {
        dataset: 'pets',
        executionName: RUNNING,
        generation: CHECKED,
        outcome: 'trained',
        fingerprint: trained,
        retrains: 0,
        maxRetrains: 0,
        ...over,
      },
      deps,
    );
  const lock = async () => (await readTrainingLock(emu.clients.s3, emu.bucket, 'pets'))?.lock;

  beforeAll(async () => {
    server = await startLocalEmulator({ port: 0, region: 'us-east-1', log: silentLog });
    clients = createAwsClients({
      bucket: 'unused',
      region: 'us-east-1',
      endpoint: server.endpoint,
      awsTimeoutMs: 5000,
    });
  });
  afterAll(async () => {
    clients.s3.destroy();
    clients.sqs.destroy();
    clients.sfn.destroy();
    await server.stop();
  });
  beforeEach(async () => {
    buckets += 1;
    emu = { clients, bucket: `retrain-skip-${buckets}` };
    server.createBucket(emu.bucket);
    started = [];
    const sfn: TrainingSfnClient = {
      async send(cmd) {
        if (cmd instanceof DescribeExecutionCommand) return { status: 'RUNNING' };
        if (cmd instanceof StartExecutionCommand) started.push(cmd.input.name ?? '');
        return {};
      },
    };
    deps = {
      s3: emu.clients.s3,
      bucket: emu.bucket,
      sfn,
      stateMachineArn: ARN,
      log: silentLog,
      datasetFingerprint: fingerprintNow,
    };
    for (const [i, key] of IMAGES.entries()) await putImageWithFeature(emu, key, { seed: i });
    trained = await fingerprintNow('pets');
    const now = new Date().toISOString();
    await writeTrainingLock(
      emu.clients.s3,
      emu.bucket,
      'pets',
      {
        state: 'running',
        executionName: RUNNING,
        acquiredAt: now,
        generation: CHECKED + 1,
        trainedGeneration: 0,
        trigger: 'auto',
        updatedAt: now,
      },
      undefined,
    );
  });

  it('releases the lock at its generation, with no new execution, when the messages were of features the model has', async () => {
    const r = await finish();

    expect(r).toEqual({ again: false, reason: 'unchanged', generation: CHECKED + 1 });
    expect(await lock()).toMatchObject({
      state: 'idle',
      generation: CHECKED + 1,
      trainedGeneration: CHECKED + 1,
    });
    expect(started).toEqual([]);
  });

  it('releases it too after an identical re-upload (same ETag; the extractor only restamps the feature)', async () => {
    const key = IMAGES[0] ?? '';
    const image = await getObject(emu.clients.s3, emu.bucket, key);
    await putObject(emu.clients.s3, emu.bucket, key, image.body);
    const featureKey = key.replace(/^datasets\//, 'features/').concat('.npy');
    await touchObject(emu.clients.s3, emu.bucket, featureKey, {
      metadata: featureMetadata(image.etag, TEST_SPEC, 'cat'),
    });

    expect((await finish()).reason).toBe('unchanged');
  });

  const changes: [string, () => Promise<void>][] = [
    [
      'a new image with its feature',
      () => putImageWithFeature(emu, 'datasets/pets/cat/new.png', { seed: 9 }).then(() => {}),
    ],
    [
      'a new image still waiting for its feature',
      () => putObject(emu.clients.s3, emu.bucket, 'datasets/pets/dog/new.png', 'pixels').then(() => {}),
    ],
    [
      'a deleted image (its feature deleted too)',
      async () => {
        await deleteObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/a.png');
        await deleteObject(emu.clients.s3, emu.bucket, 'features/pets/cat/a.png.npy');
      },
    ],
    [
      'a deleted image whose feature is not removed yet',
      () => deleteObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/a.png'),
    ],
    [
      'an image moved to another label folder',
      async () => {
        await deleteObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/b.png');
        await deleteObject(emu.clients.s3, emu.bucket, 'features/pets/cat/b.png.npy');
        await putImageWithFeature(emu, 'datasets/pets/dog/b2.png', { seed: 1 });
      },
    ],
    [
      'an image replaced by other content, its new feature written',
      () => putImageWithFeature(emu, 'datasets/pets/dog/a.png', { seed: 42 }).then(() => {}),
    ],
    [
      'an image replaced by other content, its new feature not written yet',
      () => putObject(emu.clients.s3, emu.bucket, 'datasets/pets/dog/a.png', 'other pixels').then(() => {}),
    ],
    [
      'a feature written anew for the same image (a reindex with another spec)',
      async () => {
        const etag = (await getObject(emu.clients.s3, emu.bucket, 'datasets/pets/dog/b.png')).etag;
        await putObject(emu.clients.s3, emu.bucket, 'features/pets/dog/b.png.npy', 'another npy', {
          metadata: featureMetadata(etag, 'vgg16/random-2/32x32/avg/caffe/bilinear', 'dog'),
        });
      },
    ],
  ];
  it.each(changes)('trains again after %s', async (_what, change) => {
    await change();

    const r = await finish({ maxRetrains: 3 });

    expect(r).toEqual({ again: true, reason: 'dirty', generation: CHECKED + 1 });
    expect(await lock()).toMatchObject({ state: 'running', trainedGeneration: CHECKED });
  });

  it('hands a changed dataset to a fresh execution at the retrain limit', async () => {
    await putImageWithFeature(emu, 'datasets/pets/cat/new.png', { seed: 9 });

    const r = await finish();

    expect(r.reason).toBe('limit');
    expect(started).toEqual([r.next]);
  });

  it('trains again when a change and its message land while Finish lists the dataset', async () => {
    let calls = 0;
    deps.datasetFingerprint = async (dataset) => {
      const listed = await fingerprintNow(dataset);
      calls += 1;
      if (calls === 1) {
        // Written just after the listing; its message marks the running execution.
        await putImageWithFeature(emu, 'datasets/pets/cat/late.png', { seed: 5 });
        const body = JSON.stringify({
          type: 'feature.ready',
          dataset: 'pets',
          label: 'cat',
          imageKey: 'datasets/pets/cat/late.png',
          featureKey: 'features/pets/cat/late.png.npy',
          sourceEtag: 'etag',
          spec: TEST_SPEC,
          at: new Date().toISOString(),
        });
        const marked = await startTrainings([{ id: 'late', body, receiveCount: 1 }], deps);
        expect(marked.datasets[0]?.status).toBe('marked');
      }
      return listed;
    };

    const r = await finish({ maxRetrains: 3 });

    expect(calls).toBe(2);
    expect(r).toEqual({ again: true, reason: 'dirty', generation: CHECKED + 2 });
  });

  it('trains again after a failed training, whatever the listing says (no model to compare)', async () => {
    const r = await finish({ outcome: 'failed', fingerprint: undefined, maxRetrains: 3 });

    expect(r).toMatchObject({ again: true, reason: 'dirty' });
  });

  it('releases a lock that did not move without listing the dataset', async () => {
    let listed = 0;
    deps.datasetFingerprint = async (d) => {
      listed += 1;
      return fingerprintNow(d);
    };

    const r = await finish({ generation: CHECKED + 1 });

    expect(r).toMatchObject({ again: false, reason: 'clean' });
    expect(listed).toBe(0);
  });
});
