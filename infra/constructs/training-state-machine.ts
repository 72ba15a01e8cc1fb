/**
 * The training state machine ("train-{stack}") and its I/O contract with the task functions.
 *
 * ```
 * Start ─▶ Settle ─▶ CheckReadiness ─▶ FeaturesReady? ──pending > 0, round < maxRounds──▶ WaitForFeatures ─▶ NextRound ─┐
 *                         ▲                │   │                                                                      │
 *                         └────────────────┼───┼──────────────────────────────────────────────────────────────────────┘
 *                                          │   └─pending > 0, rounds used up─▶ DescribeNotReady ─▶ FeaturesNotReady (Fail)
 *                                          └─pending = 0─▶ TrainHead ─▶ Promote ─▶ Done (Succeed)
 * every task: Retry on Lambda service errors; Catch (States.ALL) ─▶ CheckReadinessFailed | TrainHeadFailed | PromoteFailed (Fail)
 * ```
 *
 * JSONPath (not JSONata), standard workflow. The state as it flows (the execution's output at the end):
 *
 * | path | set by | content |
 * |---|---|---|
 * | `$.dataset`, `$.trigger`, `$.requestedAt` | execution input | `{ dataset: "pets", trigger: "auto" \| "manual", requestedAt: "ISO-8601" }` |
 * | `$.readinessRound` | Start (0), NextRound (+1) | polling rounds used so far |
 * | `$.readiness` | CheckReadiness | check-readiness's result |
 * | `$.training` | TrainHead | train-head's result |
 * | `$.promotion` | Promote | promote-model's result |
 * | `$.error` | a Catch | `{ Error, Cause }` of the failed task (Cause: the Lambda's JSON error string) |
 *
 * Task functions (invoked with `payloadResponseOnly`: the event is exactly the object below, and
 * the function's return value is the result; a thrown error fails the task):
 *
 * - **check-readiness** gets {@link CheckReadinessInput} `{ dataset }`, returns
 *   {@link CheckReadinessResult} `{ total, ready, failed, pending, labels }` (numbers of images;
 *   `pending` = images without a current feature or error file; `labels` as the handler reports them).
 * - **train-head** gets {@link TrainHeadInput} `{ dataset, trigger, requestedAt }`, returns
 *   {@link TrainHeadResult} `{ version, dataset, accuracy, ... }`. It throws (with a message a user
 *   can act on) when the data cannot train a model (fewer than 2 labels, ...): the execution then
 *   ends in `TrainHeadFailed` with that message as the cause.
 * - **promote-model** gets {@link PromoteModelInput} `{ dataset, version }` (version = `$.training.version`),
 *   returns {@link PromoteModelResult} `{ promoted, version, previous }`.
 *
 * Error names: a task error's `Error` is the thrown error's type (`errorType` of the Lambda
 * response, e.g. `InsufficientDataError`); `Lambda.ServiceException`, `Lambda.AWSLambdaException`,
 * `Lambda.SdkClientException`, `Lambda.TooManyRequestsException` and
 * `Lambda.ClientExecutionTimeoutException` are retried (2 s, backoff 2, full jitter); everything
 * else, and retries used up, goes to the task's Fail state with `Error`/`Cause` of the task.
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

/** Execution input. */
export interface TrainingExecutionInput {
  dataset: string;
  trigger: 'auto' | 'manual';
  requestedAt: string;
}
/** Event of check-readiness. */
export interface CheckReadinessInput {
  dataset: string;
}
/** Result of check-readiness. */
export interface CheckReadinessResult {
  total: number;
  ready: number;
  failed: number;
  pending: number;
  labels: unknown;
}
/** Event of train-head. */
export type TrainHeadInput = TrainingExecutionInput;
/** Result of train-head (more fields allowed; `version` is required by Promote). */
export interface TrainHeadResult {
  version: string;
  dataset: string;
  accuracy: number;
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
  describeNotReady: 'DescribeNotReady',
  featuresNotReady: 'FeaturesNotReady',
  trainHead: 'TrainHead',
  promote: 'Promote',
  done: 'Done',
  checkReadinessFailed: 'CheckReadinessFailed',
  trainHeadFailed: 'TrainHeadFailed',
  promoteFailed: 'PromoteFailed',
} as const;

/** The three task functions, by their folder name under functions/. */
export type TrainingTaskFunction = 'check-readiness' | 'train-head' | 'promote-model';

/** Task state name → the function it invokes. */
export const TRAINING_TASK_STATES: Readonly<Record<string, TrainingTaskFunction>> = {
  [TRAINING_STATES.checkReadiness]: 'check-readiness',
  [TRAINING_STATES.trainHead]: 'train-head',
  [TRAINING_STATES.promote]: 'promote-model',
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
  /** Wait before the first readiness check, so a burst of uploads lands first. 0-86400. @default 60 */
  readonly settleSeconds?: number;
  /** Wait between readiness checks while features are pending. 1-3600. @default 30 */
  readonly pollSeconds?: number;
  /**
   * Polling rounds (waits) before giving up with FeaturesNotReady; the machine checks readiness
   * at most maxRounds + 1 times. 0-1000 (each round adds ~10 history events of the 25,000 allowed).
   * @default 120 (an hour at the default pollSeconds)
   */
  readonly maxRounds?: number;
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
 * The training workflow of DESIGN.md: settle, wait for the dataset's features (bounded), train
 * the head, promote it. Standard type, X-Ray tracing, logging to its own log group, and a Fail
 * state with a readable cause for every way it can end badly.
 */
export class TrainingStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  readonly settleSeconds: number;
  readonly pollSeconds: number;
  readonly maxRounds: number;

  constructor(scope: Construct, id: string, props: TrainingStateMachineProps) {
    super(scope, id);
    this.settleSeconds = integerIn(id, 'settleSeconds', props.settleSeconds ?? 60, 0, 86_400);
    this.pollSeconds = integerIn(id, 'pollSeconds', props.pollSeconds ?? 30, 1, 3_600);
    this.maxRounds = integerIn(id, 'maxRounds', props.maxRounds ?? 120, 0, 1_000);
    const attempts = integerIn(id, 'taskRetryAttempts', props.taskRetryAttempts ?? 6, 0, 10);
    const name = props.stateMachineName;
    if (name !== undefined && !/^[A-Za-z0-9_-]{1,80}$/.test(name)) {
      throw new Error(`${id}: stateMachineName must be 1-80 letters, digits, '-' or '_' (got '${name}')`);
    }
    const S = TRAINING_STATES;

    const invoke = (
      stateName: string,
      task: TaskFunction,
      payload: Record<string, unknown>,
      resultPath: string,
      failName: string,
      comment: string,
    ): tasks.LambdaInvoke => {
      const step = new tasks.LambdaInvoke(this, stateName, {
        stateName,
        comment,
        lambdaFunction: task.function,
        payload: sfn.TaskInput.fromObject(payload),
        payloadResponseOnly: true,
        // Replaced by the explicit retry below, which also covers throttling.
        retryOnServiceExceptions: false,
        resultPath,
        // Lambda stops the function at its own timeout; the margin lets that error come back first.
        taskTimeout: sfn.Timeout.duration(task.timeout.plus(Duration.seconds(60))),
      });
      if (attempts > 0) {
        step.addRetry({
          errors: [...RETRYABLE_LAMBDA_ERRORS],
          interval: Duration.seconds(2),
          backoffRate: 2,
          maxAttempts: attempts,
          maxDelay: Duration.seconds(60),
          jitterStrategy: sfn.JitterType.FULL,
        });
      }
      step.addCatch(
        new sfn.Fail(this, failName, {
          stateName: failName,
          comment: `${stateName} failed: Error and Cause are the task's (Cause holds the Lambda's errorMessage).`,
          errorPath: sfn.JsonPath.stringAt('$.error.Error'),
          causePath: sfn.JsonPath.stringAt('$.error.Cause'),
        }),
        { errors: [sfn.Errors.ALL], resultPath: '$.error' },
      );
      return step;
    };

    const start = new sfn.Pass(this, S.start, {
      stateName: S.start,
      comment: 'Keeps the documented input fields and starts the polling round counter.',
      parameters: {
        'dataset.$': '$.dataset',
        'trigger.$': '$.trigger',
        'requestedAt.$': '$.requestedAt',
        readinessRound: 0,
      },
    });
    const settle = new sfn.Wait(this, S.settle, {
      stateName: S.settle,
      comment: 'Lets a burst of uploads and their extractions land before the first check.',
      time: sfn.WaitTime.duration(Duration.seconds(this.settleSeconds)),
    });
    const checkReadiness = invoke(
      S.checkReadiness,
      props.checkReadiness,
      { 'dataset.$': '$.dataset' },
      '$.readiness',
      S.checkReadinessFailed,
      'Counts images and their features: {total, ready, failed, pending, labels}.',
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
      },
    });
    const describeNotReady = new sfn.Pass(this, S.describeNotReady, {
      stateName: S.describeNotReady,
      comment: 'Builds the cause FeaturesNotReady reports.',
      parameters: {
        cause: sfn.JsonPath.format(
          `Features of dataset {} are not ready: {} of {} images are still pending after {} polling rounds (${this.pollSeconds} s apart), so no training was started. Check the ingest dead-letter queue for stuck images, then start a training again (POST /datasets/{}/trainings).`,
          sfn.JsonPath.stringAt('$.dataset'),
          sfn.JsonPath.stringAt('$.readiness.pending'),
          sfn.JsonPath.stringAt('$.readiness.total'),
          sfn.JsonPath.stringAt('$.readinessRound'),
          sfn.JsonPath.stringAt('$.dataset'),
        ),
      },
      resultPath: '$.notReady',
    });
    const featuresNotReady = new sfn.Fail(this, S.featuresNotReady, {
      stateName: S.featuresNotReady,
      error: 'FeaturesNotReady',
      causePath: sfn.JsonPath.stringAt('$.notReady.cause'),
    });
    const trainHead = invoke(
      S.trainHead,
      props.trainHead,
      { 'dataset.$': '$.dataset', 'trigger.$': '$.trigger', 'requestedAt.$': '$.requestedAt' },
      '$.training',
      S.trainHeadFailed,
      'Fits the logistic-regression head on the features; writes model.json + report.json.',
    );
    const promote = invoke(
      S.promote,
      props.promoteModel,
      { 'dataset.$': '$.dataset', 'version.$': '$.training.version' },
      '$.promotion',
      S.promoteFailed,
      'Points models/{d}/current.json at the new version unless a newer one was promoted meanwhile.',
    );
    const done = new sfn.Succeed(this, S.done, { stateName: S.done });

    const pending = sfn.Condition.numberGreaterThan('$.readiness.pending', 0);
    const featuresReady = new sfn.Choice(this, S.featuresReady, { stateName: S.featuresReady })
      .when(
        sfn.Condition.and(pending, sfn.Condition.numberLessThan('$.readinessRound', this.maxRounds)),
        waitForFeatures.next(nextRound).next(checkReadiness),
      )
      .when(pending, describeNotReady.next(featuresNotReady))
      .otherwise(trainHead.next(promote).next(done));

    const definition = start.next(settle).next(checkReadiness).next(featuresReady);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: name,
      stateMachineType: sfn.StateMachineType.STANDARD,
      queryLanguage: sfn.QueryLanguage.JSON_PATH,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      comment: 'tlearn training: wait for features, train the head, promote it',
      tracingEnabled: true,
      logs: {
        destination: this.logGroup,
        level: sfn.LogLevel.ALL,
        includeExecutionData: props.includeExecutionData ?? false,
      },
    });
  }
}

function integerIn(id: string, name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${id}: ${name} must be an integer from ${min} to ${max} (got ${value})`);
  }
  return value;
}
