/**
 * `POST /datasets/{d}/batches` (202 `{ id, status }`) and `GET /datasets/{d}/batches/{id}`: batch
 * predictions over a prefix of the bucket (lib/batch/).
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { BatchStatus } from '../batch/layout.ts';
import { batchStatus, StartBatchBody, startBatch } from '../batch/start.ts';
import { TlearnError, ValidationError } from '../errors.ts';
import { missingModelError, readCurrentPointer } from '../serving/store.ts';
import { BATCH_ID_RE } from '../storage/keys.ts';
import { datasetParam, formatIssues, readJsonBody } from './http.ts';
import type { RouteContext } from './types.ts';

/** Starts a batch with the promoted model (409 without one). */
export async function startBatchRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ id: string; status: 'running' }> {
  const dataset = datasetParam(event);
  const parsed = StartBatchBody.safeParse(readJsonBody(event, 64 * 1024));
  if (!parsed.success) {
    throw new ValidationError(
      `request body is invalid: ${formatIssues(parsed.error)}; send { "prefix": "datasets/${dataset}/…" }`,
      { code: 'InvalidBody' },
    );
  }
  if (ctx.batches === undefined) {
    throw new TlearnError('BatchesUnavailable', 'this API was started without a batch queue', 501);
  }
  const { s3 } = ctx;
  const { bucket } = ctx.config;
  const current = await readCurrentPointer(s3, bucket, dataset);
  if (current === undefined) throw await missingModelError(s3, bucket, dataset);
  return startBatch(
    {
      s3,
      bucket,
      sqs: ctx.batches.sqs,
      queueUrl: ctx.batches.queueUrl,
      now: ctx.now,
      ...(ctx.batches.inboxPrefix !== undefined ? { inboxPrefix: ctx.batches.inboxPrefix } : {}),
    },
    dataset,
    parsed.data,
    current.pointer.version,
  );
}

/** The status of a batch (counts while it runs; the result keys once `succeeded`). */
export async function getBatchRoute(event: APIGatewayProxyEvent, ctx: RouteContext): Promise<BatchStatus> {
  const dataset = datasetParam(event);
  const id = event.pathParameters?.id ?? '';
  if (!BATCH_ID_RE.test(id)) {
    throw new ValidationError(
      `batch id must look like 20261206T225700Z-ab12cd34 (got '${id.slice(0, 40)}')`,
      {
        code: 'InvalidBatchId',
      },
    );
  }
  return batchStatus(ctx.s3, ctx.config.bucket, dataset, id);
}
