/**
 * The training lock's life cycle against the local emulator (S3 with conditional writes) and the
 * local Step Functions server (lib/local/sfn-runner.ts, sfn-server.ts) over loopback: every way an
 * execution ends hands the lock on (lib/pipeline/execution-ended.ts through the runner's
 * status change events, lib/local/sfn-events.ts), and a start whose answer is lost on the wire
 * (test/hardening/fault-proxy.ts in front of the Step Functions server) never makes a second
 * execution. (The whole local stack: test/e2e/lock-life-cycle.test.ts.)
 */
import { StopExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalEmulator, startLocalEmulator } from '../../../lib/local/emulator.ts';
import { createExecutionEndRule, type ExecutionEndRule } from '../../../lib/local/sfn-events.ts';
import { createSfnRunner, type ExecutionRecord, type SfnRunner } from '../../../lib/local/sfn-runner.ts';
import { type SfnServer, startSfnServer } from '../../../lib/local/sfn-server.ts';
import {
  type ExecutionEndedResult,
  ExecutionStatusChangeEvent,
  finishEndedExecution,
} from '../../../lib/pipeline/execution-ended.ts';
import { startTrainings } from '../../../lib/pipeline/start-training.ts';
import {
  readTrainingLock,
  type TrainingLockDeps,
  writeTrainingLock,
} from '../../../lib/pipeline/training-lock.ts';
import { createAwsClients } from '../../../lib/storage/clients.ts';
import { trainingLockKey } from '../../../lib/storage/keys.ts';
import { deleteObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type FaultProxy, startFaultProxy } from '../../hardening/fault-proxy.ts';
import { loadEvent } from './support.ts';

const BUCKET = 'tlearn-lock-life';
const REGION = 'us-east-1';
const MAX_RESTARTS = 2;

/** A training stand-in: an execution that waits (an hour, or a second with `--short`) and succeeds. */
const definition = (timeoutSeconds?: number) => ({
  StartAt: 'Settle',
  ...(timeoutSeconds ? { TimeoutSeconds: timeoutSeconds } : {}),
  States: { Settle: { Type: 'Wait', Seconds: 3600, End: true } },
});

function featureMessages(dataset: string, n: number) {
  const body = JSON.parse(
    loadEvent<{ Records: { body: string }[] }>('feature-ready-in-sqs.json').Records[0]?.body ?? '{}',
  );
  return Array.from({ length: n }, (_, i) => ({
    id: `${dataset}-${i}-${Math.random()}`,
    body: JSON.stringify({ ...body, dataset, imageKey: `datasets/${dataset}/cat/${i}.png` }),
    receiveCount: 1,
  }));
}

describe('the training lock through every end of an execution (local S3 + Step Functions over loopback)', () => {
  let emu: LocalEmulator;
  let runner: SfnRunner;
  let server: SfnServer;
  let proxy: FaultProxy;
  let rule: ExecutionEndRule;
  let clients: ReturnType<typeof createAwsClients>;
  let deps: TrainingLockDeps;
  let stateMachineArn: string;
  let timingOutArn: string;
  const handled: ExecutionEndedResult[] = [];

  const executions = (dataset: string): ExecutionRecord[] =>
    [stateMachineArn, timingOutArn]
      .flatMap((arn) => runner.listExecutions(arn))
      .filter((e) => e.name.startsWith(`${dataset}-`));
  const stop = (executionArn: string) =>
    clients.sfn.send(new StopExecutionCommand({ executionArn, error: 'Manual', cause: 'stopped by a test' }));
  const lockOf = async (dataset: string) => (await readTrainingLock(clients.s3, BUCKET, dataset))?.lock;

  beforeAll(async () => {
    emu = await startLocalEmulator({ port: 0, region: REGION, buckets: [BUCKET], log: silentLog });
    let deliver: (rec: ExecutionRecord) => void = () => {};
    runner = await createSfnRunner({
      region: REGION,
      stateMachines: [
        { name: 'train-life', definition: definition(), taskHandlers: {} },
        { name: 'train-timeout', definition: definition(1), taskHandlers: {} },
        // The local training machine's worst case: longer than one Node timer (24.8 days).
        {
          name: 'train-long',
          definition: definition(3_000_000),
          taskHandlers: {},
          waitTimeOverrides: { Settle: 50 },
        },
      ],
      onExecutionEnded: (rec) => deliver(rec),
      log: silentLog,
    });
    stateMachineArn = runner.stateMachineArns['train-life'] ?? '';
    timingOutArn = runner.stateMachineArns['train-timeout'] ?? '';
    server = await startSfnServer({ port: 0, runner, log: silentLog });
    proxy = await startFaultProxy(server.endpoint, BUCKET);
    clients = createAwsClients({
      bucket: BUCKET,
      region: REGION,
      endpoint: emu.endpoint,
      sfnEndpoint: proxy.url,
      awsTimeoutMs: 5_000,
    });
    deps = { s3: clients.s3, bucket: BUCKET, sfn: clients.sfn, stateMachineArn, log: silentLog };
    // The stack's EventBridge rule, as the local stack wires it, with the lock's handler behind it.
    rule = createExecutionEndRule({
      stateMachineArn,
      region: REGION,
      retryDelayMs: 10,
      handler: async (event) => {
        const r = await finishEndedExecution(ExecutionStatusChangeEvent.parse(event), {
          ...deps,
          maxRestarts: MAX_RESTARTS,
        });
        handled.push(r);
        return r;
      },
      log: silentLog,
    });
    const timeoutRule = createExecutionEndRule({
      stateMachineArn: timingOutArn,
      region: REGION,
      handler: (event) =>
        finishEndedExecution(ExecutionStatusChangeEvent.parse(event), {
          ...deps,
          stateMachineArn: timingOutArn,
          maxRestarts: MAX_RESTARTS,
        }),
      log: silentLog,
    });
    deliver = (rec) => {
      rule.deliver(rec);
      timeoutRule.deliver(rec);
    };
  });
  afterAll(async () => {
    clients.s3.destroy();
    clients.sfn.destroy();
    await proxy.stop();
    await server.stop(0);
    await emu.stop();
  });
  beforeEach(async () => {
    handled.length = 0;
    for (const d of ['stopped', 'clean', 'looping', 'timeout', 'lost', 'dropped', 'dupes'])
      await deleteObject(clients.s3, BUCKET, trainingLockKey(d));
  });
  afterEach(async () => {
    proxy.clearRules();
    await rule.drain();
  });

  const waitFor = async <T>(what: string, get: () => Promise<T> | T, ok: (v: T) => boolean): Promise<T> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const v = await get();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  it('hands the lock of a stopped execution to a fresh one when images waited, without any new upload', async () => {
    const first = await startTrainings(featureMessages('stopped', 3), deps);
    const x = first.datasets[0]?.executionArn ?? '';

    await stop(x);
    await rule.drain();

    const [y, ...more] = executions('stopped').filter((e) => e.status === 'RUNNING');
    expect(more).toEqual([]);
    expect(executions('stopped').find((e) => e.executionArn === x)?.status).toBe('ABORTED');
    expect(await lockOf('stopped')).toMatchObject({ state: 'running', executionName: y?.name, restarts: 1 });
    expect(JSON.parse(y?.input ?? '{}')).toMatchObject({ dataset: 'stopped', trigger: 'auto' });
  });

  it('releases the lock of a stopped execution when nothing waits for a training', async () => {
    const first = await startTrainings(featureMessages('clean', 1), deps);
    const read = await readTrainingLock(clients.s3, BUCKET, 'clean');
    if (!read) throw new Error('no lock');
    // As if its training had run: the lock's generation is trained.
    await writeTrainingLock(
      clients.s3,
      BUCKET,
      'clean',
      { ...read.lock, trainedGeneration: read.lock.generation },
      read,
    );

    await stop(first.datasets[0]?.executionArn ?? '');
    await rule.drain();

    expect(handled).toEqual([{ dataset: 'clean', action: 'released' }]);
    expect(await lockOf('clean')).toMatchObject({ state: 'idle' });
    expect(executions('clean').filter((e) => e.status === 'RUNNING')).toEqual([]);
  });

  it('starts one fresh execution however often and however concurrently the end event is delivered', async () => {
    const first = await startTrainings(featureMessages('dupes', 2), deps);
    const x = runner.getExecution(first.datasets[0]?.executionArn ?? '');
    await stop(x.executionArn);
    await rule.drain();
    handled.length = 0;
    const again = () =>
      finishEndedExecution(ExecutionStatusChangeEvent.parse(loadEventOf(x)), {
        ...deps,
        maxRestarts: MAX_RESTARTS,
      });

    const concurrent = await Promise.all([again(), again(), again()]);
    const later = await again();

    expect([...concurrent, later].map((r) => r.action)).toEqual(Array(4).fill('not-holder'));
    expect(executions('dupes').filter((e) => e.status === 'RUNNING')).toHaveLength(1);
    expect(executions('dupes')).toHaveLength(2);
  });

  it('restarts an execution that keeps ending abnormally at most maxRestarts times, then leaves the lock idle', async () => {
    await startTrainings(featureMessages('looping', 1), deps);

    for (let i = 0; i <= MAX_RESTARTS; i++) {
      const running = await waitFor(
        'a running execution',
        () => executions('looping').filter((e) => e.status === 'RUNNING'),
        (r) => r.length === 1,
      );
      await stop(running[0]?.executionArn ?? '');
      await rule.drain();
    }

    expect(handled.map((h) => h.action)).toEqual(['restarted', 'restarted', 'gave-up']);
    expect(executions('looping').map((e) => e.status)).toEqual(Array(MAX_RESTARTS + 1).fill('ABORTED'));
    expect(await lockOf('looping')).toMatchObject({ state: 'idle', restarts: MAX_RESTARTS });
    // The next upload trains them: a new execution, the restart count starts over.
    expect((await startTrainings(featureMessages('looping', 1), deps)).datasets[0]?.status).toBe('started');
    expect(await lockOf('looping')).toMatchObject({ state: 'running', restarts: 0 });
  });

  it('sends the end event of an execution that timed out (TimeoutSeconds enforced locally): a fresh execution takes over', async () => {
    const timeoutDeps = { ...deps, stateMachineArn: timingOutArn };
    const first = await startTrainings(featureMessages('timeout', 1), timeoutDeps);
    const x = first.datasets[0]?.executionName ?? '';

    const lock = await waitFor(
      'the lock to name a fresh execution',
      () => lockOf('timeout'),
      (l) => l?.executionName !== x,
    );

    expect(executions('timeout').find((e) => e.name === x)?.status).toBe('TIMED_OUT');
    expect(lock).toMatchObject({ state: 'running', restarts: 1 });
  });

  it('runs an execution whose timeout is longer than a Node timer holds (34 days) instead of timing it out at once', async () => {
    const arn = runner.stateMachineArns['train-long'] ?? '';
    const { executionArn } = runner.startExecution({ stateMachineArn: arn, name: 'long-1', input: '{}' });

    const ended = await waitFor(
      'the execution to end',
      () => runner.getExecution(executionArn),
      (e) => e.status !== 'RUNNING',
    );

    expect(ended.status).toBe('SUCCEEDED');
  });

  it('makes no second execution when Step Functions accepted a start whose answer was lost', async () => {
    // Every attempt of the SDK reaches the server, and every answer is lost.
    proxy.addRule({ match: (c) => c.sqsAction === 'StartExecution', action: 'lose-response' });
    const lost = await startTrainings(featureMessages('lost', 2), deps);
    proxy.clearRules();

    // SQS redelivers the messages; more arrive.
    const retried = await startTrainings(featureMessages('lost', 2), deps);
    const next = await startTrainings(featureMessages('lost', 1), deps);

    expect(lost.failedMessageIds).toHaveLength(2);
    expect(retried.datasets[0]?.status).toBe('marked');
    expect(next.datasets[0]?.status).toBe('marked');
    expect(executions('lost')).toHaveLength(1);
    expect(executions('lost')[0]?.name).toBe((await lockOf('lost'))?.executionName);
  });

  it('starts the execution a lock names, by that name, when its start never reached Step Functions', async () => {
    proxy.addRule({ match: (c) => c.sqsAction === 'StartExecution', action: 'reset' });
    const dropped = await startTrainings(featureMessages('dropped', 1), deps);
    proxy.clearRules();
    const named = (await lockOf('dropped'))?.executionName;

    const retried = await startTrainings(featureMessages('dropped', 1), deps);

    expect(dropped.failedMessageIds).toHaveLength(1);
    expect(executions('dropped')).toHaveLength(1);
    expect(retried.datasets[0]).toMatchObject({ status: 'started', executionName: named });
    expect(executions('dropped')[0]?.name).toBe(named);
  });
});

/** The status change event of `rec`, as events/execution-ended.json has it. */
function loadEventOf(rec: ExecutionRecord): unknown {
  const event = loadEvent<{ detail: Record<string, unknown> }>('execution-ended.json');
  event.detail = {
    ...event.detail,
    executionArn: rec.executionArn,
    stateMachineArn: rec.stateMachineArn,
    name: rec.name,
    status: rec.status,
    input: rec.input,
  };
  return event;
}
