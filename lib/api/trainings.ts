/**
 * `POST /datasets/{d}/trainings`: starts the training state machine for one dataset by hand.
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import { ConflictError, TlearnError, UnsupportedMediaTypeError, ValidationError } from '../errors.ts';
import { datasetPrefix, parseImageKey } from '../storage/keys.ts';
import { listObjects } from '../storage/s3.ts';
import { datasetParam, formatIssues, mediaType, parseJsonBody, readBodyBytes } from './http.ts';
import { datasetNotFound } from './store.ts';
import type { RouteContext } from './types.ts';

/** Input of the training state machine (DESIGN.md "Training state machine"). */
export interface TrainingInput {
  dataset: string;
  trigger: 'auto' | 'manual';
  requestedAt: string;
}

/** The body, when one is sent: an empty JSON object (no options yet; unknown fields are refused). */
export const TrainingBody = z.object({}).strict();

/** Step Functions execution names: at most 80 characters of `[A-Za-z0-9-_]`. */
const MAX_EXECUTION_NAME = 80;

/** `20260101T101010Z`, the version-id style stamp (seconds). */
export function compactTimestamp(at: Date): string {
  const iso = at.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/**
 * `{d}-manual-{timestamp}`; a long dataset name is shortened so the name fits Step Functions'
 * 80-character limit (the full name is in the execution input).
 */
export function manualExecutionName(dataset: string, at: Date): string {
  const suffix = `-manual-${compactTimestamp(at)}`;
  return `${dataset.slice(0, MAX_EXECUTION_NAME - suffix.length)}${suffix}`;
}

function checkBody(event: APIGatewayProxyEvent, maxBytes: number): void {
  const bytes = readBodyBytes(event, maxBytes);
  if (bytes.length === 0) return;
  if (mediaType(event) !== 'application/json') {
    throw new UnsupportedMediaTypeError('send no body, or a JSON object with Content-Type: application/json');
  }
  const parsed = TrainingBody.safeParse(parseJsonBody(bytes));
  if (!parsed.success) {
    throw new ValidationError(`request body is invalid: ${formatIssues(parsed.error)}`, {
      code: 'InvalidBody',
    });
  }
}

async function hasImages(ctx: RouteContext, dataset: string): Promise<boolean> {
  for await (const o of listObjects(ctx.s3, ctx.config.bucket, datasetPrefix(dataset))) {
    if (parseImageKey(o.key).ok) return true;
  }
  return false;
}

/**
 * Starts a manual training. 404 when the dataset has no usable image; 409 when one was started for
 * the same dataset within the same second (Step Functions refuses a reused name with other input).
 */
export async function startTrainingRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ dataset: string; executionArn: string; executionName: string; startedAt: string }> {
  const dataset = datasetParam(event);
  checkBody(event, ctx.config.maxBodyBytes);
  if (!(await hasImages(ctx, dataset))) throw datasetNotFound(dataset);
  const now = ctx.now();
  const input: TrainingInput = { dataset, trigger: 'manual', requestedAt: now.toISOString() };
  const name = manualExecutionName(dataset, now);
  let out: Awaited<ReturnType<RouteContext['sfn']['send']>>;
  try {
    out = await ctx.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: ctx.config.stateMachineArn,
        name,
        input: JSON.stringify(input),
      }),
    );
  } catch (err) {
    if (err instanceof Error && err.name === 'ExecutionAlreadyExists') {
      throw new ConflictError(
        `a training of '${dataset}' was started a moment ago (${name}); retry in a second`,
        {
          code: 'TrainingAlreadyStarted',
          cause: err,
        },
      );
    }
    throw err;
  }
  if (!out.executionArn)
    throw new TlearnError('StartExecutionFailed', 'StartExecution returned no executionArn');
  ctx.log.info('training started', { dataset, executionArn: out.executionArn });
  return {
    dataset,
    executionArn: out.executionArn,
    executionName: name,
    startedAt: (out.startDate ?? now).toISOString(),
  };
}
