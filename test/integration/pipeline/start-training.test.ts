import { DescribeExecutionCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalEmulator, startLocalEmulator } from '../../../lib/local/emulator.ts';
import type { QueueMessage } from '../../../lib/pipeline/ingest.ts';
import { startTrainings } from '../../../lib/pipeline/start-training.ts';
import {
  finishTraining,
  readTrainingLock,
  type TrainingLockDeps,
  type TrainingSfnClient,
  trainingLockKey,
} from '../../../lib/pipeline/training-lock.ts';
import { createAwsClients } from '../../../lib/storage/clients.ts';
import { deleteObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { loadEvent } from './support.ts';

const ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:train-test';
const BUCKET = 'tlearn-lock-test';

function readyBody(dataset: string, n: number, type = 'feature.ready'): string {
  const event = loadEvent<SQSEvent>('feature-ready-in-sqs.json');
  const msg = JSON.parse(event.Records[0]?.body ?? '{}');
  const base = {
    ...msg,
    dataset,
    imageKey: `datasets/${dataset}/cat/${n}.png`,
    featureKey: `features/${dataset}/cat/${n}.png.npy`,
  };
  if (type !== 'feature.removed') return JSON.stringify({ ...base, type });
  const { sourceEtag: _e, spec: _s, ...removed } = base;
  return JSON.stringify({ ...removed, type });
}

/** A Step Functions stand-in: records StartExecution, answers DescribeExecution from `status`. */
function fakeSfn() {
  const started: { name: string; input: Record<string, unknown> }[] = [];
  const status = new Map<string, string>();
  let failStart: Error | undefined;
  const client: TrainingSfnClient = {
    async send(cmd) {
      if (cmd instanceof DescribeExecutionCommand) {
        const name = String(cmd.input.executionArn).split(':').pop() ?? '';
        const s = status.get(name);
        if (!s) throw Object.assign(new Error('no such execution'), { name: 'ExecutionDoesNotExist' });
        return { status: s as 'RUNNING' };
      }
      if (!(cmd instanceof StartExecutionCommand)) throw new Error('unexpected command');
      if (failStart) throw failStart;
      const name = cmd.input.name ?? '';
      started.push({ name, input: JSON.parse(cmd.input.input ?? '{}') });
      status.set(name, 'RUNNING');
      return { executionArn: `${ARN.replace(':stateMachine:', ':execution:')}:${name}` };
    },
  };
  return {
    client,
    started,
    status,
    failNextStarts(err: Error | undefined) {
      failStart = err;
    },
  };
}

describe('startTrainings through the single-flight lock (local S3 emulator with conditional writes)', () => {
  let emu: LocalEmulator;
  let clients: ReturnType<typeof createAwsClients>;
  let sfn: ReturnType<typeof fakeSfn>;
  let deps: TrainingLockDeps;
  const msgs = (dataset: string, n: number, type = 'feature.ready'): QueueMessage[] =>
    Array.from({ length: n }, (_, i) => ({
      id: `${dataset}-${type}-${i}`,
      body: readyBody(dataset, i, type),
      receiveCount: 1,
    }));

  beforeAll(async () => {
    emu = await startLocalEmulator({ port: 0, region: 'us-east-1', buckets: [BUCKET], log: silentLog });
    clients = createAwsClients({
      bucket: BUCKET,
      region: 'us-east-1',
      endpoint: emu.endpoint,
      awsTimeoutMs: 5000,
    });
  });
  afterAll(async () => {
    clients.s3.destroy();
    clients.sqs.destroy();
    clients.sfn.destroy();
    await emu.stop();
  });
  beforeEach(async () => {
    sfn = fakeSfn();
    deps = {
      s3: clients.s3,
      bucket: BUCKET,
      sfn: sfn.client,
      stateMachineArn: ARN,
      graceSeconds: 60,
      log: silentLog,
    };
    for (const d of ['pets', 'birds', 'race', 'stale', 'gone', 'young', 'fails', 'del'])
      await deleteObject(clients.s3, BUCKET, trainingLockKey(d));
  });

  it('starts one execution per dataset with an auto trigger, and only marks it on the next batches', async () => {
    const first = await startTrainings([...msgs('pets', 2), ...msgs('birds', 1)], deps);

    expect(first.failedMessageIds).toEqual([]);
    expect(first.datasets.map((d) => [d.dataset, d.status]).sort()).toEqual([
      ['birds', 'started'],
      ['pets', 'started'],
    ]);
    expect(sfn.started).toHaveLength(2);
    const pets = sfn.started.find((s) => s.input.dataset === 'pets');
    expect(pets?.name).toMatch(/^pets-[a-z0-9]{11}$/);
    expect(pets?.input).toMatchObject({ dataset: 'pets', trigger: 'auto' });

    const before = await readTrainingLock(clients.s3, BUCKET, 'pets');
    const second = await startTrainings(msgs('pets', 3), deps);
    const after = await readTrainingLock(clients.s3, BUCKET, 'pets');

    expect(second.datasets).toMatchObject([{ dataset: 'pets', status: 'marked', executionName: pets?.name }]);
    expect(sfn.started).toHaveLength(2);
    expect(after?.lock.generation).toBe((before?.lock.generation ?? 0) + 1);
  });

  it('starts exactly one execution when many batches of one dataset race', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, () => startTrainings(msgs('race', 5), deps)),
    );

    expect(results.flatMap((r) => r.failedMessageIds)).toEqual([]);
    expect(sfn.started.filter((s) => s.input.dataset === 'race')).toHaveLength(1);
    expect(results.flatMap((r) => r.datasets).filter((d) => d.status === 'started')).toHaveLength(1);
    expect((await readTrainingLock(clients.s3, BUCKET, 'race'))?.lock.generation).toBe(12);
  });

  it('takes over a stale lock whose execution is no longer running', async () => {
    await startTrainings(msgs('stale', 1), deps);
    const crashed = sfn.started[0]?.name ?? '';
    sfn.status.set(crashed, 'ABORTED');

    const r = await startTrainings(msgs('stale', 1), deps);

    expect(r.datasets[0]?.status).toBe('started');
    expect(sfn.started).toHaveLength(2);
    expect((await readTrainingLock(clients.s3, BUCKET, 'stale'))?.lock.executionName).toBe(
      sfn.started[1]?.name,
    );
  });

  it('waits out the grace period of a lock whose execution never started, then takes it over', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const clocked = { ...deps, now: () => now };
    sfn.failNextStarts(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));
    const failed = await startTrainings(msgs('young', 2), clocked);
    expect(failed.failedMessageIds).toHaveLength(2);
    // The failed start gave the lock back: the retry starts at once.
    sfn.failNextStarts(undefined);
    expect((await startTrainings(msgs('young', 1), clocked)).datasets[0]?.status).toBe('started');

    // A lock written by a writer that died before StartExecution: marked within the grace, taken after.
    const held = await readTrainingLock(clients.s3, BUCKET, 'young');
    sfn.status.delete(held?.lock.executionName ?? '');
    now = new Date(now.getTime() + 30_000);
    expect((await startTrainings(msgs('young', 1), clocked)).datasets[0]?.status).toBe('marked');
    now = new Date(now.getTime() + 61_000);
    expect((await startTrainings(msgs('young', 1), clocked)).datasets[0]?.status).toBe('started');
  });

  it('triggers a delete training for a batch of removals only, and drops messages that do not parse', async () => {
    const r = await startTrainings(
      [
        ...msgs('del', 2, 'feature.removed'),
        { id: 'bad', body: '{"type":"feature.ready"}', receiveCount: 1 },
      ],
      deps,
    );

    expect(r.invalid.map((i) => i.id)).toEqual(['bad']);
    expect(r.datasets).toMatchObject([{ dataset: 'del', trigger: 'delete', status: 'started' }]);
    expect(sfn.started[0]?.input.trigger).toBe('delete');
  });

  it('finishing trains again when the generation moved since the readiness check, else releases the lock', async () => {
    await startTrainings(msgs('gone', 1), deps);
    const name = sfn.started[0]?.name ?? '';
    const checked = (await readTrainingLock(clients.s3, BUCKET, 'gone'))?.lock.generation ?? 0;
    await startTrainings(msgs('gone', 1), deps); // a late feature, after the check
    const base = {
      dataset: 'gone',
      executionName: name,
      outcome: 'trained' as const,
      retrains: 0,
      maxRetrains: 3,
    };

    const again = await finishTraining(
      { ...base, generation: checked },
      { s3: clients.s3, bucket: BUCKET, log: silentLog },
    );
    const stranger = await finishTraining(
      { ...base, executionName: 'gone-other', generation: checked + 1 },
      { s3: clients.s3, bucket: BUCKET, log: silentLog },
    );
    const done = await finishTraining(
      { ...base, generation: checked + 1, retrains: 1 },
      { s3: clients.s3, bucket: BUCKET, log: silentLog },
    );

    expect(again).toMatchObject({ again: true, reason: 'dirty' });
    expect(stranger).toMatchObject({ again: false, reason: 'not-holder' });
    expect(done).toMatchObject({ again: false, reason: 'clean' });
    expect((await readTrainingLock(clients.s3, BUCKET, 'gone'))?.lock).toMatchObject({
      state: 'idle',
      trainedGeneration: checked + 1,
    });
    // Idle again: the next message starts a new execution.
    expect((await startTrainings(msgs('gone', 1), deps)).datasets[0]?.status).toBe('started');
  });
});
