/**
 * The props of {@link TlearnStack} (infra/stack.ts), their defaults and their validation: what
 * every part of the stack (infra/parts/) reads.
 */
import { Duration, RemovalPolicy, type StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { BATCH_SETTINGS, DEFAULT_INBOX_PREFIX, inboxPrefixProblem } from '../lib/batch/settings.ts';
import { DRIFT_SETTINGS } from '../lib/capture/drift.ts';
import { defaultMemoryMb, FUNCTION_NAMES, type FunctionName, isFunctionName } from '../lib/functions.ts';
import { POOLINGS, type Pooling, PRECISIONS, type Precision } from '../lib/model/spec.ts';
import { DEAD_LETTER_SETTINGS, PIPELINE_SETTINGS } from '../lib/pipeline/settings.ts';

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
  'extract-features': {
    memorySize: defaultMemoryMb('extract-features'),
    timeout: Duration.seconds(T['extract-features']),
  },
  api: { memorySize: defaultMemoryMb('api'), timeout: Duration.seconds(T.api) },
  'start-training': {
    memorySize: defaultMemoryMb('start-training'),
    timeout: Duration.seconds(T['start-training']),
  },
  'check-readiness': {
    memorySize: defaultMemoryMb('check-readiness'),
    timeout: Duration.seconds(T['check-readiness']),
  },
  // Sized for 200,000 images x 8192 features: the compact matrix at the measured density is
  // ~6.2 GB (lib/training/capacity.ts; README "Scale and limits"); 10,240 MB (Lambda's maximum,
  // 6 vCPUs for the fit) holds ~288,000. Accounts still capped at 3,008 MB: about 75,000.
  'train-head': { memorySize: defaultMemoryMb('train-head'), timeout: Duration.seconds(T['train-head']) },
  'promote-model': {
    memorySize: defaultMemoryMb('promote-model'),
    timeout: Duration.seconds(T['promote-model']),
  },
  'finish-training': {
    memorySize: defaultMemoryMb('finish-training'),
    timeout: Duration.seconds(T['finish-training']),
  },
  'batch-predict': {
    memorySize: defaultMemoryMb('batch-predict'),
    timeout: Duration.seconds(BATCH_SETTINGS.timeoutSeconds),
  },
  'dead-letters': {
    memorySize: defaultMemoryMb('dead-letters'),
    timeout: Duration.seconds(DEAD_LETTER_SETTINGS.timeoutSeconds),
  },
  'drift-metric': {
    memorySize: defaultMemoryMb('drift-metric'),
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

/** The props every part of the stack needs, defaults applied and checked. */
export interface StackSettings {
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  readonly pooling: Pooling;
  readonly inputSize: number;
  readonly precision: Precision;
  readonly extractBatchSize: number;
  readonly baseModelUri: string;
  readonly inboxPrefix: string;
}

/** Applies the defaults of `props` and checks them; throws on a value the stack cannot deploy. */
export function resolveStackSettings(props: TlearnStackProps): StackSettings {
  const settings: StackSettings = {
    removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    pooling: props.pooling ?? 'flatten',
    inputSize: props.inputSize ?? 150,
    precision: props.precision ?? 'fp32',
    extractBatchSize: props.extractBatchSize ?? 8,
    baseModelUri: props.baseModelUri ?? IMAGE_BASE_MODEL_URI,
    inboxPrefix: props.inboxPrefix ?? DEFAULT_INBOX_PREFIX,
  };
  if (!POOLINGS.includes(settings.pooling)) {
    throw new Error(`pooling must be one of ${POOLINGS.join(', ')} (got '${settings.pooling}')`);
  }
  if (!PRECISIONS.includes(settings.precision)) {
    throw new Error(`precision must be one of ${PRECISIONS.join(', ')} (got '${settings.precision}')`);
  }
  requireInteger('inputSize', settings.inputSize, 32, 1024);
  requireInteger('extractBatchSize', settings.extractBatchSize, 1, 64);
  const inboxProblem = inboxPrefixProblem(settings.inboxPrefix);
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
  return settings;
}

function requireInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max} (got ${value})`);
  }
}
