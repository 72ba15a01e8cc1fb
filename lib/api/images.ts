/**
 * `GET /datasets/{d}/images?key=…&size=…`: a thumbnail of one of the dataset's images (the console's
 * confusion-matrix drill-down and "most confidently wrong" lists) or of one of its captures (review). Resized with sharp, EXIF-rotated,
 * JPEG, with caching headers; the key must name an image of this dataset (403 otherwise).
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import sharp from 'sharp';
import { z } from 'zod';
import { isPoolKey } from '../capture/suggestions.ts';
import { ImageDecodeError, NotFoundError, TlearnError } from '../errors.ts';
import { MAX_IMAGE_BYTES } from '../images/limits.ts';
import { capturesPrefix } from '../storage/keys.ts';
import { getObject, ObjectTooLargeError } from '../storage/s3.ts';
import { datasetParam, getHeader, parseWith } from './http.ts';
import { checkImageKey } from './predict.ts';
import type { RouteContext } from './types.ts';

/** Thumbnail sizes (longest side, pixels). */
export const THUMBNAIL_MIN = 16;
export const THUMBNAIL_MAX = 512;
export const THUMBNAIL_DEFAULT = 128;
/** Browsers keep a thumbnail this long; the ETag (image ETag + size) revalidates it after. */
const MAX_AGE_SECONDS = 3600;

/** `GET /datasets/{d}/images` query. */
export const ThumbnailQuery = z.object({
  key: z.string().min(1).max(1024),
  size: z.coerce.number().int().min(THUMBNAIL_MIN).max(THUMBNAIL_MAX).default(THUMBNAIL_DEFAULT),
});

/** `GET /datasets/{d}/images?key=datasets/{d}/…&size=128` → `image/jpeg`. */
export async function thumbnailRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<APIGatewayProxyResult> {
  const dataset = datasetParam(event);
  const q = parseWith(ThumbnailQuery, event.queryStringParameters ?? {}, 'query');
  // A captured prediction's image (the review grid) or one of the dataset's images.
  const key =
    (q.key.startsWith(capturesPrefix(dataset)) && !q.key.includes('..')) || isPoolKey(q.key, dataset)
      ? q.key
      : checkImageKey(q.key, dataset);
  let obj: Awaited<ReturnType<typeof getObject>>;
  try {
    obj = await getObject(ctx.s3, ctx.config.bucket, key, { maxBytes: MAX_IMAGE_BYTES });
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new NotFoundError(`image '${key.slice(0, 200)}' does not exist`, {
        code: 'ImageNotFound',
        cause: err,
      });
    if (err instanceof ObjectTooLargeError)
      throw new ImageDecodeError(
        'ImageTooLarge',
        `image '${key.slice(0, 200)}' is over the stored-image limit`,
        {
          cause: err,
        },
      );
    throw err;
  }
  const etag = `"${obj.etag}-${q.size}"`;
  const cacheHeaders = { etag, 'cache-control': `private, max-age=${MAX_AGE_SECONDS}` };
  if (getHeader(event, 'if-none-match') === etag) return { statusCode: 304, headers: cacheHeaders, body: '' };
  let jpeg: Buffer;
  try {
    jpeg = await sharp(obj.body, { limitInputPixels: ctx.config.limitInputPixels, failOn: 'error' })
      .rotate()
      .resize(q.size, q.size, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 80 })
      .toBuffer();
  } catch (err) {
    throw new TlearnError('CorruptImage', `image '${key.slice(0, 200)}' cannot be decoded`, 422, {
      cause: err,
    });
  }
  return {
    statusCode: 200,
    headers: { 'content-type': 'image/jpeg', ...cacheHeaders },
    body: jpeg.toString('base64'),
    isBase64Encoded: true,
  };
}
