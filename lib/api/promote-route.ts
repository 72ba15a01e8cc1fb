/**
 * `POST /datasets/{d}/model/promote {version}`: serve another version (a rollback is promoting the
 * previous one). Admin only. The pointer is rewritten with a conditional write on the ETag read, so
 * a promotion that happened meanwhile is never overwritten silently (409, retry).
 */
import { PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '../errors.ts';
import type { CurrentPointer } from '../pipeline/current-pointer.ts';
import { currentModelKey, MODEL_VERSION_RE, modelFileKey } from '../storage/keys.ts';
import { headObject } from '../storage/s3.ts';
import { datasetParam, parseJsonBody, parseWith, readBodyBytes } from './http.ts';
import { readCurrentPointer } from './store.ts';
import type { RouteContext } from './types.ts';

const PromoteBody = z
  .object({ version: z.string().regex(MODEL_VERSION_RE, 'a model version like 20261128T100000Z-ab12cd') })
  .strict();

/** Promotes a trained version of the dataset; answers the new pointer. */
export async function promoteRoute(event: APIGatewayProxyEvent, ctx: RouteContext): Promise<CurrentPointer> {
  const dataset = datasetParam(event);
  const { version } = parseWith(PromoteBody, parseJsonBody(readBodyBytes(event, 4096)), 'promote request');
  const { s3 } = ctx;
  const { bucket } = ctx.config;
  if ((await headObject(s3, bucket, modelFileKey(dataset, version, 'model.json'))) === undefined) {
    throw new NotFoundError(
      `dataset '${dataset}' has no trained version ${version}; see GET /datasets/${dataset}`,
      {
        code: 'ModelVersionNotFound',
      },
    );
  }
  const current = await readCurrentPointer(s3, bucket, dataset);
  if (current?.pointer.version === version) return current.pointer;
  const pointer: CurrentPointer = {
    version,
    promotedAt: ctx.now().toISOString(),
    previous: current?.pointer.version ?? null,
  };
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: currentModelKey(dataset),
        Body: `${JSON.stringify(pointer, null, 2)}\n`,
        ContentType: 'application/json',
        ...(current ? { IfMatch: current.etag } : { IfNoneMatch: '*' }),
      }),
    );
  } catch (err) {
    const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
    if (status === 412 || status === 409) {
      throw new ConflictError(
        `another promotion of '${dataset}' happened meanwhile; check GET /datasets/${dataset}/model and retry`,
        {
          code: 'PromotionConflict',
          cause: err,
        },
      );
    }
    throw err;
  }
  return pointer;
}
