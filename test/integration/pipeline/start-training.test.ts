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
} from '../../../lib/pipeline/training-lock.ts';
import { createAwsClients } from '../../../lib/storage/clients.ts';
import { trainingLockKey } from '../../../lib/storage/keys.ts';
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

/**
 * A Step Functions stand-in: records StartExecution (by name, as AWS: the same name and input
 * while running is the same execution, otherwise ExecutionAlreadyExists), answers
 * DescribeExecution from `status`.
 */
function fakeSfn() {
  const started: { name: string; input: Record<string, unknown> }[] = [];
  const inputs = new Map<string, string>();
  const status = new Map<string, string>();
  let failStart: Error | undefined;
  let loseAnswers = 0;
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
      const input = cmd.input.input ?? '{}';
      const arn = `${ARN.replace(':stateMachine:', ':execution:')}:${name}`;
      if (inputs.has(name)) {
        if (status.get(name) !== 'RUNNING' || inputs.get(name) !== input)
          throw Object.assign(new Error('Execution Already Exists'), { name: 'ExecutionAlreadyExists' });
      } else {
        started.push({ name, input: JSON.parse(input) });
        inputs.set(name, input);
        status.set(name, 'RUNNING');
      }
      if (loseAnswers > 0) {
        loseAnswers -= 1;
        throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      }
      return { executionArn: arn };
    },
  };
  return {
    client,
    started,
    status,
    failNextStarts(err: Error | undefined) {
      failStart = err;
    },
    /** The next `n` starts take effect, but their answers are lost (the caller sees an error). */
    loseAnswers(n: number) {
      loseAnswers = n;
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
      log: silentLog,
    };
    for (const d of ['pets', 'birds', 'race', 'stale', 'gone', 'young', 'fails', 'del', 'limit'])
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

  it('keeps the lock of a failed start and starts that same execution, by name, on the retry', async () => {
    sfn.failNextStarts(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));
    const failed = await startTrainings(msgs('young', 2), deps);
    const held = await readTrainingLock(clients.s3, BUCKET, 'young');
    sfn.failNextStarts(undefined);

    const retried = await startTrainings(msgs('young', 2), deps);

    expect(failed.failedMessageIds).toHaveLength(2);
    expect(held?.lock).toMatchObject({ state: 'running', generation: 1 });
    expect(retried.datasets[0]).toMatchObject({ status: 'started', executionName: held?.lock.executionName });
    expect(sfn.started.map((s) => s.name)).toEqual([held?.lock.executionName]);
    expect(sfn.started[0]?.input).toEqual({
      dataset: 'young',
      trigger: 'auto',
      requestedAt: held?.lock.acquiredAt,
    });
  });

  it('starts no second execution when AWS accepted a start whose answer was lost', async () => {
    sfn.loseAnswers(1);
    const lost = await startTrainings(msgs('fails', 1), deps);

    const retried = await startTrainings(msgs('fails', 1), deps);
    const later = await startTrainings(msgs('fails', 1), deps);

    expect(lost.failedMessageIds).toHaveLength(1);
    expect(retried.datasets[0]?.status).toBe('marked');
    expect(later.datasets[0]?.status).toBe('marked');
    expect(sfn.started).toHaveLength(1);
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

    const again = await finishTraining({ ...base, generation: checked }, deps);
    const stranger = await finishTraining(
      { ...base, executionName: 'gone-other', generation: checked + 1 },
      deps,
    );
    const done = await finishTraining({ ...base, generation: checked + 1, retrains: 1 }, deps);

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

  it('hands a dirty lock to a fresh execution at the retrain limit instead of setting it idle', async () => {
    await startTrainings(msgs('limit', 1), deps);
    const first = sfn.started[0]?.name ?? '';
    const checked = (await readTrainingLock(clients.s3, BUCKET, 'limit'))?.lock.generation ?? 0;
    await startTrainings(msgs('limit', 1), deps); // a late feature, after the last check

    const r = await finishTraining(
      {
        dataset: 'limit',
        executionName: first,
        generation: checked,
        outcome: 'trained',
        retrains: 2,
        maxRetrains: 2,
      },
      deps,
    );
    const lock = (await readTrainingLock(clients.s3, BUCKET, 'limit'))?.lock;

    expect(r).toMatchObject({ again: false, reason: 'limit', next: sfn.started[1]?.name });
    expect(sfn.started.map((s) => s.name)).toEqual([first, r.next]);
    expect(lock).toMatchObject({
      state: 'running',
      executionName: r.next,
      generation: checked + 1,
      trainedGeneration: checked,
    });
    // The late feature's message finds the fresh execution running: a mark, not a third start.
    expect((await startTrainings(msgs('limit', 1), deps)).datasets[0]?.status).toBe('marked');
  });
});
