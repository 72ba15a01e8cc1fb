/**
 * `POST /datasets/{d}/uploads`: presigned S3 PUT URLs for images, so a browser (the console) or any
 * client uploads straight to the bucket, never through the 6 MB API. The keys follow the S3 layout
 * (`datasets/{d}/{label}/{file}`); the upload then raises the same ObjectCreated event as `aws s3 cp`.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import { MAX_IMAGE_BYTES } from '../images/limits.ts';
import { imageKey, parseImageKey } from '../storage/keys.ts';
import { imageContentType } from '../upload/content-type.ts';
import { datasetParam, parseWith, readJsonBody } from './http.ts';
import type { PresignedUpload, UploadsResponse } from './schemas.ts';
import type { RouteContext } from './types.ts';

/** Files per request: one request of the console per batch of dropped files. */
export const MAX_UPLOADS_PER_REQUEST = 500;
/** How long a presigned PUT URL stays valid. */
export const UPLOAD_URL_SECONDS = 900;
/**
 * Largest image accepted for upload, bytes: each presigned PUT signs the file's `content-length`,
 * so S3 refuses any other body size (the extractor's 40-megapixel limit applies too).
 */
export const MAX_UPLOAD_BYTES = MAX_IMAGE_BYTES;

/** `POST /datasets/{d}/uploads` body. */
export const UploadRequest = z.object({
  files: z
    .array(
      z.object({
        label: z.string().min(1).max(100),
        /** File name, may include sub-folders below the label (`a/b.jpg`). */
        name: z.string().min(1).max(500),
        /** Exact size of the body the PUT will send (signed: another size is refused by S3). */
        size: z
          .number()
          .int()
          .positive('an image cannot be empty')
          .max(MAX_UPLOAD_BYTES, 'an image is at most 50 MB'),
        /** Overwrite an object of the same key; without it the PUT fails (412) when one exists. */
        replace: z.boolean().optional(),
      }),
    )
    .min(1, 'send at least one file')
    .max(MAX_UPLOADS_PER_REQUEST, `at most ${MAX_UPLOADS_PER_REQUEST} files per request`),
});

export type { PresignedUpload, UploadsResponse } from './schemas.ts';

/** Query parameters the SDK's default checksums add to a PutObject (see {@link presignPut}). */
const CHECKSUM_HEADER_RE = /^x-amz-(checksum-|sdk-checksum-algorithm$)/i;

/**
 * A presigned PUT of one image that signs its type, its exact size and (unless `replace`)
 * `If-None-Match: *`. The SDK (since 3.729) adds the CRC32 of the body it has, an empty one when
 * presigning, to the URL: S3 would refuse every real upload as a checksum mismatch, so those
 * parameters are dropped before signing.
 */
async function presignPut(
  ctx: RouteContext,
  key: string,
  contentType: string,
  size: number,
  replace: boolean,
): Promise<string> {
  const command = new PutObjectCommand({
    Bucket: ctx.config.bucket,
    Key: key,
    ContentType: contentType,
    ContentLength: size,
    ...(replace ? {} : { IfNoneMatch: '*' }),
  });
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      for (const name of Object.keys(request.headers ?? {})) {
        if (CHECKSUM_HEADER_RE.test(name)) delete request.headers?.[name];
      }
      return next(args);
    },
    { step: 'build', priority: 'low', name: 'dropPresignChecksum' },
  );
  const signed = ['content-type', 'content-length', ...(replace ? [] : ['if-none-match'])];
  return getSignedUrl(ctx.s3, command, { expiresIn: UPLOAD_URL_SECONDS, signableHeaders: new Set(signed) });
}

/**
 * `POST /datasets/{d}/uploads` `{files: [{label, name, size, replace?}]}` → presigned PUT URLs.
 * Names are NFC-normalized; the same key twice in one request is rejected (the second would
 * silently replace the first).
 */
export async function createUploadsRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<UploadsResponse> {
  const dataset = datasetParam(event);
  const body = parseWith(UploadRequest, readJsonBody(event, ctx.config.maxBodyBytes), 'upload request');
  const uploads: PresignedUpload[] = [];
  const rejected: UploadsResponse['rejected'] = [];
  const seen = new Set<string>();
  for (const f of body.files) {
    // NFC like the CLI (lib/upload/scan.ts): macOS hands out decomposed names, `café` is one label.
    const label = f.label.normalize('NFC');
    const name = f.name.normalize('NFC');
    const key = imageKey(dataset, label, name);
    const parsed = parseImageKey(key);
    const contentType = imageContentType(name);
    if (!parsed.ok || parsed.image.label !== label || contentType === undefined) {
      rejected.push({
        name,
        label,
        reason: parsed.ok ? `'${name}' is not an image name` : parsed.detail,
      });
      continue;
    }
    if (seen.has(key)) {
      rejected.push({ name, label, reason: `'${label}/${name}' appears more than once in this request` });
      continue;
    }
    seen.add(key);
    const replace = f.replace === true;
    uploads.push({
      name,
      label,
      key,
      method: 'PUT',
      url: await presignPut(ctx, key, contentType, f.size, replace),
      headers: { 'content-type': contentType, ...(replace ? {} : { 'if-none-match': '*' }) },
      size: f.size,
      replace,
    });
  }
  return {
    dataset,
    expiresAt: new Date(ctx.now().getTime() + UPLOAD_URL_SECONDS * 1000).toISOString(),
    uploads,
    rejected,
  };
}
