import { type RunOptions, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  RETRYABLE_LAMBDA_ERRORS,
  TRAINING_STATES as S,
} from '../../infra/constructs/training-state-machine.ts';
import {
  fakeFunctionArn,
  synthesizeTrainingDefinition,
  type TrainingDefinition,
} from '../../infra/definition.ts';

type Json = Parameters<StateMachine['run']>[0];
type Handler = (input: Json) => Json | Promise<Json>;

interface RunResult {
  status: 'succeeded' | 'failed';
  output: Record<string, unknown> | undefined;
  error: string | undefined;
  cause: unknown;
  /** State names in the order they were entered. */
  entered: string[];
  /** State names that were retried. */
  retried: string[];
}

const INPUT = { dataset: 'pets', trigger: 'manual', requestedAt: '2026-11-28T10:00:00Z' };
const MAX_ROUNDS = 2;

/** A Lambda-style error: Step Functions matches Retry/Catch on the error's name. */
function lambdaError(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}

let def: TrainingDefinition;

beforeAll(async () => {
  def = await synthesizeTrainingDefinition({ settleSeconds: 0, pollSeconds: 1, maxRounds: MAX_ROUNDS });
});

async function execute(handlers: Record<string, Handler>, input: Json = INPUT): Promise<RunResult> {
  const machine = new StateMachine(def.definition as unknown as StateMachineDefinition);
  const options: RunOptions = {
    overrides: {
      taskResourceLocalHandlers: handlers,
      waitTimeOverrides: { [S.settle]: 0, [S.waitForFeatures]: 0 },
      retryIntervalOverrides: { [S.checkReadiness]: 0, [S.trainHead]: 0, [S.promote]: 0 },
    },
  };
  const execution = machine.run(input, options);
  const settled = execution.result.then(
    (output) => ({ ok: true as const, output }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  const result: RunResult = {
    status: 'failed',
    output: undefined,
    error: undefined,
    cause: undefined,
    entered: [],
    retried: [],
  };
  for await (const event of execution.eventLogs) {
    if (event.type === 'StateEntered') result.entered.push(event.state.name);
    if (event.type === 'StateRetried') result.retried.push(event.state.name);
    if (event.type === 'ExecutionFailed') {
      result.error = event.Error;
      result.cause = event.Cause;
    }
  }
  const outcome = await settled;
  if (outcome.ok) {
    result.status = 'succeeded';
    result.output = outcome.output as Record<string, unknown>;
  }
  return result;
}

const readiness = (pending: number) => ({
  total: 5,
  ready: 5 - pending,
  failed: 0,
  pending,
  labels: { cat: { total: 3 }, dog: { total: 2 } },
});
const training = { version: '20261128T100000Z-abc123', dataset: 'pets', accuracy: 0.9 };
const promotion = { promoted: true, version: training.version, previous: null };

describe('the synthesized training definition', () => {
  it('is valid ASL for the local interpreter, including ARN and path checks', () => {
    // prepare / act
    const machine = new StateMachine(def.definition as unknown as StateMachineDefinition, {
      validationOptions: { checkArn: true, checkPaths: true },
    });

    // assess
    expect(machine).toBeInstanceOf(StateMachine);
    expect(def.definition.StartAt).toBe(S.start);
  });

  it('invokes each task function by its ARN with the documented payload', () => {
    const states = def.definition.States as Record<string, Record<string, unknown>>;

    expect(states[S.checkReadiness]).toMatchObject({
      Type: 'Task',
      Resource: fakeFunctionArn('check-readiness'),
      Parameters: { 'dataset.$': '$.dataset' },
      ResultPath: '$.readiness',
    });
    expect(states[S.trainHead]).toMatchObject({
      Resource: fakeFunctionArn('train-head'),
      Parameters: { 'dataset.$': '$.dataset', 'trigger.$': '$.trigger', 'requestedAt.$': '$.requestedAt' },
      ResultPath: '$.training',
    });
    expect(states[S.promote]).toMatchObject({
      Resource: fakeFunctionArn('promote-model'),
      Parameters: { 'dataset.$': '$.dataset', 'version.$': '$.training.version' },
      ResultPath: '$.promotion',
    });
    expect(def.taskFunctions).toEqual({
      [fakeFunctionArn('check-readiness')]: 'check-readiness',
      [fakeFunctionArn('train-head')]: 'train-head',
      [fakeFunctionArn('promote-model')]: 'promote-model',
    });
    expect(def.taskStates).toEqual({
      [S.checkReadiness]: 'check-readiness',
      [S.trainHead]: 'train-head',
      [S.promote]: 'promote-model',
    });
  });

  it('retries Lambda service errors with backoff and catches everything into a Fail state', () => {
    const states = def.definition.States as Record<string, Record<string, unknown>>;
    for (const [task, fail] of [
      [S.checkReadiness, S.checkReadinessFailed],
      [S.trainHead, S.trainHeadFailed],
      [S.promote, S.promoteFailed],
    ] as const) {
      expect(states[task]?.Retry).toEqual([
        expect.objectContaining({
          ErrorEquals: expect.arrayContaining([...RETRYABLE_LAMBDA_ERRORS]),
          IntervalSeconds: 2,
          BackoffRate: 2,
          MaxAttempts: 6,
        }),
      ]);
      expect(states[task]?.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: fail },
      ]);
      expect(states[fail]).toMatchObject({
        Type: 'Fail',
        ErrorPath: '$.error.Error',
        CausePath: '$.error.Cause',
      });
    }
  });

  it('takes the wait times and the round limit from the options', () => {
    const states = def.definition.States as Record<string, Record<string, unknown>>;

    expect(states[S.settle]).toMatchObject({ Type: 'Wait', Seconds: 0 });
    expect(states[S.waitForFeatures]).toMatchObject({ Type: 'Wait', Seconds: 1 });
    expect(JSON.stringify(states[S.featuresReady])).toContain(`"NumericLessThan":${MAX_ROUNDS}`);
  });
});

describe('running the definition locally', () => {
  it('trains and promotes when all features are ready', async () => {
    // prepare
    const calls = { check: [] as Json[], train: [] as Json[], promote: [] as Json[] };
    const recording =
      (into: Json[], result: Json): Handler =>
      (input) => {
        into.push(input);
        return result;
      };

    // act
    const run = await execute({
      [S.checkReadiness]: recording(calls.check, readiness(0)),
      [S.trainHead]: recording(calls.train, training),
      [S.promote]: recording(calls.promote, promotion),
    });

    // assess
    expect(run.status).toBe('succeeded');
    expect(run.entered).toEqual([
      S.start,
      S.settle,
      S.checkReadiness,
      S.featuresReady,
      S.trainHead,
      S.promote,
      S.done,
    ]);
    expect(calls.check).toEqual([{ dataset: 'pets' }]);
    expect(calls.train).toEqual([INPUT]);
    expect(calls.promote).toEqual([{ dataset: 'pets', version: training.version }]);
    expect(run.output).toMatchObject({
      ...INPUT,
      readinessRound: 0,
      readiness: readiness(0),
      training,
      promotion,
    });
  });

  it('waits and checks again while features are pending, then trains', async () => {
    // prepare
    const pendingByCheck = [2, 0];
    let checks = 0;

    // act
    const run = await execute({
      [S.checkReadiness]: () => readiness(pendingByCheck[checks++] ?? 0),
      [S.trainHead]: () => training,
      [S.promote]: () => promotion,
    });

    // assess
    expect(run.status).toBe('succeeded');
    expect(checks).toBe(2);
    expect(run.entered).toEqual([
      S.start,
      S.settle,
      S.checkReadiness,
      S.featuresReady,
      S.waitForFeatures,
      S.nextRound,
      S.checkReadiness,
      S.featuresReady,
      S.trainHead,
      S.promote,
      S.done,
    ]);
    expect(run.output).toMatchObject({ readinessRound: 1, readiness: readiness(0) });
  });

  it('fails with FeaturesNotReady and a readable cause when features stay pending past maxRounds', async () => {
    // prepare
    let checks = 0;
    let trained = false;

    // act
    const run = await execute({
      [S.checkReadiness]: () => {
        checks++;
        return readiness(3);
      },
      [S.trainHead]: () => {
        trained = true;
        return training;
      },
      [S.promote]: () => promotion,
    });

    // assess
    expect(run.status).toBe('failed');
    expect(run.error).toBe('FeaturesNotReady');
    expect(run.cause).toBe(
      'Features of dataset pets are not ready: 3 of 5 images are still pending after 2 polling rounds (1 s apart), so no training was started. Check the ingest dead-letter queue for stuck images, then start a training again (POST /datasets/pets/trainings).',
    );
    expect(checks).toBe(MAX_ROUNDS + 1);
    expect(trained).toBe(false);
    expect(run.entered.slice(-2)).toEqual([S.describeNotReady, S.featuresNotReady]);
  });

  it('retries a task that fails once with a throttling error, then succeeds', async () => {
    // prepare
    let attempts = 0;

    // act
    const run = await execute({
      [S.checkReadiness]: () => readiness(0),
      [S.trainHead]: () => {
        attempts++;
        if (attempts === 1) throw lambdaError('Lambda.TooManyRequestsException', 'Rate exceeded');
        return training;
      },
      [S.promote]: () => promotion,
    });

    // assess
    expect(run.status).toBe('succeeded');
    expect(attempts).toBe(2);
    expect(run.retried).toEqual([S.trainHead]);
    expect(run.output).toMatchObject({ training, promotion });
  });

  it('ends in TrainHeadFailed with the function error and message when training throws', async () => {
    // prepare
    const message = "dataset 'pets' has only 1 label (cat); add images of at least one more label";
    let attempts = 0;
    let promoted = false;

    // act
    const run = await execute({
      [S.checkReadiness]: () => readiness(0),
      [S.trainHead]: () => {
        attempts++;
        throw lambdaError('InsufficientDataError', message);
      },
      [S.promote]: () => {
        promoted = true;
        return promotion;
      },
    });

    // assess
    expect(run.status).toBe('failed');
    expect(run.error).toBe('InsufficientDataError');
    expect(run.cause).toBe(message);
    expect(attempts).toBe(1);
    expect(promoted).toBe(false);
    expect(run.entered.slice(-2)).toEqual([S.trainHead, S.trainHeadFailed]);
  });

  it('ends in PromoteFailed when a throttled promotion uses up its retries', async () => {
    // prepare
    let attempts = 0;

    // act
    const run = await execute({
      [S.checkReadiness]: () => readiness(0),
      [S.trainHead]: () => training,
      [S.promote]: () => {
        attempts++;
        throw lambdaError('Lambda.TooManyRequestsException', 'Rate exceeded');
      },
    });

    // assess
    expect(run.status).toBe('failed');
    expect(run.error).toBe('Lambda.TooManyRequestsException');
    expect(attempts).toBe(1 + 6);
    expect(run.entered.at(-1)).toBe(S.promoteFailed);
  });
});
