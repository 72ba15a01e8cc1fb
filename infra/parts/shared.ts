/**
 * What the parts of the stack (infra/parts/*.ts) share: the stack they create their resources in,
 * its bucket and settings, and how a function of lib/functions.ts becomes a {@link TlearnFunction}.
 *
 * The parts are functions that create resources with the stack itself as scope, not Constructs of
 * their own: a resource nested under a new Construct gets a new logical ID, and CloudFormation
 * replaces a resource whose logical ID changes (the bucket, with the data in it).
 */
import type { Stack } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { ENV } from '../../lib/config.ts';
import { type FunctionName, handlerEntry, packageOf } from '../../lib/functions.ts';
import { BASE_MODELS_PREFIX, LOCKS_PREFIX, MODELS_PREFIX } from '../../lib/storage/keys.ts';
import { TlearnFunction } from '../constructs/tlearn-function.ts';
import { REPO_ROOT } from '../paths.ts';
import type { S3Access } from '../s3-access.ts';
import { DEFAULT_FUNCTION_SETTINGS, type StackSettings, type TlearnStackProps } from '../stack-props.ts';

/** The stack, its bucket and settings, as every part gets them. */
export interface StackContext {
  /** The scope of every resource a part creates. */
  readonly stack: Stack;
  readonly props: TlearnStackProps;
  readonly settings: StackSettings;
  readonly bucket: s3.Bucket;
}

/** Environment of the functions that read features: the bucket and the feature spec. */
export function featureEnvironment(ctx: StackContext): Record<string, string> {
  return {
    [ENV.BUCKET]: ctx.bucket.bucketName,
    [ENV.POOLING]: ctx.settings.pooling,
    [ENV.INPUT_SIZE]: String(ctx.settings.inputSize),
  };
}

/** Environment of the functions that run (or train for) VGG16: the feature spec and the model. */
export function modelEnvironment(ctx: StackContext): Record<string, string> {
  return {
    ...featureEnvironment(ctx),
    [ENV.BASE_MODEL_URI]: ctx.settings.baseModelUri,
    [ENV.EXTRACT_BATCH_SIZE]: String(ctx.settings.extractBatchSize),
    [ENV.PRECISION]: ctx.settings.precision,
  };
}

/**
 * One function of the app, sized by DEFAULT_FUNCTION_SETTINGS and the props, packaged as
 * lib/functions.ts says (zip asset or the container image). Its id is `{PascalName}Function`.
 */
export function createFunction(
  ctx: StackContext,
  name: FunctionName,
  environment: Record<string, string>,
): TlearnFunction {
  const sizing = { ...DEFAULT_FUNCTION_SETTINGS[name], ...ctx.props.functions?.[name] };
  const base = {
    name,
    memorySize: sizing.memorySize,
    timeout: sizing.timeout,
    reservedConcurrentExecutions: sizing.reservedConcurrentExecutions,
    environment,
    logRetention: ctx.settings.logRetention,
    logRemovalPolicy: ctx.settings.removalPolicy,
  };
  const id = `${pascal(name)}Function`;
  return packageOf(name) === 'image'
    ? new TlearnFunction(ctx.stack, id, {
        ...base,
        kind: 'image',
        buildContext: REPO_ROOT,
        buildArgs: ctx.props.imageBuildArgs,
      })
    : new TlearnFunction(ctx.stack, id, {
        ...base,
        kind: 'bundled',
        entry: `${REPO_ROOT}/${handlerEntry(name)}`,
        projectRoot: REPO_ROOT,
      });
}

/** Every key under `prefix` (a key pattern of infra/s3-access.ts). */
export function all(prefix: string): string {
  return `${prefix}*`;
}

/** Each dataset's served-version pointer: only promote-model and the API write it. */
export const CURRENT_POINTERS = `${MODELS_PREFIX}*/current.json`;

/**
 * The single-flight lock (lib/pipeline/training-lock.ts): conditional writes by start-training,
 * the API (manual trainings) and finish-training. Listing locks/ lets a missing lock answer 404
 * rather than 403 (it is created on first use).
 */
export const LOCK_WRITER: S3Access = {
  list: [LOCKS_PREFIX],
  read: [all(LOCKS_PREFIX)],
  write: [all(LOCKS_PREFIX)],
};

/** base-models/ when the stack loads the VGG16 weights from S3 (else none: they are in the image). */
export function baseModelPrefixes(ctx: StackContext): string[] {
  return ctx.settings.baseModelUri.startsWith('s3://') ? [BASE_MODELS_PREFIX] : [];
}

function pascal(name: string): string {
  return name
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}
