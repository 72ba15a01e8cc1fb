/**
 * `POST /datasets/{d}/trainings`: starts the training state machine for one dataset by hand,
 * through the dataset's single-flight lock (409 `TrainingInProgress` while one runs).
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import { ConflictError, UnsupportedMediaTypeError, ValidationError } from '../errors.ts';
import { requestTraining } from '../pipeline/training-lock.ts';
import { datasetNotFound } from '../serving/store.ts';
import { datasetPrefix, parseImageKey } from '../storage/keys.ts';
import { listObjects } from '../storage/s3.ts';
import { datasetParam, formatIssues, mediaType, parseJsonBody, readBodyBytes } from './http.ts';
import type { RouteContext } from './types.ts';

/** The body, when one is sent: an empty JSON object (no options yet; unknown fields are refused). */
export const TrainingBody = z.object({}).strict();

/**
 * An optional JSON body: none at all is `{}`; otherwise it must be `application/json` and match
 * `schema` (unknown fields refused when the schema is strict).
 */
export function parseOptionalJsonBody<S extends z.ZodTypeAny>(
  event: APIGatewayProxyEvent,
  schema: S,
  maxBytes: number,
): z.output<S> | Record<string, never> {
  const bytes = readBodyBytes(event, maxBytes);
  if (bytes.length === 0) return {};
  if (mediaType(event) !== 'application/json') {
    throw new UnsupportedMediaTypeError('send no body, or a JSON object with Content-Type: application/json');
  }
  const parsed = schema.safeParse(parseJsonBody(bytes));
  if (!parsed.success) {
    throw new ValidationError(`request body is invalid: ${formatIssues(parsed.error)}`, {
      code: 'InvalidBody',
    });
  }
  return parsed.data;
}

async function hasImages(ctx: RouteContext, dataset: string): Promise<boolean> {
  for await (const o of listObjects(ctx.s3, ctx.config.bucket, datasetPrefix(dataset))) {
    if (parseImageKey(o.key).ok) return true;
  }
  return false;
}

/**
 * Starts a manual training. 404 when the dataset has no usable image; 409 `TrainingInProgress`
 * (naming the running execution) while a training of the dataset runs: that run already trains
 * again on whatever arrives meanwhile, so a second execution would only race it.
 */
export async function startTrainingRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ dataset: string; executionArn: string; executionName: string; startedAt: string }> {
  const dataset = datasetParam(event);
  parseOptionalJsonBody(event, TrainingBody, ctx.config.maxBodyBytes);
  if (!(await hasImages(ctx, dataset))) throw datasetNotFound(dataset);
  const now = ctx.now();
  const r = await requestTraining(
    dataset,
    'manual',
    { whenRunning: 'refuse' },
    {
      s3: ctx.s3,
      bucket: ctx.config.bucket,
      sfn: ctx.sfn,
      stateMachineArn: ctx.config.stateMachineArn,
      log: ctx.log,
      now: ctx.now,
    },
  );
  if (r.status !== 'started') {
    throw new ConflictError(
      `a training of '${dataset}' is running (execution ${r.executionName}); it trains again on images that arrive meanwhile, so wait for it (tlearn status ${dataset}) instead of starting another`,
      { code: 'TrainingInProgress' },
    );
  }
  ctx.log.info('training started', { dataset, executionArn: r.executionArn });
  return {
    dataset,
    executionArn: r.executionArn,
    executionName: r.executionName,
    startedAt: now.toISOString(),
  };
}
