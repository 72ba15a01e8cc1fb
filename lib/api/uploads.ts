/**
 * `POST /datasets/{d}/uploads`: presigned S3 PUT URLs for images, so a browser (the console) or any
 * client uploads straight to the bucket, never through the 6 MB API. The keys follow the S3 layout
 * (`datasets/{d}/{label}/{file}`); the upload then raises the same ObjectCreated event as `aws s3 cp`.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import { imageKey, parseImageKey } from '../storage/keys.ts';
import { imageContentType } from '../upload/content-type.ts';
import { datasetParam, parseJsonBody, parseWith, readBodyBytes } from './http.ts';
import type { PresignedUpload, UploadsResponse } from './schemas.ts';
import type { RouteContext } from './types.ts';

/** Files per request: one request of the console per batch of dropped files. */
export const MAX_UPLOADS_PER_REQUEST = 500;
/** How long a presigned PUT URL stays valid. */
export const UPLOAD_URL_SECONDS = 900;
/** Largest image accepted for upload, bytes (the extractor's 40-megapixel limit applies too). */
export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

/** `POST /datasets/{d}/uploads` body. */
export const UploadRequest = z.object({
  files: z
    .array(
      z.object({
        label: z.string().min(1).max(100),
        /** File name, may include sub-folders below the label (`a/b.jpg`). */
        name: z.string().min(1).max(500),
        size: z.number().int().nonnegative().max(MAX_UPLOAD_BYTES, 'an image is at most 50 MB').optional(),
      }),
    )
    .min(1, 'send at least one file')
    .max(MAX_UPLOADS_PER_REQUEST, `at most ${MAX_UPLOADS_PER_REQUEST} files per request`),
});

export type { PresignedUpload, UploadsResponse } from './schemas.ts';

/** `POST /datasets/{d}/uploads` `{files: [{label, name, size?}]}` → presigned PUT URLs. */
export async function createUploadsRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<UploadsResponse> {
  const dataset = datasetParam(event);
  const body = parseWith(
    UploadRequest,
    parseJsonBody(readBodyBytes(event, ctx.config.maxBodyBytes)),
    'upload request',
  );
  const uploads: PresignedUpload[] = [];
  const rejected: UploadsResponse['rejected'] = [];
  for (const f of body.files) {
    const key = imageKey(dataset, f.label, f.name);
    const parsed = parseImageKey(key);
    const contentType = imageContentType(f.name);
    if (!parsed.ok || parsed.image.label !== f.label || contentType === undefined) {
      rejected.push({
        name: f.name,
        label: f.label,
        reason: parsed.ok ? `'${f.name}' is not an image name` : parsed.detail,
      });
      continue;
    }
    const url = await getSignedUrl(
      ctx.s3,
      new PutObjectCommand({ Bucket: ctx.config.bucket, Key: key, ContentType: contentType }),
      { expiresIn: UPLOAD_URL_SECONDS, signableHeaders: new Set(['content-type']) },
    );
    uploads.push({
      name: f.name,
      label: f.label,
      key,
      method: 'PUT',
      url,
      headers: { 'content-type': contentType },
    });
  }
  return {
    dataset,
    expiresAt: new Date(ctx.now().getTime() + UPLOAD_URL_SECONDS * 1000).toISOString(),
    uploads,
    rejected,
  };
}
