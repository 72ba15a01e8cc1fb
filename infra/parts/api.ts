/**
 * The prediction API: the api function (container image), the REST API with its keys and usage
 * plans (infra/constructs/prediction-api.ts), the API's scoped key management
 * (infra/key-access.ts) and the console's uploads into the bucket.
 */
import { Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { KEY_STACK_TAG } from '../../lib/api/keys.ts';
import { ENV } from '../../lib/config.ts';
import {
  BATCHES_PREFIX,
  CAPTURES_PREFIX,
  CONSOLE_ASSETS_PREFIX,
  DATASETS_PREFIX,
  FEATURES_PREFIX,
  MODELS_PREFIX,
  MONITORING_PREFIX,
  POOL_FEATURES_PREFIX,
  SETTINGS_PREFIX,
  UNLABELLED_PREFIX,
} from '../../lib/storage/keys.ts';
import type { DataBucket } from '../constructs/data-bucket.ts';
import { PredictionApi } from '../constructs/prediction-api.ts';
import { CONSOLE_IMAGE_DIR, type TlearnFunction } from '../constructs/tlearn-function.ts';
import { grantKeyManagement } from '../key-access.ts';
import { grantS3Access } from '../s3-access.ts';
import {
  all,
  baseModelPrefixes,
  CURRENT_POINTERS,
  createFunction,
  LOCK_WRITER,
  modelEnvironment,
  type StackContext,
} from './shared.ts';
import type { TrainingPart } from './training.ts';

/** What the API sends work to and reads the state of. */
export interface ApiTargets {
  readonly data: DataBucket;
  readonly training: TrainingPart;
  /** POST /datasets/{d}/reindex sends S3-style events of the images to backfill to it. */
  readonly ingestQueue: sqs.IQueue;
  /** POST /datasets/{d}/batches sends the chunks of a batch to it. */
  readonly batchQueue: sqs.IQueue;
}

export interface ApiPart {
  readonly api: PredictionApi;
  readonly handler: TlearnFunction;
}

export function addApi(ctx: StackContext, targets: ApiTargets): ApiPart {
  const { stack, props, settings } = ctx;
  const stateMachine = targets.training.training.stateMachine;
  const handler = createFunction(ctx, 'api', {
    ...modelEnvironment(ctx),
    [ENV.STATE_MACHINE_ARN]: stateMachine.stateMachineArn,
    [ENV.INBOX_PREFIX]: settings.inboxPrefix,
  });
  handler.function.addEnvironment(ENV.BATCH_QUEUE_URL, targets.batchQueue.queueUrl);
  targets.batchQueue.grantSendMessages(handler.function);
  // The lock: manual trainings take it as start-training does (infra/parts/training.ts).
  grantS3Access(handler.function, ctx.bucket, LOCK_WRITER);
  targets.ingestQueue.grantSendMessages(handler.function);
  handler.function.addEnvironment(ENV.INGEST_QUEUE_URL, targets.ingestQueue.queueUrl);
  grantApiS3Access(ctx, handler);
  grantApiTrainings(handler, targets.training);

  const api = new PredictionApi(stack, 'Api', {
    handler: handler.function,
    stageName: props.api?.stageName,
    rateLimit: props.api?.rateLimit,
    burstLimit: props.api?.burstLimit,
    quotaPerDay: props.api?.quotaPerDay,
    stageRateLimit: props.api?.stageRateLimit,
    stageBurstLimit: props.api?.stageBurstLimit,
    manageCloudWatchRole: props.api?.manageCloudWatchRole,
    logRetention: settings.logRetention,
    logRemovalPolicy: settings.removalPolicy,
  });
  // Scoped API keys (lib/api/keys-aws.ts): this stack's usage plan and tagged keys only.
  const keyStackTag = stack.stackName;
  Tags.of(api.apiKey).add(KEY_STACK_TAG, keyStackTag);
  handler.function.addEnvironment(ENV.KEY_STACK_TAG, keyStackTag);
  grantKeyManagement(stack, 'ApiKeyManagement', {
    role: handler.role,
    usagePlan: api.usagePlan,
    stackTag: keyStackTag,
  });
  // The console (served by the API at GET /) uploads straight to the bucket.
  targets.data.allowBrowserUploads([
    `https://${api.api.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}`,
  ]);
  return { api, handler };
}

/**
 * The API reads what it serves: images (predictions by key, counts), features (status counts),
 * models; base weights only from S3 when configured so. It writes only the pointers
 * (POST /datasets/{d}/model/promote, admin keys only), each version's one-file ONNX export
 * (GET /datasets/{d}/model/export, written once on its first request) and images: the
 * console's presigned uploads (POST /datasets/{d}/uploads) are signed by this role; and the
 * console's copy of onnxruntime-web's wasm (console/*, GET /console/ort/{file}, written once).
 */
function grantApiS3Access(ctx: StackContext, handler: TlearnFunction): void {
  const apiReads = [
    DATASETS_PREFIX,
    FEATURES_PREFIX,
    MODELS_PREFIX,
    BATCHES_PREFIX,
    CONSOLE_ASSETS_PREFIX,
    ...baseModelPrefixes(ctx),
  ];
  // Closing the loop (lib/capture/): settings, captures and monitoring records are the API's
  // own; labelling a capture copies it into datasets/ and undoing deletes that copy only.
  // Suggestions read the pool and its features; labelling one moves it out of the pool.
  const loopPrefixes = [SETTINGS_PREFIX, CAPTURES_PREFIX, MONITORING_PREFIX];
  const poolPrefixes = [UNLABELLED_PREFIX, POOL_FEATURES_PREFIX];
  grantS3Access(handler.function, ctx.bucket, {
    // The inbox: listed for a batch's manifest (POST /datasets/{d}/batches), never read.
    list: [...apiReads, ctx.settings.inboxPrefix, ...loopPrefixes, ...poolPrefixes],
    read: [...apiReads, ...loopPrefixes, ...poolPrefixes].map(all),
    delete: [all(CAPTURES_PREFIX), `${DATASETS_PREFIX}*/capture-*`, ...poolPrefixes.map(all)],
    // batches/*: each batch's manifest.json (POST /datasets/{d}/batches).
    write: [
      CURRENT_POINTERS,
      `${MODELS_PREFIX}*/model.onnx`,
      all(DATASETS_PREFIX),
      all(BATCHES_PREFIX),
      all(CONSOLE_ASSETS_PREFIX),
      ...loopPrefixes.map(all),
    ],
  });
}

/** Manual trainings, and what GET /datasets/{d} reports of the newest execution. */
function grantApiTrainings(handler: TlearnFunction, training: TrainingPart): void {
  const stateMachine = training.training.stateMachine;
  stateMachine.grantStartExecution(handler.function);
  // The console page, built into the container image by functions/Dockerfile.
  handler.function.addEnvironment(ENV.CONSOLE_DIR, CONSOLE_IMAGE_DIR);
  // GET /datasets/{d} reports the newest training execution (status, error, cause).
  handler.function.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['states:ListExecutions'],
      resources: [stateMachine.stateMachineArn],
    }),
  );
  // A stale lock is told by its holder's execution, as start-training does.
  handler.function.addToRolePolicy(training.describeExecutions);
  // GET /datasets/{d}?timeline=true reads the phases of the newest execution from its history.
  handler.function.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['states:GetExecutionHistory'],
      resources: training.describeExecutions.resources,
    }),
  );
}
