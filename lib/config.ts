import { totalmem } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { DEFAULT_INPUT_SIZE, POOLINGS, type Pooling, PRECISIONS, type Precision } from './model/spec.ts';
import type { BackendName, WeightsSource } from './model/types.ts';
import { DEFAULT_TARGET_PRECISION } from './training/thresholds.ts';

/**
 * Every environment variable the code reads, by name. `infra/` imports these constants to set
 * them on the functions, so the stack and the code cannot drift. Nothing else reads process.env.
 */
export const ENV = {
  /** The one bucket (datasets/, features/, models/, base-models/). Required by every function. */
  BUCKET: 'TLEARN_BUCKET',
  /** AWS region; set by Lambda itself, by the local stack locally. */
  REGION: 'AWS_REGION',
  /** SDK endpoint override (local stack only: loopback S3+SQS emulator). */
  ENDPOINT: 'AWS_ENDPOINT_URL',
  /** Step Functions endpoint override (local stack only: the loopback state machine runner). */
  SFN_ENDPOINT: 'AWS_ENDPOINT_URL_SFN',
  /** Queue the extractor sends feature.ready / feature.failed to. */
  FEATURES_QUEUE_URL: 'TLEARN_FEATURES_QUEUE_URL',
  /** Queue of batch-prediction chunks: the API sends to it, batch-predict consumes it. */
  BATCH_QUEUE_URL: 'TLEARN_BATCH_QUEUE_URL',
  /** Training state machine (start-training and the API's POST /trainings). */
  STATE_MACHINE_ARN: 'TLEARN_STATE_MACHINE_ARN',
  /** tfjs layers model: directory, file://…/model.json or s3://bucket/key/model.json. */
  BASE_MODEL_URI: 'BASE_MODEL_URI',
  /** `uri` (default: use BASE_MODEL_URI) or `random:SEED` (explicit opt-in to seeded random weights). */
  WEIGHTS: 'TLEARN_WEIGHTS',
  /** flatten | avg | max. @default flatten */
  POOLING: 'TLEARN_POOLING',
  /** Square input size in pixels. @default 150 */
  INPUT_SIZE: 'TLEARN_INPUT_SIZE',
  /**
   * fp32 | int8: the forward pass's arithmetic. int8 runs the quantized graph on onnxruntime, its
   * spec ends in `/int8` (features and models never mix with fp32 ones). Every function that
   * extracts or trains reads it, and the local stack too (docs/ARCHITECTURE.md, "The int8
   * engine"). @default fp32
   */
  PRECISION: 'TLEARN_PRECISION',
  /** Force an inference engine: tensorflow | onnx | wasm | cpu. @default the first that loads, in that order */
  BACKEND: 'TLEARN_BACKEND',
  /** Images per forward pass in the extractor. @default 8 */
  EXTRACT_BATCH_SIZE: 'TLEARN_EXTRACT_BATCH_SIZE',
  /** Queue the API's reindex sends S3-style events of images to (POST /datasets/{d}/reindex). */
  INGEST_QUEUE_URL: 'TLEARN_INGEST_QUEUE_URL',
  /** Concurrent S3 reads when loading features for training. @default 32 */
  FEATURE_CONCURRENCY: 'TLEARN_FEATURE_CONCURRENCY',
  /** Refit on all samples after evaluating on the holdout. @default false */
  REFIT_ON_ALL: 'TLEARN_REFIT_ON_ALL',
  /** Logistic regression C. @default 1.0 */
  TRAIN_C: 'TLEARN_TRAIN_C',
  /** L-BFGS iterations. @default 100 */
  TRAIN_MAX_ITER: 'TLEARN_TRAIN_MAX_ITER',
  /** Precision the per-class confidence thresholds aim for. @default 0.95 */
  TARGET_PRECISION: 'TLEARN_TARGET_PRECISION',
  /** Cosine similarity from which quality.json calls two images near duplicates. @default 0.994 (lib/quality) */
  NEAR_DUPLICATE_THRESHOLD: 'TLEARN_NEAR_DUPLICATE_THRESHOLD',
  /** Set by Lambda: the function's configured memory in MB (the trainer sizes its limit from it). */
  LAMBDA_MEMORY_MB: 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  /** API: seconds between checks of a dataset's current.json. @default 5 (0 = every request) */
  MODEL_REFRESH_SECONDS: 'TLEARN_MODEL_REFRESH_SECONDS',
  /** API: `Access-Control-Allow-Origin` value; unset = no CORS headers. */
  CORS_ORIGIN: 'TLEARN_CORS_ORIGIN',
  /** Timeout of every AWS SDK call, milliseconds. @default 10000 */
  AWS_TIMEOUT_MS: 'TLEARN_AWS_TIMEOUT_MS',
  /** API, local stack only: scoped API keys live in this JSON file instead of API Gateway. */
  API_KEYS_FILE: 'TLEARN_API_KEYS_FILE',
  /**
   * AWS: the value of the `tlearn-stack` tag the API puts on every key it creates (the stack's
   * name). The API role may read, delete and create only keys with this tag (infra/stack.ts).
   */
  KEY_STACK_TAG: 'TLEARN_KEY_STACK_TAG',
  /** API: folder of the built console served at `GET /` (the container image sets it). */
  CONSOLE_DIR: 'TLEARN_CONSOLE_DIR',
  /** API: the prefix of images to batch-score that belong to no dataset. @default inbox/ (lib/batch/settings.ts) */
  INBOX_PREFIX: 'TLEARN_INBOX_PREFIX',
} as const;

/** CloudWatch namespace of every metric the functions emit (the dashboard reads the same). */
export const METRICS_NAMESPACE = 'Tlearn';

type Env = Record<string, string | undefined>;

/**
 * The one reader of an environment variable: `schema` validates it (an empty value counts as
 * unset) and a bad value fails at cold start with a ConfigError naming the variable. Modules
 * with settings of their own (lib/api/config.ts) read through it.
 */
export function readEnv<S extends z.ZodTypeAny>(env: Env, name: string, schema: S): z.output<S> {
  const result = schema.safeParse(env[name] === '' ? undefined : env[name]);
  if (!result.success) {
    const msg = result.error.issues.map((i) => i.message).join('; ');
    throw new ConfigError(
      `environment variable ${name} is invalid: ${msg} (got ${JSON.stringify(env[name] ?? null)})`,
    );
  }
  return result.data;
}

const required = (what: string) =>
  z.string({ required_error: `required (${what})` }).min(1, `required (${what})`);
const int = (min: number, max: number, dflt: number) =>
  z.coerce.number().int().min(min).max(max).default(dflt);
const bool = (dflt: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(dflt ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

/** Storage settings every function needs. */
export interface StorageConfig {
  bucket: string;
  region: string;
  endpoint: string | undefined;
  /** Step Functions endpoint (local stack); defaults to `endpoint`. */
  sfnEndpoint?: string | undefined;
  awsTimeoutMs: number;
}

function loopbackUrl(env: Env, name: string): string | undefined {
  const url = readEnv(env, name, z.string().url().optional());
  if (url !== undefined) {
    const host = new URL(url).hostname;
    if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
      throw new ConfigError(
        `environment variable ${name} must point at loopback (got host '${host}'); unset it for AWS`,
      );
    }
  }
  return url;
}

/** Reads the bucket, region, optional loopback endpoint and SDK timeout. */
export function loadStorageConfig(env: Env = process.env): StorageConfig {
  const endpoint = loopbackUrl(env, ENV.ENDPOINT);
  const sfnEndpoint = loopbackUrl(env, ENV.SFN_ENDPOINT) ?? endpoint;
  return {
    bucket: readEnv(env, ENV.BUCKET, required('the S3 bucket name')),
    region: readEnv(env, ENV.REGION, required('the AWS region, e.g. eu-west-1')),
    endpoint,
    sfnEndpoint,
    awsTimeoutMs: readEnv(env, ENV.AWS_TIMEOUT_MS, int(100, 900_000, 10_000)),
  };
}

/** Base model settings of the extractor and the API. */
export interface ModelConfig {
  weights: WeightsSource;
  pooling: Pooling;
  inputSize: number;
  /** fp32 (default) or int8 (ENV.PRECISION). */
  precision: Precision;
  backend: BackendName | undefined;
  extractBatchSize: number;
}

/** Reads only the forced tensor backend (TLEARN_BACKEND), for tools that need no model source. */
export function loadBackendConfig(env: Env = process.env): { backend: BackendName | undefined } {
  return { backend: readEnv(env, ENV.BACKEND, z.enum(['tensorflow', 'onnx', 'wasm', 'cpu']).optional()) };
}

/** Reads the base model source, pooling, input size and backend. */
export function loadModelConfig(env: Env = process.env): ModelConfig {
  const weightsMode = readEnv(
    env,
    ENV.WEIGHTS,
    z
      .string()
      .regex(/^(uri|random:\d{1,9})$/, "'uri' or 'random:SEED'")
      .default('uri'),
  );
  let weights: WeightsSource;
  if (weightsMode.startsWith('random:')) {
    weights = { kind: 'random', seed: Number(weightsMode.slice('random:'.length)) };
  } else {
    weights = {
      kind: 'uri',
      uri: readEnv(env, ENV.BASE_MODEL_URI, required('where the VGG16 tfjs model lives')),
    };
  }
  return {
    weights,
    pooling: readEnv(env, ENV.POOLING, z.enum(POOLINGS as [Pooling, ...Pooling[]]).default('flatten')),
    inputSize: readEnv(env, ENV.INPUT_SIZE, int(32, 1024, DEFAULT_INPUT_SIZE)),
    precision: readEnv(env, ENV.PRECISION, z.enum(PRECISIONS as [Precision, ...Precision[]]).default('fp32')),
    backend: loadBackendConfig(env).backend,
    extractBatchSize: loadExtractBatchSize(env),
  };
}

/** Images per forward pass (the extractor's batches, the API's inference queue). @default 8 */
export function loadExtractBatchSize(env: Env = process.env): number {
  return readEnv(env, ENV.EXTRACT_BATCH_SIZE, int(1, 64, 8));
}

/** Extractor-only settings. */
export interface ExtractorConfig {
  featuresQueueUrl: string;
}

export function loadExtractorConfig(env: Env = process.env): ExtractorConfig {
  return { featuresQueueUrl: readEnv(env, ENV.FEATURES_QUEUE_URL, required('the features queue URL')) };
}

/** start-training and API: the state machine to start. */
export interface StateMachineConfig {
  stateMachineArn: string;
}

export function loadStateMachineConfig(env: Env = process.env): StateMachineConfig {
  return {
    stateMachineArn: readEnv(env, ENV.STATE_MACHINE_ARN, required('the training state machine ARN')),
  };
}

/** API: the ingest queue reindex sends to (optional: without it, reindex answers 503). */
export function loadIngestQueueConfig(env: Env = process.env): { ingestQueueUrl: string | undefined } {
  return { ingestQueueUrl: readEnv(env, ENV.INGEST_QUEUE_URL, z.string().url().optional()) };
}

/** Trainer settings. */
export interface TrainingConfig {
  featureConcurrency: number;
  refitOnAll: boolean;
  C: number;
  maxIter: number;
  /** @default 0.95 */
  targetPrecision?: number;
  /** Unset: the quality pass's default (DEFAULT_QUALITY_SETTINGS.nearThreshold). */
  nearDuplicateThreshold?: number;
  /**
   * Memory the trainer may use, bytes: the Lambda function's configured memory, else this
   * machine's. @default os.totalmem()
   */
  memoryBytes?: number;
}

export function loadTrainingConfig(env: Env = process.env): TrainingConfig {
  const near = readEnv(env, ENV.NEAR_DUPLICATE_THRESHOLD, z.coerce.number().min(0).max(1).optional());
  const lambdaMb = readEnv(env, ENV.LAMBDA_MEMORY_MB, z.coerce.number().int().min(128).optional());
  return {
    ...(near !== undefined ? { nearDuplicateThreshold: near } : {}),
    featureConcurrency: readEnv(env, ENV.FEATURE_CONCURRENCY, int(1, 256, 32)),
    refitOnAll: readEnv(env, ENV.REFIT_ON_ALL, bool(false)),
    C: readEnv(env, ENV.TRAIN_C, z.coerce.number().positive().default(1.0)),
    maxIter: readEnv(env, ENV.TRAIN_MAX_ITER, int(1, 10_000, 100)),
    targetPrecision: readEnv(
      env,
      ENV.TARGET_PRECISION,
      z.coerce.number().gt(0).max(1).default(DEFAULT_TARGET_PRECISION),
    ),
    memoryBytes: lambdaMb !== undefined ? lambdaMb * 2 ** 20 : totalmem(),
  };
}
