import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { ConflictError } from '../errors.ts';
import { currentModelKey, MODEL_VERSION_RE } from '../storage/keys.ts';
import { isConditionFailed, putObject } from '../storage/s3.ts';

/**
 * `models/{d}/current.json`: which model version the API serves. Written by the promote step (and
 * by a rollback); read by the API and the CLI. `previous` is the version it replaced (null for
 * the first promotion), so a rollback is one rewrite.
 */
export const CurrentPointer = z.object({
  version: z.string().regex(MODEL_VERSION_RE, 'a model version like 20260101T000000Z-abc123'),
  promotedAt: z.string().datetime(),
  previous: z.string().regex(MODEL_VERSION_RE).nullable(),
});
export type CurrentPointer = z.infer<typeof CurrentPointer>;

/** `current.json` changed between its read and the write meant to replace it. */
export class PointerChangedError extends ConflictError {}

/**
 * The one writer of `models/{d}/current.json` (the promote step, `POST …/model/promote` and
 * `tlearn model --rollback` all go through it): points the dataset at `version`, remembering the
 * version it replaces as `previous`. The write is conditional on the object that was read
 * (`If-Match` its ETag; `If-None-Match: *` when there was none), so a pointer written in between
 * is never silently undone: that is a {@link PointerChangedError} and the caller reads again.
 *
 * @example await writeCurrentPointer(s3, bucket, 'pets', { version, now: new Date(), read })
 */
export async function writeCurrentPointer(
  s3: S3Client,
  bucket: string,
  dataset: string,
  next: {
    version: string;
    now: Date;
    /** The pointer as read and its ETag; `etag` alone when the object was there but unreadable. */
    read: { pointer?: CurrentPointer | undefined; etag: string } | undefined;
  },
): Promise<CurrentPointer> {
  const pointer: CurrentPointer = {
    version: next.version,
    promotedAt: next.now.toISOString(),
    previous: next.read?.pointer?.version ?? null,
  };
  try {
    await putObject(s3, bucket, currentModelKey(dataset), `${JSON.stringify(pointer, null, 2)}\n`, {
      contentType: 'application/json',
      ...(next.read ? { ifMatch: next.read.etag } : { ifNoneMatch: '*' as const }),
    });
  } catch (err) {
    if (isConditionFailed(err))
      throw new PointerChangedError(`models/${dataset}/current.json changed while it was being rewritten`, {
        code: 'PointerChanged',
        cause: err,
      });
    throw err;
  }
  return pointer;
}

/**
 * Orders model versions: they start with a UTC timestamp (`YYYYMMDDTHHMMSSZ-{shortid}`), so
 * string order is time order (versions of the same second order by their random suffix).
 */
export function compareVersions(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
