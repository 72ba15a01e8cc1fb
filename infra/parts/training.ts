/**
 * Training: the features queue → start-training (takes the dataset's lock, starts an execution)
 * → the training state machine (check-readiness, train-head, promote-model, finish-training), the
 * rule that releases the lock of executions that end without Finish, and their grants.
 */
import { ArnFormat, Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ENV } from '../../lib/config.ts';
import { PIPELINE_SETTINGS } from '../../lib/pipeline/settings.ts';
import { DATASETS_PREFIX, FEATURES_PREFIX, LOCKS_PREFIX, MODELS_PREFIX } from '../../lib/storage/keys.ts';
import { ExecutionEndRule } from '../constructs/execution-end-rule.ts';
import { QueueConsumer } from '../constructs/queue-consumer.ts';
import type { TlearnFunction } from '../constructs/tlearn-function.ts';
import { TrainingStateMachine } from '../constructs/training-state-machine.ts';
import { grantS3Access } from '../s3-access.ts';
import {
  all,
  CURRENT_POINTERS,
  createFunction,
  featureEnvironment,
  LOCK_WRITER,
  modelEnvironment,
  type StackContext,
} from './shared.ts';

export interface TrainingPart {
  readonly training: TrainingStateMachine;
  /** feature.ready / feature.failed messages → start-training. */
  readonly features: QueueConsumer;
  readonly checkReadiness: TlearnFunction;
  readonly trainHead: TlearnFunction;
  readonly promoteModel: TlearnFunction;
  readonly finishTraining: TlearnFunction;
  readonly startTraining: TlearnFunction;
  /**
   * DescribeExecution on the executions of this state machine: start-training and the API tell
   * a stale lock (its holder no longer runs) by it.
   */
  readonly describeExecutions: iam.PolicyStatement;
}

/** Creates the training side; first, since start-training and the API need the state machine's ARN. */
export function addTraining(ctx: StackContext): TrainingPart {
  const { stack, bucket, props, settings } = ctx;
  const checkReadiness = createFunction(ctx, 'check-readiness', { ...featureEnvironment(ctx) });
  // train-head loads no model; the model settings tell it which feature spec to train on.
  const trainHead = createFunction(ctx, 'train-head', {
    ...modelEnvironment(ctx),
    [ENV.REFIT_ON_ALL]: String(props.training?.refitOnAll ?? false),
  });
  const promoteModel = createFunction(ctx, 'promote-model', { [ENV.BUCKET]: bucket.bucketName });
  const finishTraining = createFunction(ctx, 'finish-training', { [ENV.BUCKET]: bucket.bucketName });
  const stateMachineName = `train-${stack.stackName}`;
  const training = new TrainingStateMachine(stack, 'Training', {
    stateMachineName,
    checkReadiness: { function: checkReadiness.function, timeout: checkReadiness.timeout },
    trainHead: { function: trainHead.function, timeout: trainHead.timeout },
    promoteModel: { function: promoteModel.function, timeout: promoteModel.timeout },
    finishTraining: { function: finishTraining.function, timeout: finishTraining.timeout },
    settleSeconds: props.training?.settleSeconds,
    pollSeconds: props.training?.pollSeconds,
    maxRounds: props.training?.maxRounds,
    maxRetrains: props.training?.maxRetrains,
    logRetention: settings.logRetention,
    logRemovalPolicy: settings.removalPolicy,
  });
  const stateMachine = training.stateMachine;
  // Executions that end without Finish (stopped, timed out, failed) → finish-training releases
  // their lock or hands it to a fresh execution (infra/constructs/execution-end-rule.ts).
  const executionEnds = new ExecutionEndRule(stack, 'ExecutionEnds', {
    stateMachineName,
    handler: finishTraining.function,
  });
  finishTraining.function.addEnvironment(ENV.STATE_MACHINE_ARN, executionEnds.stateMachineArn);

  const startTraining = createFunction(ctx, 'start-training', {
    [ENV.BUCKET]: bucket.bucketName,
    [ENV.STATE_MACHINE_ARN]: stateMachine.stateMachineArn,
  });
  // Extractor → features queue → start-training (batched, so a burst becomes one request per dataset).
  const { features } = PIPELINE_SETTINGS;
  const featuresQueue = new QueueConsumer(stack, 'Features', {
    consumer: startTraining.function,
    consumerTimeout: startTraining.timeout,
    batchSize: features.batchSize,
    maxBatchingWindow: Duration.seconds(features.maxBatchingWindowSeconds),
    maxReceiveCount: features.maxReceiveCount,
  });

  const part: TrainingPart = {
    training,
    features: featuresQueue,
    checkReadiness,
    trainHead,
    promoteModel,
    finishTraining,
    startTraining,
    describeExecutions: new iam.PolicyStatement({
      actions: ['states:DescribeExecution'],
      resources: [
        stack.formatArn({
          service: 'states',
          resource: 'execution',
          resourceName: `${stateMachine.stateMachineName}:*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
    }),
  };
  grantTraining(ctx, part);
  return part;
}

/** Least privilege of the training functions, by prefix of the S3 layout (infra/s3-access.ts). */
function grantTraining(ctx: StackContext, part: TrainingPart): void {
  const { bucket } = ctx;
  const { checkReadiness, trainHead, promoteModel, finishTraining, startTraining } = part;
  // The single-flight lock: start-training and finish-training write it, check-readiness reads
  // its generation; start-training describes the holder's execution to detect a stale lock.
  part.training.stateMachine.grantStartExecution(startTraining.function);
  grantS3Access(startTraining.function, bucket, LOCK_WRITER);
  grantS3Access(checkReadiness.function, bucket, { list: [LOCKS_PREFIX], read: [all(LOCKS_PREFIX)] });
  grantS3Access(finishTraining.function, bucket, LOCK_WRITER);
  // Finish lists the dataset to tell late news of trained features from changes (training-lock.ts).
  grantS3Access(finishTraining.function, bucket, { list: [DATASETS_PREFIX, FEATURES_PREFIX] });
  startTraining.function.addToRolePolicy(part.describeExecutions);

  grantS3Access(checkReadiness.function, bucket, {
    list: [DATASETS_PREFIX, FEATURES_PREFIX],
    read: [all(DATASETS_PREFIX), all(FEATURES_PREFIX)],
  });

  // train-head writes new versions; only promote-model moves the pointer.
  grantS3Access(trainHead.function, bucket, {
    list: [DATASETS_PREFIX, FEATURES_PREFIX],
    read: [all(FEATURES_PREFIX)],
    write: [all(MODELS_PREFIX)],
    denyWrite: [CURRENT_POINTERS],
  });

  grantS3Access(promoteModel.function, bucket, {
    list: [MODELS_PREFIX],
    read: [all(MODELS_PREFIX)],
    write: [CURRENT_POINTERS],
  });
}
