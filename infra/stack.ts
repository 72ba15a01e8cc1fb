import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sns from 'aws-cdk-lib/aws-sns';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { KEY_STACK_TAG } from '../lib/api/keys.ts';
import { BATCHES_PREFIX } from '../lib/batch/layout.ts';
import {
  BATCH_SETTINGS,
  batchQueueVisibilitySeconds,
  DEFAULT_INBOX_PREFIX,
  inboxPrefixProblem,
} from '../lib/batch/settings.ts';
import { DRIFT_SETTINGS } from '../lib/capture/drift.ts';
import { ENV } from '../lib/config.ts';
import {
  FUNCTION_NAMES,
  type FunctionName,
  handlerEntry,
  isFunctionName,
  packageOf,
} from '../lib/functions.ts';
import { POOLINGS, type Pooling, PRECISIONS, type Precision } from '../lib/model/spec.ts';
import {
  DEAD_LETTER_SETTINGS,
  deadLetterVisibilitySeconds,
  PIPELINE_SETTINGS,
} from '../lib/pipeline/settings.ts';
import { LOCKS_PREFIX } from '../lib/pipeline/training-lock.ts';
import {
  BASE_MODELS_PREFIX,
  CAPTURES_PREFIX,
  CONSOLE_ASSETS_PREFIX,
  DATASETS_PREFIX,
  FEATURES_PREFIX,
  INGEST_PREFIXES,
  MODELS_PREFIX,
  MONITORING_PREFIX,
  POOL_FEATURES_PREFIX,
  SETTINGS_PREFIX,
  UNLABELLED_PREFIX,
} from '../lib/storage/keys.ts';
import { DataBucket } from './constructs/data-bucket.ts';
import { DeadLetterConsumer } from './constructs/dead-letter-consumer.ts';
import { ExecutionEndRule } from './constructs/execution-end-rule.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { PredictionApi } from './constructs/prediction-api.ts';
import { QueueConsumer } from './constructs/queue-consumer.ts';
import { CONSOLE_IMAGE_DIR, TlearnFunction } from './constructs/tlearn-function.ts';
import { TrainingStateMachine } from './constructs/training-state-machine.ts';
import { grantKeyManagement } from './key-access.ts';
import { REPO_ROOT } from './paths.ts';
import { grantS3Access } from './s3-access.ts';

/** Per-function sizing. */
export interface FunctionSettings {
  /** MB, 128-10240. */
  readonly memorySize?: number;
  /** At most 15 min (the api at most 29 s: API Gateway's integration timeout). */
  readonly timeout?: Duration;
  /** @default - none (the account's unreserved pool) */
  readonly reservedConcurrentExecutions?: number;
}

/**
 * Default memory and timeout per function (timeouts from lib/pipeline/settings.ts, which the local
 * stack uses too). train-head's fit is CPU-bound plain JS (more memory = more CPU); the extractor
 * and the API hold VGG16 (~60 MB of weights, ~1 GB while running); check-readiness parses the
 * listings of the whole dataset (200,000 images + features = 400 pages of 1,000 keys, labels in
 * parallel): 1 GB buys the CPU for that within its timeout.
 */
const T = PIPELINE_SETTINGS.timeoutSeconds;
export const DEFAULT_FUNCTION_SETTINGS: Readonly<
  Record<FunctionName, { memorySize: number; timeout: Duration }>
> = {
  'extract-features': { memorySize: 3008, timeout: Duration.seconds(T['extract-features']) },
  api: { memorySize: 3008, timeout: Duration.seconds(T.api) },
  'start-training': { memorySize: 256, timeout: Duration.seconds(T['start-training']) },
  'check-readiness': { memorySize: 1024, timeout: Duration.seconds(T['check-readiness']) },
  // Sized for 200,000 images x 8192 features: the compact matrix at the measured density is
  // ~6.2 GB (lib/training/capacity.ts; README "Scale and limits"); 10,240 MB (Lambda's maximum,
  // 6 vCPUs for the fit) holds ~288,000. Accounts still capped at 3,008 MB: about 75,000.
  'train-head': { memorySize: 10240, timeout: Duration.seconds(T['train-head']) },
  'promote-model': { memorySize: 256, timeout: Duration.seconds(T['promote-model']) },
  'finish-training': { memorySize: 256, timeout: Duration.seconds(T['finish-training']) },
  'batch-predict': {
    memorySize: BATCH_SETTINGS.memorySize,
    timeout: Duration.seconds(BATCH_SETTINGS.timeoutSeconds),
  },
  'dead-letters': {
    memorySize: DEAD_LETTER_SETTINGS.memorySize,
    timeout: Duration.seconds(DEAD_LETTER_SETTINGS.timeoutSeconds),
  },
  'drift-metric': {
    memorySize: DRIFT_SETTINGS.memorySize,
    timeout: Duration.seconds(DRIFT_SETTINGS.timeoutSeconds),
  },
};

/** Where the container image puts the imported VGG16 weights (see functions/Dockerfile). */
export const IMAGE_BASE_MODEL_URI = '/opt/base-models/vgg16/model.json';

export interface TlearnStackProps extends StackProps {
  /**
   * RETAIN keeps the bucket (and log groups) when the stack is deleted; DESTROY deletes them,
   * emptying the bucket first.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /** Retention of every log group. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** Days old object versions are kept. @default 30 */
  readonly noncurrentVersionDays?: number;
  /** Days captured production predictions are kept for review (captures/). @default 30 */
  readonly captureDays?: number;
  /** S3 server access logs into a log bucket. @default true */
  readonly serverAccessLogs?: boolean;
  /** Memory / timeout / reserved concurrency per function. @default DEFAULT_FUNCTION_SETTINGS */
  readonly functions?: Partial<Record<FunctionName, FunctionSettings>>;
  /** Feature pooling; the extractor and the API must agree, so both get it. @default 'flatten' */
  readonly pooling?: Pooling;
  /**
   * Arithmetic of the VGG16 forward pass (ENV.PRECISION) of every function that extracts or
   * trains: the extractor, the API, batch predictions and the trainer (which trains on features
   * of this precision only). `int8` runs the quantized graph on onnxruntime (the spec ends in
   * `/int8`). @default 'fp32'
   */
  readonly precision?: Precision;
  /** Square input size of VGG16, 32-1024. @default 150 */
  readonly inputSize?: number;
  /** Where the VGG16 tfjs model is (path in the image, or s3://…/model.json). @default IMAGE_BASE_MODEL_URI */
  readonly baseModelUri?: string;
  /** Images per forward pass in the extractor (ENV.EXTRACT_BATCH_SIZE), 1-64. @default 8 */
  readonly extractBatchSize?: number;
  /** Ingest queue → extract-features event source (defaults: PIPELINE_SETTINGS.ingest). */
  readonly ingest?: {
    /** @default 10 */
    readonly batchSize?: number;
    /** @default Duration.seconds(5) */
    readonly maxBatchingWindow?: Duration;
    /** Concurrent extractor invocations by the queue, 2-1000. @default 10 */
    readonly maxConcurrency?: number;
  };
  /** Training workflow (defaults: PIPELINE_SETTINGS.training). */
  readonly training?: {
    /** @default 60 */
    readonly settleSeconds?: number;
    /** @default 30 */
    readonly pollSeconds?: number;
    /** @default 120 */
    readonly maxRounds?: number;
    /** Follow-up trainings per execution for features that arrived during it. @default 20 */
    readonly maxRetrains?: number;
    /** Refit on all samples after evaluating. @default false */
    readonly refitOnAll?: boolean;
  };
  /** HTTP API. */
  readonly api?: {
    /** @default 'v1' */
    readonly stageName?: string;
    /** Per key (usage plan). @default 10 (lib/api/throttle.ts) */
    readonly rateLimit?: number;
    /** Per key (usage plan). @default 20 */
    readonly burstLimit?: number;
    /** @default 10000 */
    readonly quotaPerDay?: number;
    /** All keys together (stage). @default rateLimit × 10 (lib/api/throttle.ts) */
    readonly stageRateLimit?: number;
    /** All keys together (stage). @default burstLimit × 10 */
    readonly stageBurstLimit?: number;
    /** @default true */
    readonly manageCloudWatchRole?: boolean;
  };
  /** SNS topic the alarms notify. @default - none */
  readonly alarmTopicArn?: string;
  /**
   * The alarms and the dashboard (they bill while idle: `tlearn cost` lists them); false for a
   * near-zero idle bill. @default true
   */
  readonly monitoring?: boolean;
  /** `docker build --build-arg`s of the container image (e.g. TFJS_NODE_CDN_STORAGE). @default - none */
  readonly imageBuildArgs?: Record<string, string>;
  /**
   * Prefix of images to batch-score that belong to no dataset (`POST /datasets/{d}/batches
   * {"prefix": "inbox/…"}`): the API may list it and the batch worker read it, nothing else. It
   * may not overlap the bucket's own prefixes (lib/batch/settings.ts). @default 'inbox/'
   */
  readonly inboxPrefix?: string;
}

/**
 * The whole app: bucket → ingest queue → extractor (container image) → features queue →
 * start-training → training state machine (check-readiness, train-head, promote-model), the
 * prediction API (container image), alarms and a dashboard.
 */
export class TlearnStack extends Stack {
  readonly data: DataBucket;
  readonly ingest: QueueConsumer;
  readonly features: QueueConsumer;
  /** Batch predictions: chunks of image keys → batch-predict (lib/batch/). */
  readonly batches: QueueConsumer;
  readonly functions: Readonly<Record<FunctionName, TlearnFunction>>;
  readonly training: TrainingStateMachine;
  readonly api: PredictionApi;
  /** Undefined when `monitoring: false`. */
  readonly monitoring: Monitoring | undefined;

  constructor(scope: Construct, id: string, props: TlearnStackProps = {}) {
    super(scope, id, props);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const pooling = props.pooling ?? 'flatten';
    const inputSize = props.inputSize ?? 150;
    const precision = props.precision ?? 'fp32';
    const extractBatchSize = props.extractBatchSize ?? 8;
    if (!POOLINGS.includes(pooling)) {
      throw new Error(`pooling must be one of ${POOLINGS.join(', ')} (got '${pooling}')`);
    }
    if (!PRECISIONS.includes(precision)) {
      throw new Error(`precision must be one of ${PRECISIONS.join(', ')} (got '${precision}')`);
    }
    requireInteger('inputSize', inputSize, 32, 1024);
    requireInteger('extractBatchSize', extractBatchSize, 1, 64);
    const inboxPrefix = props.inboxPrefix ?? DEFAULT_INBOX_PREFIX;
    const inboxProblem = inboxPrefixProblem(inboxPrefix);
    if (inboxProblem !== undefined) throw new Error(`inboxPrefix ${inboxProblem}`);
    for (const name of Object.keys(props.functions ?? {})) {
      if (!isFunctionName(name)) {
        throw new Error(`functions.${name}: unknown function (known: ${FUNCTION_NAMES.join(', ')})`);
      }
    }
    const apiTimeout = props.functions?.api?.timeout;
    if (apiTimeout && apiTimeout.toSeconds() > 29) {
      throw new Error(
        `functions.api.timeout must be at most 29 s, API Gateway's limit (got ${apiTimeout.toSeconds()} s)`,
      );
    }

    this.data = new DataBucket(this, 'Data', {
      removalPolicy,
      noncurrentVersionDays: props.noncurrentVersionDays,
      captureDays: props.captureDays,
      serverAccessLogs: props.serverAccessLogs,
    });
    const bucket = this.data.bucket;

    const featureEnv = {
      [ENV.BUCKET]: bucket.bucketName,
      [ENV.POOLING]: pooling,
      [ENV.INPUT_SIZE]: String(inputSize),
    };
    const modelEnv = {
      ...featureEnv,
      [ENV.BASE_MODEL_URI]: props.baseModelUri ?? IMAGE_BASE_MODEL_URI,
      [ENV.EXTRACT_BATCH_SIZE]: String(extractBatchSize),
      [ENV.PRECISION]: precision,
    };
    const make = (name: FunctionName, environment: Record<string, string>): TlearnFunction => {
      const sizing = { ...DEFAULT_FUNCTION_SETTINGS[name], ...props.functions?.[name] };
      const base = {
        name,
        memorySize: sizing.memorySize,
        timeout: sizing.timeout,
        reservedConcurrentExecutions: sizing.reservedConcurrentExecutions,
        environment,
        logRetention,
        logRemovalPolicy: removalPolicy,
      };
      const id = `${pascal(name)}Function`;
      return packageOf(name) === 'image'
        ? new TlearnFunction(this, id, {
            ...base,
            kind: 'image',
            buildContext: REPO_ROOT,
            buildArgs: props.imageBuildArgs,
          })
        : new TlearnFunction(this, id, {
            ...base,
            kind: 'bundled',
            entry: `${REPO_ROOT}/${handlerEntry(name)}`,
            projectRoot: REPO_ROOT,
          });
    };

    // Training side first: start-training and the API need the state machine's ARN.
    const checkReadiness = make('check-readiness', { ...featureEnv });
    // train-head loads no model; the model settings tell it which feature spec to train on.
    const trainHead = make('train-head', {
      ...modelEnv,
      [ENV.REFIT_ON_ALL]: String(props.training?.refitOnAll ?? false),
    });
    const promoteModel = make('promote-model', { [ENV.BUCKET]: bucket.bucketName });
    const finishTraining = make('finish-training', { [ENV.BUCKET]: bucket.bucketName });
    const stateMachineName = `train-${this.stackName}`;
    this.training = new TrainingStateMachine(this, 'Training', {
      stateMachineName,
      checkReadiness: { function: checkReadiness.function, timeout: checkReadiness.timeout },
      trainHead: { function: trainHead.function, timeout: trainHead.timeout },
      promoteModel: { function: promoteModel.function, timeout: promoteModel.timeout },
      finishTraining: { function: finishTraining.function, timeout: finishTraining.timeout },
      settleSeconds: props.training?.settleSeconds,
      pollSeconds: props.training?.pollSeconds,
      maxRounds: props.training?.maxRounds,
      maxRetrains: props.training?.maxRetrains,
      logRetention,
      logRemovalPolicy: removalPolicy,
    });
    const stateMachine = this.training.stateMachine;
    // Executions that end without Finish (stopped, timed out, failed) → finish-training releases
    // their lock or hands it to a fresh execution (infra/constructs/execution-end-rule.ts).
    const executionEnds = new ExecutionEndRule(this, 'ExecutionEnds', {
      stateMachineName,
      handler: finishTraining.function,
    });
    finishTraining.function.addEnvironment(ENV.STATE_MACHINE_ARN, executionEnds.stateMachineArn);

    // ENV.FEATURES_QUEUE_URL is added below, once the queue (whose consumer is created later) exists.
    const extractor = make('extract-features', { ...modelEnv });
    const startTraining = make('start-training', {
      [ENV.BUCKET]: bucket.bucketName,
      [ENV.STATE_MACHINE_ARN]: stateMachine.stateMachineArn,
    });
    const api = make('api', {
      ...modelEnv,
      [ENV.STATE_MACHINE_ARN]: stateMachine.stateMachineArn,
      [ENV.INBOX_PREFIX]: inboxPrefix,
    });
    // Batch predictions score with the API's extractor and prediction code (lib/batch/).
    const batchPredict = make('batch-predict', { ...modelEnv });
    // Ingest and batch dead letters → records (lib/batch/dead-letters.ts); its queues come below.
    const deadLetters = make('dead-letters', { [ENV.BUCKET]: bucket.bucketName });
    // Prediction drift → a CloudWatch metric, run by the monitoring's schedule (lib/capture/drift.ts).
    const driftMetric = make('drift-metric', { [ENV.BUCKET]: bucket.bucketName });
    this.functions = {
      'batch-predict': batchPredict,
      'dead-letters': deadLetters,
      'drift-metric': driftMetric,
      'extract-features': extractor,
      api,
      'start-training': startTraining,
      'check-readiness': checkReadiness,
      'train-head': trainHead,
      'promote-model': promoteModel,
      'finish-training': finishTraining,
    };

    // S3 → ingest queue → extractor (created and removed images: deletes drop their features).
    const { ingest, features } = PIPELINE_SETTINGS;
    this.ingest = new QueueConsumer(this, 'Ingest', {
      consumer: extractor.function,
      consumerTimeout: extractor.timeout,
      batchSize: props.ingest?.batchSize ?? ingest.batchSize,
      maxBatchingWindow: props.ingest?.maxBatchingWindow ?? Duration.seconds(ingest.maxBatchingWindowSeconds),
      maxConcurrency: props.ingest?.maxConcurrency ?? ingest.maxConcurrency,
      // The extractor writes an ExtractionFailed record on the last receive: it reads the same number.
      maxReceiveCount: ingest.maxReceiveCount,
      deadLetterVisibilityTimeout: Duration.seconds(deadLetterVisibilitySeconds()),
    });
    for (const event of [s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED]) {
      for (const prefix of INGEST_PREFIXES) {
        bucket.addEventNotification(event, new s3n.SqsDestination(this.ingest.queue), { prefix });
      }
    }

    // Extractor → features queue → start-training (batched, so a burst becomes one request per dataset).
    this.features = new QueueConsumer(this, 'Features', {
      consumer: startTraining.function,
      consumerTimeout: startTraining.timeout,
      batchSize: features.batchSize,
      maxBatchingWindow: Duration.seconds(features.maxBatchingWindowSeconds),
      maxReceiveCount: features.maxReceiveCount,
    });
    extractor.function.addEnvironment(ENV.FEATURES_QUEUE_URL, this.features.queue.queueUrl);

    // API (POST /datasets/{d}/batches) → batch queue → batch-predict, one chunk per invocation;
    // the settings are lib/batch/settings.ts, which the local stack uses too.
    this.batches = new QueueConsumer(this, 'Batches', {
      consumer: batchPredict.function,
      consumerTimeout: batchPredict.timeout,
      batchSize: BATCH_SETTINGS.batchSize,
      maxConcurrency: BATCH_SETTINGS.maxConcurrency,
      maxReceiveCount: BATCH_SETTINGS.maxReceiveCount,
      visibilityTimeout: Duration.seconds(batchQueueVisibilitySeconds()),
      deadLetterVisibilityTimeout: Duration.seconds(deadLetterVisibilitySeconds()),
    });
    api.function.addEnvironment(ENV.BATCH_QUEUE_URL, this.batches.queue.queueUrl);
    this.batches.queue.grantSendMessages(api.function);

    // What still dies (a crash, timeout or OOM on the last receive) becomes a record: ExtractionFailed
    // for an image, failed rows for a batch chunk (docs/ARCHITECTURE.md "Dead letters").
    new DeadLetterConsumer(this, 'DeadLetters', {
      consumer: deadLetters.function,
      queues: [this.ingest.deadLetterQueue, this.batches.deadLetterQueue],
      batchSize: DEAD_LETTER_SETTINGS.batchSize,
      maxConcurrency: DEAD_LETTER_SETTINGS.maxConcurrency,
    });
    deadLetters.function.addEnvironment(ENV.FEATURES_QUEUE_URL, this.features.queue.queueUrl);
    this.features.queue.grantSendMessages(deadLetters.function);

    // Least privilege, by prefix of the S3 layout (infra/s3-access.ts; test/infra/iam.test.ts).
    const all = (prefix: string) => `${prefix}*`;
    const currentPointers = `${MODELS_PREFIX}*/current.json`;
    // Base weights from S3 only when the stack is told to load them from there.
    const baseModelsFromS3 = (props.baseModelUri ?? IMAGE_BASE_MODEL_URI).startsWith('s3://');
    const baseModels = baseModelsFromS3 ? [BASE_MODELS_PREFIX] : [];
    // The unlabelled pool (lib/capture/pool-extract.ts): its images in, their features out.
    grantS3Access(extractor.function, bucket, {
      list: [DATASETS_PREFIX, FEATURES_PREFIX, ...baseModels],
      read: [DATASETS_PREFIX, FEATURES_PREFIX, UNLABELLED_PREFIX, POOL_FEATURES_PREFIX, ...baseModels].map(
        all,
      ),
      write: [all(FEATURES_PREFIX), all(POOL_FEATURES_PREFIX)],
      delete: [all(FEATURES_PREFIX), all(POOL_FEATURES_PREFIX)],
    });
    this.features.queue.grantSendMessages(extractor.function);

    // The single-flight lock: start-training, the API (manual trainings) and finish-training write
    // it (conditional writes), check-readiness reads its generation; start-training and the API
    // describe the holder's execution to detect a stale lock.
    // Listing locks/ lets a missing lock answer 404 rather than 403 (it is created on first use).
    stateMachine.grantStartExecution(startTraining.function);
    const lockWriter = { list: [LOCKS_PREFIX], read: [all(LOCKS_PREFIX)], write: [all(LOCKS_PREFIX)] };
    grantS3Access(startTraining.function, bucket, lockWriter);
    grantS3Access(checkReadiness.function, bucket, { list: [LOCKS_PREFIX], read: [all(LOCKS_PREFIX)] });
    grantS3Access(finishTraining.function, bucket, lockWriter);
    grantS3Access(api.function, bucket, lockWriter);
    const describeExecutions = new iam.PolicyStatement({
      actions: ['states:DescribeExecution'],
      resources: [
        Stack.of(this).formatArn({
          service: 'states',
          resource: 'execution',
          resourceName: `${stateMachine.stateMachineName}:*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
    });
    startTraining.function.addToRolePolicy(describeExecutions);
    // POST /datasets/{d}/reindex sends S3-style events of the images to backfill to the ingest queue.
    this.ingest.queue.grantSendMessages(api.function);
    api.function.addEnvironment(ENV.INGEST_QUEUE_URL, this.ingest.queue.queueUrl);

    grantS3Access(checkReadiness.function, bucket, {
      list: [DATASETS_PREFIX, FEATURES_PREFIX],
      read: [all(DATASETS_PREFIX), all(FEATURES_PREFIX)],
    });

    // train-head writes new versions; only promote-model moves the pointer.
    grantS3Access(trainHead.function, bucket, {
      list: [DATASETS_PREFIX, FEATURES_PREFIX],
      read: [all(FEATURES_PREFIX)],
      write: [all(MODELS_PREFIX)],
      denyWrite: [currentPointers],
    });

    grantS3Access(promoteModel.function, bucket, {
      list: [MODELS_PREFIX],
      read: [all(MODELS_PREFIX)],
      write: [currentPointers],
    });

    // Batch worker: reads the images of any dataset prefix, batch input or the inbox (the keys the
    // API listed into the manifest), the pinned model, and writes only under batches/ (parts,
    // results, summary).
    grantS3Access(batchPredict.function, bucket, {
      list: [BATCHES_PREFIX, ...baseModels],
      read: [DATASETS_PREFIX, BATCHES_PREFIX, MODELS_PREFIX, inboxPrefix, ...baseModels].map(all),
      write: [all(BATCHES_PREFIX)],
    });

    // Dead letters: HEAD the image, its feature and record; write only error records, delete a stale
    // feature (or, for a dead delete event, both); read a batch and its model's classes, write its parts
    // and results.
    grantS3Access(deadLetters.function, bucket, {
      list: [DATASETS_PREFIX, FEATURES_PREFIX, BATCHES_PREFIX, MODELS_PREFIX],
      read: [all(DATASETS_PREFIX), all(FEATURES_PREFIX), all(BATCHES_PREFIX), `${MODELS_PREFIX}*/model.json`],
      write: [`${FEATURES_PREFIX}*.error.json`, all(BATCHES_PREFIX)],
      delete: [`${FEATURES_PREFIX}*.npy`, `${FEATURES_PREFIX}*.error.json`],
    });

    // Drift: the monitoring records' keys (LIST only) and each version's report (its held-out set).
    grantS3Access(driftMetric.function, bucket, {
      list: [MONITORING_PREFIX, MODELS_PREFIX],
      read: [`${MODELS_PREFIX}*/report.json`],
    });

    // The API reads what it serves: images (predictions by key, counts), features (status counts),
    // models; base weights only from S3 when configured so. It writes only the pointers
    // (POST /datasets/{d}/model/promote, admin keys only), each version's one-file ONNX export
    // (GET /datasets/{d}/model/export, written once on its first request) and images: the
    // console's presigned uploads (POST /datasets/{d}/uploads) are signed by this role; and the
    // console's copy of onnxruntime-web's wasm (console/*, GET /console/ort/{file}, written once).
    const apiReads = [
      DATASETS_PREFIX,
      FEATURES_PREFIX,
      MODELS_PREFIX,
      BATCHES_PREFIX,
      CONSOLE_ASSETS_PREFIX,
      ...baseModels,
    ];
    // Closing the loop (lib/capture/): settings, captures and monitoring records are the API's
    // own; labelling a capture copies it into datasets/ and undoing deletes that copy only.
    // Suggestions read the pool and its features; labelling one moves it out of the pool.
    const loopPrefixes = [SETTINGS_PREFIX, CAPTURES_PREFIX, MONITORING_PREFIX];
    const poolPrefixes = [UNLABELLED_PREFIX, POOL_FEATURES_PREFIX];
    grantS3Access(api.function, bucket, {
      // The inbox: listed for a batch's manifest (POST /datasets/{d}/batches), never read.
      list: [...apiReads, inboxPrefix, ...loopPrefixes, ...poolPrefixes],
      read: [...apiReads, ...loopPrefixes, ...poolPrefixes].map(all),
      delete: [all(CAPTURES_PREFIX), `${DATASETS_PREFIX}*/capture-*`, ...poolPrefixes.map(all)],
      // batches/*: each batch's manifest.json (POST /datasets/{d}/batches).
      write: [
        currentPointers,
        `${MODELS_PREFIX}*/model.onnx`,
        all(DATASETS_PREFIX),
        all(BATCHES_PREFIX),
        all(CONSOLE_ASSETS_PREFIX),
        ...loopPrefixes.map(all),
      ],
    });
    stateMachine.grantStartExecution(api.function);
    // The console page, built into the container image by functions/Dockerfile.
    api.function.addEnvironment(ENV.CONSOLE_DIR, CONSOLE_IMAGE_DIR);
    // GET /datasets/{d} reports the newest training execution (status, error, cause).
    api.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['states:ListExecutions'],
        resources: [stateMachine.stateMachineArn],
      }),
    );
    api.function.addToRolePolicy(describeExecutions);
    // GET /datasets/{d}?timeline=true reads the phases of the newest execution from its history.
    api.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['states:GetExecutionHistory'],
        resources: describeExecutions.resources,
      }),
    );

    this.api = new PredictionApi(this, 'Api', {
      handler: api.function,
      stageName: props.api?.stageName,
      rateLimit: props.api?.rateLimit,
      burstLimit: props.api?.burstLimit,
      quotaPerDay: props.api?.quotaPerDay,
      stageRateLimit: props.api?.stageRateLimit,
      stageBurstLimit: props.api?.stageBurstLimit,
      manageCloudWatchRole: props.api?.manageCloudWatchRole,
      logRetention,
      logRemovalPolicy: removalPolicy,
    });
    // Scoped API keys (lib/api/keys-aws.ts): this stack's usage plan and tagged keys only.
    const keyStackTag = this.stackName;
    Tags.of(this.api.apiKey).add(KEY_STACK_TAG, keyStackTag);
    api.function.addEnvironment(ENV.KEY_STACK_TAG, keyStackTag);
    grantKeyManagement(this, 'ApiKeyManagement', {
      role: api.role,
      usagePlan: this.api.usagePlan,
      stackTag: keyStackTag,
    });
    // The console (served by the API at GET /) uploads straight to the bucket.
    this.data.allowBrowserUploads([
      `https://${this.api.api.restApiId}.execute-api.${Stack.of(this).region}.${Stack.of(this).urlSuffix}`,
    ]);

    this.monitoring =
      props.monitoring === false
        ? undefined
        : new Monitoring(this, 'Monitoring', {
            queues: [
              {
                name: 'ingest',
                queue: this.ingest.queue,
                deadLetterQueue: this.ingest.deadLetterQueue,
                deadLettersConsumed: true,
              },
              {
                name: 'features',
                queue: this.features.queue,
                deadLetterQueue: this.features.deadLetterQueue,
              },
              {
                name: 'batches',
                queue: this.batches.queue,
                deadLetterQueue: this.batches.deadLetterQueue,
                deadLettersConsumed: true,
              },
            ],
            functions: Object.fromEntries(Object.entries(this.functions).map(([n, f]) => [n, f.function])),
            stateMachine,
            api: this.api.api,
            drift: { function: driftMetric.function },
            alarmActions: props.alarmTopicArn
              ? [new cwActions.SnsAction(sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn))]
              : [],
          });

    new CfnOutput(this, 'ApiUrl', { value: this.api.api.url, description: 'Base URL of the HTTP API' });
    new CfnOutput(this, 'ApiKeyId', {
      value: this.api.apiKey.keyId,
      description: `API key id. Its value (the x-api-key header): aws apigateway get-api-key --api-key <ApiKeyId> --include-value --query value --output text --region ${this.region}`,
    });
    new CfnOutput(this, 'BucketName', {
      value: bucket.bucketName,
      description: 'Upload images to s3://<bucket>/datasets/{dataset}/{label}/',
    });
    new CfnOutput(this, 'StateMachineArn', {
      value: stateMachine.stateMachineArn,
      description: 'Training state machine',
    });
    new CfnOutput(this, 'IngestQueueUrl', {
      value: this.ingest.queue.queueUrl,
      description: 'S3 events of new images',
    });
    new CfnOutput(this, 'FeaturesQueueUrl', {
      value: this.features.queue.queueUrl,
      description: 'feature.ready / feature.failed messages',
    });

    this.addNagSuppressions(inboxPrefix);
  }

  /** Acknowledged cdk-nag findings, each with the reason it is acceptable here. */
  private addNagSuppressions(inboxPrefix: string): void {
    const bucketArn = '<DataBucket[A-Za-z0-9]+\\.Arn>';
    const prefixes = [
      DATASETS_PREFIX,
      FEATURES_PREFIX,
      MODELS_PREFIX,
      BASE_MODELS_PREFIX,
      LOCKS_PREFIX,
      BATCHES_PREFIX,
      CONSOLE_ASSETS_PREFIX,
      SETTINGS_PREFIX,
      CAPTURES_PREFIX,
      MONITORING_PREFIX,
      UNLABELLED_PREFIX,
      POOL_FEATURES_PREFIX,
      inboxPrefix,
    ]
      // The inbox is a user setting: its characters are matched literally.
      .map((p) => p.replace(/\/$/, '').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
      .join('|');
    for (const fn of Object.values(this.functions)) {
      NagSuppressions.addResourceSuppressions(
        fn.role,
        [
          {
            id: 'AwsSolutions-IAM5',
            reason:
              'S3 grants are scoped to one prefix of the S3 layout (datasets/*, features/*, models/*, base-models/*, locks/*, batches/*, console/*, settings/*, captures/*, monitoring/*, unlabelled/*, unlabelled-features/*, the batch inbox), to the models/*/current.json pointers, the models/*/model.onnx exports, the models/*/model.json heads, the models/*/report.json reports, the features/*.error.json records and features/*.npy features, or the datasets/*/capture-* copies of reviewed captures: the objects are created at run time, so the keys cannot be listed in the policy.',
            appliesTo: [
              {
                regex: `/^Resource::${bucketArn}\\/(${prefixes})\\/\\*(\\/current\\.json|\\/model\\.onnx|\\/model\\.json|\\/report\\.json|\\.error\\.json|\\.npy|\\/capture-\\*)?$/`,
              },
            ],
          },
          {
            id: 'AwsSolutions-IAM5',
            reason:
              "The API and start-training describe executions of this one state machine (a training's status and failure cause; whether a lock's holder still runs); execution names are made at run time, so they cannot be listed in the policy.",
            appliesTo: [{ regex: '/^Resource::arn:.+:states:.+:execution:<[A-Za-z0-9]+\\.Name>:\\*$/' }],
          },
          {
            id: 'AwsSolutions-IAM5',
            reason:
              "CDK's grantRead/grantWrite action groups (s3:GetObject*, s3:GetBucket*, s3:List*, s3:DeleteObject*, s3:Abort*) cover the object-level variants (versions, tagging) of one operation on the prefix above.",
            appliesTo: [
              'Action::s3:GetObject*',
              'Action::s3:GetBucket*',
              'Action::s3:List*',
              'Action::s3:DeleteObject*',
              'Action::s3:Abort*',
            ],
          },
        ],
        true,
      );
    }
    NagSuppressions.addResourceSuppressions(
      this.training.stateMachine,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'Step Functions invokes the task functions by ARN; CDK also allows their versions/aliases (function-arn:*), which the tasks never use but which are the same functions.',
          appliesTo: [{ regex: '/^Resource::<[A-Za-z0-9]+Function[A-Za-z0-9]+\\.Arn>:\\*$/' }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'X-Ray tracing and CloudWatch Logs delivery for Step Functions support no resource-level permissions (Resource: *).',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
    // Resources CDK adds for S3 notifications and autoDeleteObjects: singleton Lambda providers.
    const stack = Stack.of(this);
    for (const child of stack.node.children) {
      const id = child.node.id;
      if (id.startsWith('BucketNotificationsHandler') || id.startsWith('Custom::S3AutoDeleteObjects')) {
        NagSuppressions.addResourceSuppressions(
          child,
          [
            {
              id: 'AwsSolutions-IAM4',
              reason:
                'CDK-provided singleton custom resource (S3 notifications / auto-delete) uses AWSLambdaBasicExecutionRole for its own logs.',
              appliesTo: [
                'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
              ],
            },
            {
              id: 'AwsSolutions-IAM5',
              reason:
                'CDK-provided custom resource: s3:PutBucketNotification has no resource-level scoping beyond the bucket it configures.',
              appliesTo: ['Resource::*'],
            },
            {
              id: 'AwsSolutions-L1',
              reason: 'CDK-provided custom resource provider; its runtime is chosen by aws-cdk-lib.',
            },
          ],
          true,
        );
      }
    }
  }
}

function requireInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max} (got ${value})`);
  }
}

function pascal(name: string): string {
  return name
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}
