import { z } from 'zod';
import { normalizeEtag } from '../storage/s3.ts';

/**
 * S3 event notifications as they arrive in an SQS message body (bucket → ingest queue). Parsed
 * with a schema at the edge; the rest of the pipeline only sees `S3ObjectCreated` values.
 */

const S3EventRecord = z.object({
  eventName: z.string(),
  eventTime: z.string().optional(),
  s3: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      // Absent on some event types (e.g. delete markers); an ObjectCreated event has both.
      eTag: z.string().optional(),
      size: z.number().int().nonnegative().optional(),
      sequencer: z.string().optional(),
    }),
  }),
});

const S3EventNotification = z.object({ Records: z.array(S3EventRecord) });

/** S3 sends this once when a notification configuration is created; there is nothing to do. */
const S3TestEvent = z.object({ Event: z.literal('s3:TestEvent'), Bucket: z.string().optional() });

/** One created object from an event notification, key URL-decoded. */
export interface S3ObjectCreated {
  bucket: string;
  /** The object key, decoded (spaces, `+`, unicode as the user named it). */
  key: string;
  /** ETag without quotes, as in the event (may be stale: the object can be replaced since). */
  etag: string | undefined;
  size: number | undefined;
  eventName: string;
}

/** One removed object (`ObjectRemoved:*`: a delete, or the second half of a move). */
export interface S3ObjectRemoved {
  bucket: string;
  key: string;
  eventName: string;
}

/** What an SQS body holding an S3 notification turned out to be. */
export type ParsedS3Body =
  | {
      kind: 'objects';
      objects: S3ObjectCreated[];
      removed: S3ObjectRemoved[];
      /** Records that are neither ObjectCreated nor ObjectRemoved, ignored with a reason. */
      ignored: { key: string; eventName: string }[];
    }
  | { kind: 'test-event' }
  | { kind: 'invalid'; reason: string };

/**
 * Decodes an S3 event key: S3 URL-encodes keys in notifications with `+` for spaces (form
 * encoding), so `+` must become a space before percent-decoding (a literal `+` arrives as `%2B`).
 *
 * @example decodeS3EventKey('datasets/pets/cat/my+cat%2B1.jpg') // 'datasets/pets/cat/my cat+1.jpg'
 */
export function decodeS3EventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/**
 * Parses an SQS message body that should hold an S3 event notification. Never throws: a body that
 * is not JSON or not an S3 event comes back as `invalid` (the caller logs and drops it, since
 * retrying a malformed message can never succeed).
 */
export function parseS3EventBody(body: string): ParsedS3Body {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { kind: 'invalid', reason: 'body is not JSON' };
  }
  if (S3TestEvent.safeParse(json).success) return { kind: 'test-event' };
  const parsed = S3EventNotification.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      kind: 'invalid',
      reason: `not an S3 event notification: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'unknown'}`,
    };
  }
  const objects: S3ObjectCreated[] = [];
  const removed: S3ObjectRemoved[] = [];
  const ignored: { key: string; eventName: string }[] = [];
  for (const record of parsed.data.Records) {
    let key: string;
    try {
      key = decodeS3EventKey(record.s3.object.key);
    } catch {
      return { kind: 'invalid', reason: 'object key is not valid URL encoding' };
    }
    if (record.eventName.startsWith('ObjectRemoved:')) {
      removed.push({ bucket: record.s3.bucket.name, key, eventName: record.eventName });
      continue;
    }
    if (!record.eventName.startsWith('ObjectCreated:')) {
      ignored.push({ key, eventName: record.eventName });
      continue;
    }
    objects.push({
      bucket: record.s3.bucket.name,
      key,
      etag: record.s3.object.eTag === undefined ? undefined : normalizeEtag(record.s3.object.eTag),
      size: record.s3.object.size,
      eventName: record.eventName,
    });
  }
  return { kind: 'objects', objects, removed, ignored };
}
