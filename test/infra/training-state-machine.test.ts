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
const MAX_RETRAINS = 3;

/** A Lambda-style error: Step Functions matches Retry/Catch on the error's name. */
function lambdaError(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}

let def: TrainingDefinition;

beforeAll(async () => {
  def = await synthesizeTrainingDefinition({
    settleSeconds: 0,
    pollSeconds: 1,
    maxRounds: MAX_ROUNDS,
    maxRetrains: MAX_RETRAINS,
  });
});

async function execute(handlers: Record<string, Handler>, input: Json = INPUT): Promise<RunResult> {
  const machine = new StateMachine(def.definition as unknown as StateMachineDefinition);
  // The lock steps: by default nothing arrived after the check, so the lock is released.
  const released: Handler = () => ({ again: false, reason: 'clean', generation: 1 });
  const options: RunOptions = {
    overrides: {
      taskResourceLocalHandlers: {
        [S.finish]: released,
        [S.releaseAfterCheckReadiness]: released,
        [S.releaseAfterTrainHead]: released,
        [S.releaseAfterPromote]: released,
        ...handlers,
      },
      waitTimeOverrides: { [S.settle]: 0, [S.waitForFeatures]: 0 },
      retryIntervalOverrides: { [S.checkReadiness]: 0, [S.trainHead]: 0, [S.promote]: 0, [S.finish]: 0 },
    },
    // Step Functions' context object ($$): Finish names the execution that holds the lock.
    context: { Execution: { Name: 'pets-test-execution' } },
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
  skipped: 0,
  orphaned: 0,
  labels: 2,
  generation: 1,
});
const training = {
  version: '20261128T100000Z-abc123',
  dataset: 'pets',
  accuracy: 0.9,
  fingerprint: '4-test',
};
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
    const finish = {
      'dataset.$': '$.dataset',
      'executionName.$': '$$.Execution.Name',
      'retrains.$': '$.retrainRound',
      maxRetrains: MAX_RETRAINS,
    };
    expect(states[S.finish]).toMatchObject({
      Resource: fakeFunctionArn('finish-training'),
      Parameters: {
        ...finish,
        'generation.$': '$.readiness.generation',
        'fingerprint.$': '$.training.fingerprint',
        outcome: 'trained',
      },
      ResultPath: '$.finish',
    });
    // Only a trained model has a listing to compare with (finishTraining's `unchanged`).
    expect(states[S.releaseAfterTrainHead]?.Parameters).toEqual({
      ...finish,
      'generation.$': '$.readiness.generation',
      outcome: 'failed',
    });
    // A failed readiness check has no generation to compare: its release never loops.
    expect(states[S.releaseAfterCheckReadiness]?.Parameters).toEqual({ ...finish, outcome: 'failed' });
    expect(def.taskFunctions).toEqual({
      [fakeFunctionArn('check-readiness')]: 'check-readiness',
      [fakeFunctionArn('train-head')]: 'train-head',
      [fakeFunctionArn('promote-model')]: 'promote-model',
      [fakeFunctionArn('finish-training')]: 'finish-training',
    });
    expect(def.taskStates).toEqual({
      [S.checkReadiness]: 'check-readiness',
      [S.trainHead]: 'train-head',
      [S.promote]: 'promote-model',
      [S.finish]: 'finish-training',
      [S.releaseAfterCheckReadiness]: 'finish-training',
      [S.releaseAfterTrainHead]: 'finish-training',
      [S.releaseAfterPromote]: 'finish-training',
    });
  });

  it('retries Lambda service errors with backoff and releases the lock on any failure before its Fail state', () => {
    const states = def.definition.States as Record<string, Record<string, unknown>>;
    for (const [task, release, fail] of [
      [S.checkReadiness, S.releaseAfterCheckReadiness, S.checkReadinessFailed],
      [S.trainHead, S.releaseAfterTrainHead, S.trainHeadFailed],
      [S.promote, S.releaseAfterPromote, S.promoteFailed],
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
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: release },
      ]);
      expect(states[release]?.Next).toBe(`${release}Again`);
      // The release's own failure keeps the task's error in $.error for the Fail state.
      expect(states[release]?.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.releaseError', Next: fail },
      ]);
      expect(JSON.stringify(states[`${release}Again`])).toContain(`"Next":"${S.nextTraining}"`);
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
    expect(states[S.nextTraining]).toMatchObject({ Type: 'Pass', Next: S.settle });
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
      S.finish,
      S.trainAgain,
      S.done,
    ]);
    expect(calls.check).toEqual([{ dataset: 'pets' }]);
    expect(calls.train).toEqual([INPUT]);
    expect(calls.promote).toEqual([{ dataset: 'pets', version: training.version }]);
    expect(run.output).toMatchObject({
      ...INPUT,
      readinessRound: 0,
      retrainRound: 0,
      readiness: readiness(0),
      training,
      promotion,
      finish: { again: false },
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
      S.finish,
      S.trainAgain,
      S.done,
    ]);
    expect(run.output).toMatchObject({ readinessRound: 1, readiness: readiness(0) });
  });

  it('trains on what is ready when images stay pending past maxRounds (they are left out, not waited for)', async () => {
    // prepare
    let checks = 0;
    let trained = 0;

    // act
    const run = await execute({
      [S.checkReadiness]: () => {
        checks++;
        return readiness(3);
      },
      [S.trainHead]: () => {
        trained++;
        return training;
      },
      [S.promote]: () => promotion,
    });

    // assess
    expect(run.status).toBe('succeeded');
    expect(checks).toBe(MAX_ROUNDS + 1);
    expect(trained).toBe(1);
    expect(run.output).toMatchObject({ readiness: readiness(3), training });
  });

  it('trains again when Finish reports that the lock generation moved after the readiness check', async () => {
    // prepare
    const finishes: Json[] = [];
    let trained = 0;

    // act
    const run = await execute({
      [S.checkReadiness]: () => readiness(0),
      [S.trainHead]: () => {
        trained++;
        return training;
      },
      [S.promote]: () => promotion,
      [S.finish]: (input) => {
        finishes.push(input);
        return {
          again: finishes.length === 1,
          reason: finishes.length === 1 ? 'dirty' : 'clean',
          generation: 2,
        };
      },
    });

    // assess
    expect(run.status).toBe('succeeded');
    expect(trained).toBe(2);
    expect(run.entered.filter((n) => n === S.nextTraining)).toHaveLength(1);
    expect(finishes).toMatchObject([
      {
        dataset: 'pets',
        outcome: 'trained',
        generation: 1,
        fingerprint: training.fingerprint,
        retrains: 0,
        maxRetrains: MAX_RETRAINS,
      },
      {
        dataset: 'pets',
        outcome: 'trained',
        generation: 1,
        fingerprint: training.fingerprint,
        retrains: 1,
        maxRetrains: MAX_RETRAINS,
      },
    ]);
    expect(finishes[0]).toMatchObject({ executionName: 'pets-test-execution' });
    expect(run.output).toMatchObject({ retrainRound: 1, readinessRound: 0 });
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
    expect(run.entered.slice(-4)).toEqual([
      S.trainHead,
      S.releaseAfterTrainHead,
      `${S.releaseAfterTrainHead}Again`,
      S.trainHeadFailed,
    ]);
  });

  it('after a failed training, goes round again when features arrived since the check', async () => {
    // prepare
    let attempts = 0;
    const releases: Json[] = [];

    // act
    const run = await execute({
      [S.checkReadiness]: () => readiness(0),
      [S.trainHead]: () => {
        attempts++;
        if (attempts === 1) throw lambdaError('InsufficientDataError', 'only one label so far');
        return training;
      },
      [S.promote]: () => promotion,
      [S.releaseAfterTrainHead]: (input) => {
        releases.push(input);
        return { again: true, reason: 'dirty', generation: 2 };
      },
    });

    // assess
    expect(run.status).toBe('succeeded');
    expect(attempts).toBe(2);
    expect(releases).toMatchObject([{ outcome: 'failed', generation: 1, retrains: 0 }]);
    expect(run.output).toMatchObject({ training, retrainRound: 1 });
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
