import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StateMachineDoesNotExist,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LambdaHandler } from '../../../lib/local/lambda-context.ts';
import { createSfnRunner } from '../../../lib/local/sfn-runner.ts';
import { type SfnServer, startSfnServer } from '../../../lib/local/sfn-server.ts';
import { silentLog } from '../../../lib/util/log.ts';

const CHECK_ARN = 'arn:aws:lambda:us-east-1:000000000000:function:check';
const TRAIN_ARN = 'arn:aws:lambda:us-east-1:000000000000:function:train';

// A tiny stand-in for the synthesized training machine: a pending loop, a task, a Fail path.
const definition = {
  StartAt: 'CheckReadiness',
  States: {
    CheckReadiness: { Type: 'Task', Resource: CHECK_ARN, ResultPath: '$.readiness', Next: 'Ready?' },
    'Ready?': {
      Type: 'Choice',
      Choices: [{ Variable: '$.readiness.pending', NumericGreaterThan: 0, Next: 'WaitForFeatures' }],
      Default: 'TrainHead',
    },
    WaitForFeatures: { Type: 'Wait', Seconds: 30, Next: 'CheckReadiness' },
    TrainHead: {
      Type: 'Task',
      Resource: TRAIN_ARN,
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'TrainingFailed' }],
      End: true,
    },
    TrainingFailed: { Type: 'Fail', Error: 'TrainingFailed', Cause: 'the trainer failed' },
  },
};

class InsufficientDataError extends Error {
  override name = 'InsufficientDataError';
}

describe('the local Step Functions server, through the real SDK client', () => {
  let server: SfnServer;
  let sfn: SFNClient;
  let stateMachineArn: string;
  let dataDir: string;
  const pendingRounds = new Map<string, number>();
  const contexts: string[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tlearn-sfn-'));
    const check: LambdaHandler = async (input, context) => {
      contexts.push(context.functionName);
      const dataset = (input as { dataset: string }).dataset;
      const left = pendingRounds.get(dataset) ?? 0;
      pendingRounds.set(dataset, Math.max(0, left - 1));
      return { pending: left };
    };
    const train: LambdaHandler = async (input) => {
      const { dataset } = input as { dataset: string };
      if (dataset === 'broken') throw new InsufficientDataError('need 2 labels');
      return { dataset, version: 'v1' };
    };
    const runner = await createSfnRunner({
      region: 'us-east-1',
      stateMachines: [
        {
          name: 'train-test',
          definition,
          taskHandlers: { [CHECK_ARN]: check, [TRAIN_ARN]: train },
          waitTimeOverrides: { WaitForFeatures: 10 },
        },
      ],
      dataDir,
      log: silentLog,
    });
    stateMachineArn = runner.stateMachineArns['train-test'] ?? '';
    server = await startSfnServer({ port: 0, runner, log: silentLog });
    sfn = new SFNClient({
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    sfn.destroy();
    await server.stop(1000);
    await rm(dataDir, { recursive: true, force: true });
  });

  const waitClosed = async (executionArn: string) => {
    for (let i = 0; i < 200; i++) {
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
      if (d.status !== 'RUNNING') return d;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('execution did not finish');
  };

  it('runs an execution through the pending loop to success and describes it', async () => {
    pendingRounds.set('pets', 2);
    const input = JSON.stringify({ dataset: 'pets' });

    const started = await sfn.send(new StartExecutionCommand({ stateMachineArn, name: 'pets-1', input }));
    const done = await waitClosed(started.executionArn ?? '');

    expect(started.executionArn).toBe('arn:aws:states:us-east-1:000000000000:execution:train-test:pets-1');
    expect(started.startDate).toBeInstanceOf(Date);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output ?? '')).toEqual({ dataset: 'pets', version: 'v1' });
    expect(done.stopDate?.getTime()).toBeGreaterThanOrEqual(done.startDate?.getTime() ?? Infinity);
    expect(contexts).toContain('check');
  });

  it('records the path taken in the history: three readiness checks, then training', async () => {
    const executionArn = 'arn:aws:states:us-east-1:000000000000:execution:train-test:pets-1';

    const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn }));
    const entered = (history.events ?? [])
      .filter((e) => e.type?.endsWith('StateEntered'))
      .map((e) => e.stateEnteredEventDetails?.name);
    const types = (history.events ?? []).map((e) => e.type);

    expect(entered).toEqual([
      'CheckReadiness',
      'Ready?',
      'WaitForFeatures',
      'CheckReadiness',
      'Ready?',
      'WaitForFeatures',
      'CheckReadiness',
      'Ready?',
      'TrainHead',
    ]);
    expect(types[0]).toBe('ExecutionStarted');
    expect(types.at(-1)).toBe('ExecutionSucceeded');
    // Lambda events sit between their state's Entered and Exited events.
    const train = types.lastIndexOf('TaskStateEntered');
    expect(types.slice(train, train + 5)).toEqual([
      'TaskStateEntered',
      'LambdaFunctionScheduled',
      'LambdaFunctionStarted',
      'LambdaFunctionSucceeded',
      'TaskStateExited',
    ]);
    expect(history.events?.[0]?.timestamp).toBeInstanceOf(Date);
  });

  it('refuses a second execution with a used name as ExecutionAlreadyExists', async () => {
    const input = JSON.stringify({ dataset: 'pets', at: 'later' });

    const attempt = sfn.send(new StartExecutionCommand({ stateMachineArn, name: 'pets-1', input }));

    await expect(attempt).rejects.toBeInstanceOf(ExecutionAlreadyExists);
    await expect(attempt).rejects.toMatchObject({ $metadata: { httpStatusCode: 400 } });
  });

  it('treats a repeated start with the same name and input as the same running execution', async () => {
    pendingRounds.set('slow', 50);
    const input = JSON.stringify({ dataset: 'slow' });

    const first = await sfn.send(new StartExecutionCommand({ stateMachineArn, name: 'slow-1', input }));
    const second = await sfn.send(new StartExecutionCommand({ stateMachineArn, name: 'slow-1', input }));

    expect(second.executionArn).toBe(first.executionArn);
    pendingRounds.set('slow', 0);
    expect((await waitClosed(first.executionArn ?? '')).status).toBe('SUCCEEDED');
  });

  it('reports a failing task as a FAILED execution with a readable error and cause', async () => {
    const started = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn,
        name: 'broken-1',
        input: JSON.stringify({ dataset: 'broken' }),
      }),
    );

    const done = await waitClosed(started.executionArn ?? '');
    const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn: started.executionArn }));
    const lambdaFailed = history.events?.find((e) => e.type === 'LambdaFunctionFailed');

    expect(done.status).toBe('FAILED');
    expect(done.error).toBe('TrainingFailed');
    expect(done.cause).toBe('the trainer failed');
    expect(lambdaFailed?.lambdaFunctionFailedEventDetails?.error).toBe('InsufficientDataError');
    expect(JSON.parse(lambdaFailed?.lambdaFunctionFailedEventDetails?.cause ?? '{}').errorMessage).toBe(
      'need 2 labels',
    );
  });

  it('lists executions newest first and filters by status', async () => {
    const all = await sfn.send(new ListExecutionsCommand({ stateMachineArn }));
    const failed = await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'FAILED' }));

    expect(all.executions?.map((e) => e.name)).toEqual(['broken-1', 'slow-1', 'pets-1']);
    expect(failed.executions?.map((e) => e.name)).toEqual(['broken-1']);
  });

  it('answers an unknown state machine with StateMachineDoesNotExist', async () => {
    const attempt = sfn.send(
      new StartExecutionCommand({ stateMachineArn: `${stateMachineArn}-nope`, input: '{}' }),
    );

    await expect(attempt).rejects.toBeInstanceOf(StateMachineDoesNotExist);
  });

  it('records closed executions under the data dir', async () => {
    const files = await readdir(join(dataDir, 'sfn', 'executions'));

    expect(files.sort()).toEqual([
      'train-test.broken-1.json',
      'train-test.pets-1.json',
      'train-test.slow-1.json',
    ]);
  });
});

describe('binding Task states to handlers', () => {
  it('refuses a definition with a Task that has no local handler (it would call real AWS)', async () => {
    const attempt = createSfnRunner({
      region: 'us-east-1',
      stateMachines: [{ name: 'm', definition, taskHandlers: { [CHECK_ARN]: async () => ({}) } }],
      log: silentLog,
    });

    await expect(attempt).rejects.toThrow(/no local handler for Task state\(s\) TrainHead/);
  });
});

describe('stopping and resuming executions', () => {
  const waitDefinition = {
    StartAt: 'Settle',
    States: {
      Settle: { Type: 'Wait', Seconds: 3600, Next: 'CheckReadiness' },
      CheckReadiness: { Type: 'Task', Resource: CHECK_ARN, End: true },
    },
  };

  it('interrupts a waiting execution at once on close, and starts it again on the next start', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tlearn-sfn-resume-'));
    try {
      const spec = (waitMs: number) => ({
        name: 'm',
        definition: waitDefinition,
        taskHandlers: { [CHECK_ARN]: async (input: unknown) => ({ seen: input }) },
        waitTimeOverrides: { Settle: waitMs },
      });
      const first = await createSfnRunner({
        region: 'us-east-1',
        stateMachines: [spec(3_600_000)],
        dataDir,
        log: silentLog,
      });
      const arn = first.stateMachineArns.m ?? '';
      const { executionArn } = first.startExecution({
        stateMachineArn: arn,
        name: 'pets-1',
        input: '{"dataset":"pets"}',
      });
      await new Promise((r) => setTimeout(r, 50));

      const started = Date.now();
      await first.close(30_000);
      const closedAfterMs = Date.now() - started;
      const interrupted = first.getExecution(executionArn);

      const second = await createSfnRunner({
        region: 'us-east-1',
        stateMachines: [spec(0)],
        dataDir,
        log: silentLog,
      });
      const resumed = second.resumeInterrupted();
      await second.idle();
      const again = second.resumeInterrupted();
      const rerun = second.getExecution(`arn:aws:states:us-east-1:000000000000:execution:m:${resumed[0]}`);

      expect(closedAfterMs).toBeLessThan(5_000);
      expect(interrupted).toMatchObject({ status: 'ABORTED', error: 'Local.StackStopped' });
      expect(resumed).toHaveLength(1);
      expect(resumed[0]).toMatch(/^pets-1-r/);
      expect(rerun.status).toBe('SUCCEEDED');
      expect(JSON.parse(rerun.output ?? '')).toEqual({ seen: { dataset: 'pets' } });
      expect(again).toEqual([]);
      await second.close(1000);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
