/**
 * `POST /datasets/{d}/reindex`: backfill. Sends one page of the dataset's images without a current
 * feature (or every image with `{"all": true}`) to the ingest queue; answers with the counts and a
 * `nextToken` to pass back (`{"token": …}`) until it is null. Each call stays well within API
 * Gateway's 29 s (lib/pipeline/reindex.ts).
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { type ReindexPage, reindexDataset } from '../pipeline/reindex.ts';
import { datasetNotFound } from '../serving/store.ts';
import { datasetParam } from './http.ts';
import { parseOptionalJsonBody } from './trainings.ts';
import type { RouteContext } from './types.ts';

/** The body, when one is sent. */
export const ReindexBody = z
  .object({
    /** Send every image, also those with a current feature (new weights or spec). */
    all: z.boolean().optional(),
    /** `nextToken` of the previous answer. */
    token: z.string().min(1).max(2048).optional(),
  })
  .strict();
export type ReindexBody = z.infer<typeof ReindexBody>;

/** One page of a reindex; 404 when the first page finds no key at all. */
export async function reindexRoute(event: APIGatewayProxyEvent, ctx: RouteContext): Promise<ReindexPage> {
  const dataset = datasetParam(event);
  const body: ReindexBody = parseOptionalJsonBody(event, ReindexBody, ctx.config.maxBodyBytes);
  const { ingestQueueUrl } = ctx.config;
  if (!ctx.sqs || !ingestQueueUrl)
    throw new ConfigError('reindex needs the ingest queue (TLEARN_INGEST_QUEUE_URL)');
  const page = await reindexDataset(
    dataset,
    { all: body.all === true, token: body.token },
    {
      s3: ctx.s3,
      sqs: ctx.sqs,
      bucket: ctx.config.bucket,
      region: await ctx.sqs.config.region(),
      ingestQueueUrl,
      log: ctx.log,
    },
  );
  if (body.token === undefined && page.scanned === 0) throw datasetNotFound(dataset);
  return page;
}
