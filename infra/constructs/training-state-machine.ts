/**
 * The training state machine ("train-{stack}") and its I/O contract with the task functions.
 *
 * ```
 * Start ─▶ Settle ─▶ CheckReadiness ─▶ FeaturesReady? ──pending > 0, round < maxRounds──▶ WaitForFeatures ─▶ NextRound ─┐
 *            ▲            ▲                │                                                                          │
 *            │            └────────────────┼──────────────────────────────────────────────────────────────────────────┘
 *            │                             └─pending = 0, or rounds used up (pending left out)─▶ TrainHead ─▶ Promote ─▶ Finish ─▶ TrainAgain?
 *            └──────────────────────────────── NextTraining ◀── again (lock generation moved since CheckReadiness) ─────────────┤
 *                                                                                                                     else ─▶ Done (Succeed)
 * every task: Retry on Lambda service errors; Catch (States.ALL) ─▶ ReleaseAfter{Task} ─▶ again? NextTraining : {Task}Failed (Fail)
 * ```
 *
 * Single flight: an execution runs only while it holds its dataset's lock (lib/pipeline/training-lock.ts).
 * CheckReadiness returns the lock's generation; Finish (and the ReleaseAfter* steps of the failure
 * paths) compares it with the lock's: moved means features or deletes arrived after the check, so the
 * execution trains again (at most maxRetrains times; then a fresh execution takes the lock over),
 * unless, after a training, the dataset still lists as train-head's listing did (`$.training.fingerprint`:
 * the messages were late news of features the model has); else the lock goes idle. TimeoutSeconds is the worst-case duration ({@link trainingExecutionTimeout});
 * an execution that ends without Finish (stopped, timed out, failed) has its lock released by its
 * status change event (infra/constructs/execution-end-rule.ts, lib/pipeline/execution-ended.ts).
 *
 * JSONPath (not JSONata), standard workflow. The state as it flows (the execution's output at the end):
 *
 * | path | set by | content |
 * |---|---|---|
 * | `$.dataset`, `$.trigger`, `$.requestedAt` | execution input | {@link TrainingInput} |
 * | `$.readinessRound` | Start (0), NextRound (+1), NextTraining (0) | polling rounds used so far |
 * | `$.retrainRound` | Start (0), NextTraining (+1) | follow-up trainings so far |
 * | `$.readiness` | CheckReadiness | check-readiness's result (counts only) |
 * | `$.training` | TrainHead | train-head's result |
 * | `$.promotion` | Promote | promote-model's result |
 * | `$.finish` / `$.release` | Finish / ReleaseAfter* | finish-training's result `{again, reason, generation}` |
 * | `$.error` | a Catch | `{ Error, Cause }` of the failed task (Cause: the Lambda's JSON error string) |
 *
 * Task functions (invoked with `payloadResponseOnly`: the event is exactly the object below, and
 * the function's return value is the result; a thrown error fails the task):
 *
 * - **check-readiness** gets {@link CheckReadinessInput} `{ dataset }`, returns
 *   {@link CheckReadinessResult} `{ total, ready, failed, pending, skipped, orphaned, labels, generation }`
 *   (numbers only, whatever the label count: `labels` is how many).
 * - **train-head** gets {@link TrainHeadInput} `{ dataset, trigger, requestedAt }`, returns
 *   {@link TrainHeadResult} `{ version, dataset, accuracy, fingerprint, ... }`. It throws (with a message a user
 *   can act on) when the data cannot train a model (fewer than 2 labels, ...).
 * - **promote-model** gets {@link PromoteModelInput} `{ dataset, version }` (version = `$.training.version`),
 *   returns {@link PromoteModelResult} `{ promoted, version, previous }`.
 * - **finish-training** gets `{ dataset, executionName, generation?, fingerprint?, outcome, retrains, maxRetrains }`
 *   (FinishTrainingInput of lib/pipeline/training-lock.ts; `fingerprint` is `$.training.fingerprint`,
 *   Finish only), returns `{ again, reason, generation }`.
 *
 * Error names: a task error's `Error` is the thrown error's type (`errorType` of the Lambda
 * response, e.g. `InsufficientDataError`); `Lambda.ServiceException`, `Lambda.AWSLambdaException`,
 * `Lambda.SdkClientException`, `Lambda.TooManyRequestsException` and
 * `Lambda.ClientExecutionTimeoutException` are retried (2 s, backoff 2, full jitter); everything
 * else, and retries used up, releases the lock and goes to the task's Fail state with `Error`/`Cause` of the task.
 *
 * Local runs (aws-local-stepfunctions): task overrides are keyed by state name, see
 * {@link TRAINING_TASK_STATES}; Wait overrides by {@link TRAINING_STATES}.settle / .waitForFeatures.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { TrainingInput } from '../../lib/features/messages.ts';
import type { ReadinessCounts } from '../../lib/pipeline/readiness.ts';
import { PIPELINE_SETTINGS } from '../../lib/pipeline/settings.ts';

export type { TrainingInput };
/** Event of check-readiness. */
export interface CheckReadinessInput {
  dataset: string;
}
/** Result of check-readiness: counts only (lib/pipeline/readiness.ts). */
export type CheckReadinessResult = ReadinessCounts;
/** Event of train-head. */
export type TrainHeadInput = TrainingInput;
/** Result of train-head (more fields allowed; `version` is required by Promote). */
export interface TrainHeadResult {
  version: string;
  dataset: string;
  accuracy: number;
  /** What the model saw of the dataset (lib/pipeline/readiness.ts `scanFingerprint`): Finish compares it. */
  fingerprint: string;
  [more: string]: unknown;
}
/** Event of promote-model. */
export interface PromoteModelInput {
  dataset: string;
  version: string;
}
/** Result of promote-model. */
export interface PromoteModelResult {
  promoted: boolean;
  version: string;
  previous: string | null;
}

/** State names (stable: local runners and dashboards refer to them). */
export const TRAINING_STATES = {
  start: 'Start',
  settle: 'Settle',
  checkReadiness: 'CheckReadiness',
  featuresReady: 'FeaturesReady',
  waitForFeatures: 'WaitForFeatures',
  nextRound: 'NextRound',
  trainHead: 'TrainHead',
  promote: 'Promote',
  finish: 'Finish',
  trainAgain: 'TrainAgain',
  nextTraining: 'NextTraining',
  done: 'Done',
  releaseAfterCheckReadiness: 'ReleaseAfterCheckReadiness',
  releaseAfterTrainHead: 'ReleaseAfterTrainHead',
  releaseAfterPromote: 'ReleaseAfterPromote',
  checkReadinessFailed: 'CheckReadinessFailed',
  trainHeadFailed: 'TrainHeadFailed',
  promoteFailed: 'PromoteFailed',
  finishFailed: 'FinishFailed',
} as const;

/** The task functions, by their folder name under functions/. */
export type TrainingTaskFunction = 'check-readiness' | 'train-head' | 'promote-model' | 'finish-training';

/** Task state name → the function it invokes. */
export const TRAINING_TASK_STATES: Readonly<Record<string, TrainingTaskFunction>> = {
  [TRAINING_STATES.checkReadiness]: 'check-readiness',
  [TRAINING_STATES.trainHead]: 'train-head',
  [TRAINING_STATES.promote]: 'promote-model',
  [TRAINING_STATES.finish]: 'finish-training',
  [TRAINING_STATES.releaseAfterCheckReadiness]: 'finish-training',
  [TRAINING_STATES.releaseAfterTrainHead]: 'finish-training',
  [TRAINING_STATES.releaseAfterPromote]: 'finish-training',
};

/** Lambda errors worth retrying: the invocation did not reach, or was throttled by, Lambda. */
export const RETRYABLE_LAMBDA_ERRORS: readonly string[] = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
];

/** A task function and its timeout (the task state's timeout is derived from it). */
export interface TaskFunction {
  readonly function: lambda.IFunction;
  readonly timeout: Duration;
}

export interface TrainingStateMachineProps {
  readonly checkReadiness: TaskFunction;
  readonly trainHead: TaskFunction;
  readonly promoteModel: TaskFunction;
  /** Releases the dataset's lock or sends the execution round again (Finish, ReleaseAfter*). */
  readonly finishTraining: TaskFunction;
  /** Wait before the first readiness check, so a burst of uploads lands first. 0-86400. @default PIPELINE_SETTINGS.training.settleSeconds */
  readonly settleSeconds?: number;
  /** Wait between readiness checks while features are pending. 1-3600. @default PIPELINE_SETTINGS.training.pollSeconds */
  readonly pollSeconds?: number;
  /**
   * Polling rounds (waits) before training goes ahead on the ready images (the pending ones are left
   * out and listed in the report); the machine checks readiness at most maxRounds + 1 times per
   * training. 0-1000 (each round adds 11 history events, 29 with every retry, of the 25,000
   * allowed: test/infra/history-budget.test.ts).
   * @default PIPELINE_SETTINGS.training.maxRounds
   */
  readonly maxRounds?: number;
  /**
   * Follow-up trainings one execution runs for features that arrived after its readiness check,
   * 0-100; beyond, a fresh execution takes the lock over (its own history), so this bounds one
   * execution's history, not how often a dataset trains.
   * @default PIPELINE_SETTINGS.training.maxRetrains
   */
  readonly maxRetrains?: number;
  /** Attempts per retryable Lambda error (Retry MaxAttempts), 0-10. @default 6 */
  readonly taskRetryAttempts?: number;
  /** @default - generated by CloudFormation */
  readonly stateMachineName?: string;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** Log state inputs/outputs (dataset names, keys, model metrics). @default false */
  readonly includeExecutionData?: boolean;
}

/**
 * The training workflow (docs/ARCHITECTURE.md "Flow (AWS)", "Orchestration"): settle, wait for
 * the dataset's features (bounded), train the head, promote it. Standard type, X-Ray tracing,
 * logging to its own log group, and a Fail state with a readable cause for every way it can end
 * badly.
 */
export class TrainingStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  readonly settleSeconds: number;
  readonly pollSeconds: number;
  readonly maxRounds: number;
  readonly maxRetrains: number;
  /** The execution timeout (TimeoutSeconds), seconds: {@link trainingExecutionTimeout}. */
  readonly timeoutSeconds: number;
  /** Retry MaxAttempts of every task. */
  private readonly taskRetryAttempts: number;

  constructor(scope: Construct, id: string, props: TrainingStateMachineProps) {
    super(scope, id);
    const T = PIPELINE_SETTINGS.training;
    this.settleSeconds = integerIn(id, 'settleSeconds', props.settleSeconds ?? T.settleSeconds, 0, 86_400);
    this.pollSeconds = integerIn(id, 'pollSeconds', props.pollSeconds ?? T.pollSeconds, 1, 3_600);
    this.maxRounds = integerIn(id, 'maxRounds', props.maxRounds ?? T.maxRounds, 0, 1_000);
    this.maxRetrains = integerIn(id, 'maxRetrains', props.maxRetrains ?? T.maxRetrains, 0, 100);
    const attempts = integerIn(id, 'taskRetryAttempts', props.taskRetryAttempts ?? 6, 0, 10);
    this.taskRetryAttempts = attempts;
    const name = props.stateMachineName;
    if (name !== undefined && !/^[A-Za-z0-9_-]{1,80}$/.test(name)) {
      throw new Error(`${id}: stateMachineName must be 1-80 letters, digits, '-' or '_' (got '${name}')`);
    }
    this.timeoutSeconds = trainingExecutionTimeout({
      settleSeconds: this.settleSeconds,
      pollSeconds: this.pollSeconds,
      maxRounds: this.maxRounds,
      maxRetrains: this.maxRetrains,
      taskRetryAttempts: attempts,
      taskTimeoutSeconds: {
        checkReadiness: taskTimeout(props.checkReadiness).toSeconds(),
        trainHead: taskTimeout(props.trainHead).toSeconds(),
        promote: taskTimeout(props.promoteModel).toSeconds(),
        finish: taskTimeout(props.finishTraining).toSeconds(),
      },
    });
    // Step Functions' longest standard execution: one year.
    if (this.timeoutSeconds > 365 * 86_400) {
      throw new Error(
        `${id}: the worst-case execution (${this.timeoutSeconds} s) is over Step Functions' one-year limit; lower maxRounds, pollSeconds or maxRetrains`,
      );
    }

    const definition = this.definition(props);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: name,
      stateMachineType: sfn.StateMachineType.STANDARD,
      queryLanguage: sfn.QueryLanguage.JSON_PATH,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      comment:
        'tlearn training: one execution per dataset (lock), wait for features (bounded), train, promote, train again if more arrived',
      timeout: Duration.seconds(this.timeoutSeconds),
      tracingEnabled: true,
      logs: {
        destination: this.logGroup,
        level: sfn.LogLevel.ALL,
        includeExecutionData: props.includeExecutionData ?? false,
      },
    });
  }

  /** A Lambda task of `fn`, retried on the retryable Lambda errors. */
  private task(
    stateName: string,
    fn: TaskFunction,
    payload: Record<string, unknown>,
    resultPath: string,
    comment: string,
  ): tasks.LambdaInvoke {
    const step = new tasks.LambdaInvoke(this, stateName, {
      stateName,
      comment,
      lambdaFunction: fn.function,
      payload: sfn.TaskInput.fromObject(payload),
      payloadResponseOnly: true,
      // Replaced by the explicit retry below, which also covers throttling.
      retryOnServiceExceptions: false,
      resultPath,
      taskTimeout: sfn.Timeout.duration(taskTimeout(fn)),
    });
    if (this.taskRetryAttempts > 0) {
      step.addRetry({
        errors: [...RETRYABLE_LAMBDA_ERRORS],
        interval: Duration.seconds(2),
        backoffRate: 2,
        maxAttempts: this.taskRetryAttempts,
        maxDelay: Duration.seconds(60),
        jitterStrategy: sfn.JitterType.FULL,
      });
    }
    return step;
  }

  /** A Fail state with the caught error's Error and Cause. */
  private fail(stateName: string, comment: string): sfn.Fail {
    return new sfn.Fail(this, stateName, {
      stateName,
      comment,
      errorPath: sfn.JsonPath.stringAt('$.error.Error'),
      causePath: sfn.JsonPath.stringAt('$.error.Cause'),
    });
  }

  /** finish-training's input (lib/pipeline/ contract): release the lock, or go round again. */
  private finishPayload(outcome: 'trained' | 'failed', withGeneration: boolean): Record<string, unknown> {
    return {
      'dataset.$': '$.dataset',
      'executionName.$': '$$.Execution.Name',
      ...(withGeneration ? { 'generation.$': '$.readiness.generation' } : {}),
      ...(outcome === 'trained' ? { 'fingerprint.$': '$.training.fingerprint' } : {}),
      outcome,
      'retrains.$': '$.retrainRound',
      maxRetrains: this.maxRetrains,
    };
  }

  /** The states, from Start (see the diagram at the top of this file). */
  private definition(props: TrainingStateMachineProps): sfn.IChainable {
    const S = TRAINING_STATES;
    const start = new sfn.Pass(this, S.start, {
      stateName: S.start,
      comment: 'Keeps the documented input fields and starts the round counters.',
      parameters: {
        'dataset.$': '$.dataset',
        'trigger.$': '$.trigger',
        'requestedAt.$': '$.requestedAt',
        readinessRound: 0,
        retrainRound: 0,
      },
    });
    const settle = new sfn.Wait(this, S.settle, {
      stateName: S.settle,
      comment: 'Lets a burst of uploads and their extractions land before the first check.',
      time: sfn.WaitTime.duration(Duration.seconds(this.settleSeconds)),
    });
    const checkReadiness = this.task(
      S.checkReadiness,
      props.checkReadiness,
      { 'dataset.$': '$.dataset' },
      '$.readiness',
      'Counts images and their features from listings, and reads the lock generation: counts only.',
    );
    const waitForFeatures = new sfn.Wait(this, S.waitForFeatures, {
      stateName: S.waitForFeatures,
      comment: 'Features are still being extracted.',
      time: sfn.WaitTime.duration(Duration.seconds(this.pollSeconds)),
    });
    // A JSONPath Pass cannot write an intrinsic's scalar result into one field, so it rebuilds
    // the (small, documented) state with the counter incremented.
    const nextRound = new sfn.Pass(this, S.nextRound, {
      stateName: S.nextRound,
      comment: 'Counts one polling round.',
      parameters: {
        'dataset.$': '$.dataset',
        'trigger.$': '$.trigger',
        'requestedAt.$': '$.requestedAt',
        'readinessRound.$': 'States.MathAdd($.readinessRound, 1)',
        'retrainRound.$': '$.retrainRound',
      },
    });
    const nextTraining = new sfn.Pass(this, S.nextTraining, {
      stateName: S.nextTraining,
      comment: 'Features or deletes arrived after the readiness check: train again (bounded by maxRetrains).',
      parameters: {
        'dataset.$': '$.dataset',
        'trigger.$': '$.trigger',
        'requestedAt.$': '$.requestedAt',
        readinessRound: 0,
        'retrainRound.$': 'States.MathAdd($.retrainRound, 1)',
      },
    });
    const trainHead = this.task(
      S.trainHead,
      props.trainHead,
      { 'dataset.$': '$.dataset', 'trigger.$': '$.trigger', 'requestedAt.$': '$.requestedAt' },
      '$.training',
      'Fits the logistic-regression head on the ready features; writes model.json + report.json (left-out images listed).',
    );
    const promote = this.task(
      S.promote,
      props.promoteModel,
      { 'dataset.$': '$.dataset', 'version.$': '$.training.version' },
      '$.promotion',
      'Points models/{d}/current.json at the new version unless a newer one was promoted meanwhile.',
    );
    const finish = this.task(
      S.finish,
      props.finishTraining,
      this.finishPayload('trained', true),
      '$.finish',
      'Trains again when the lock generation moved since CheckReadiness, else releases the lock.',
    );
    finish.addCatch(
      this.fail(S.finishFailed, 'The lock could not be released; the next request takes it over as stale.'),
      {
        errors: [sfn.Errors.ALL],
        resultPath: '$.error',
      },
    );
    const done = new sfn.Succeed(this, S.done, { stateName: S.done });
    const trainAgain = new sfn.Choice(this, S.trainAgain, { stateName: S.trainAgain })
      .when(sfn.Condition.booleanEquals('$.finish.again', true), nextTraining)
      .otherwise(done);

    /** Catch → release the lock (or go round again if features arrived) → the task's Fail state. */
    const releaseOnFailure = (
      step: tasks.LambdaInvoke,
      releaseName: string,
      failName: string,
      withGeneration: boolean,
    ): void => {
      const failed = this.fail(
        failName,
        `${step.id} failed: Error and Cause are the task's (Cause holds the Lambda's errorMessage).`,
      );
      const release = this.task(
        releaseName,
        props.finishTraining,
        this.finishPayload('failed', withGeneration),
        '$.release',
        `Releases the lock after ${step.id} failed (or trains again if features arrived after the check).`,
      );
      // The original error stays in $.error for the Fail state; the release's own goes aside.
      release.addCatch(failed, { errors: [sfn.Errors.ALL], resultPath: '$.releaseError' });
      step.addCatch(
        release.next(
          new sfn.Choice(this, `${releaseName}Again`, { stateName: `${releaseName}Again` })
            .when(sfn.Condition.booleanEquals('$.release.again', true), nextTraining)
            .otherwise(failed),
        ),
        { errors: [sfn.Errors.ALL], resultPath: '$.error' },
      );
    };
    releaseOnFailure(checkReadiness, S.releaseAfterCheckReadiness, S.checkReadinessFailed, false);
    releaseOnFailure(trainHead, S.releaseAfterTrainHead, S.trainHeadFailed, true);
    releaseOnFailure(promote, S.releaseAfterPromote, S.promoteFailed, true);

    const pending = sfn.Condition.numberGreaterThan('$.readiness.pending', 0);
    const featuresReady = new sfn.Choice(this, S.featuresReady, { stateName: S.featuresReady })
      .when(
        sfn.Condition.and(pending, sfn.Condition.numberLessThan('$.readinessRound', this.maxRounds)),
        waitForFeatures.next(nextRound).next(checkReadiness),
      )
      .otherwise(trainHead.next(promote).next(finish).next(trainAgain));

    nextTraining.next(settle);
    return start.next(settle).next(checkReadiness).next(featuresReady);
  }
}

/** The worst-case durations {@link trainingExecutionTimeout} adds up, seconds. */
export interface ExecutionTimeParts {
  settleSeconds: number;
  pollSeconds: number;
  maxRounds: number;
  maxRetrains: number;
  /** Retry MaxAttempts of every task. */
  taskRetryAttempts: number;
  /** Each task state's TimeoutSeconds. */
  taskTimeoutSeconds: { checkReadiness: number; trainHead: number; promote: number; finish: number };
}

/**
 * The longest an execution can run without anything being wrong, seconds: every wait, and every
 * task taking its full timeout on each of its attempts with the longest backoff between them,
 * for each readiness round of each training of the execution (1 + maxRetrains). The state
 * machine's TimeoutSeconds; a timed-out execution's lock is released by its end event
 * (lib/pipeline/execution-ended.ts).
 */
export function trainingExecutionTimeout(p: ExecutionTimeParts): number {
  const backoff = Array.from({ length: p.taskRetryAttempts }, (_, k) => Math.min(2 * 2 ** k, 60)).reduce(
    (a, b) => a + b,
    0,
  );
  const task = (timeout: number): number => timeout * (1 + p.taskRetryAttempts) + backoff;
  const t = p.taskTimeoutSeconds;
  const training =
    p.settleSeconds +
    task(t.checkReadiness) +
    p.maxRounds * (p.pollSeconds + task(t.checkReadiness)) +
    task(t.trainHead) +
    task(t.promote) +
    task(t.finish);
  return training * (1 + p.maxRetrains);
}

/** Lambda stops the function at its own timeout; the margin lets that error come back first. */
function taskTimeout(fn: TaskFunction): Duration {
  return fn.timeout.plus(Duration.seconds(60));
}

function integerIn(id: string, name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${id}: ${name} must be an integer from ${min} to ${max} (got ${value})`);
  }
  return value;
}
