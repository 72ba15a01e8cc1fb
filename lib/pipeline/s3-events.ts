import { randomBytes } from 'node:crypto';
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
  /** When S3 saw the write (the event's `eventTime`; ≈ the object's LastModified). */
  eventTime: Date | undefined;
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
      eventTime:
        record.eventTime === undefined || Number.isNaN(Date.parse(record.eventTime))
          ? undefined
          : new Date(record.eventTime),
    });
  }
  return { kind: 'objects', objects, removed, ignored };
}

/** Characters S3 leaves as they are in event keys (Java's URLEncoder set, plus `/`). */
const UNRESERVED = /[A-Za-z0-9.\-*_/]/;

/**
 * Encodes a key the way S3 does in event notifications: form encoding (`application/x-www-form-urlencoded`,
 * space → `+`, UTF-8 bytes percent-encoded in upper-case hex) except that `/` stays as it is.
 * `decodeS3EventKey` (lib/pipeline/s3-events.ts) reverses it.
 *
 * @example encodeS3EventKey('datasets/pets/cat/my cat+1 (é).jpg') // 'datasets/pets/cat/my+cat%2B1+%28%C3%A9%29.jpg'
 */
export function encodeS3EventKey(key: string): string {
  let out = '';
  for (const ch of key) {
    if (ch === ' ') out += '+';
    else if (UNRESERVED.test(ch)) out += ch;
    else
      for (const byte of Buffer.from(ch, 'utf8'))
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Makes S3-like sequencers: upper-case hex, fixed width, increasing within this process. */
export function createSequencer(): () => string {
  let last = 0n;
  return () => {
    const now = BigInt(Date.now()) * 1_000_000n;
    last = now > last ? now : last + 1n;
    return last.toString(16).toUpperCase().padStart(18, '0');
  };
}

/** What one created object contributes to an event record. */
export interface CreatedObjectInfo {
  bucket: string;
  /** The key as stored (not encoded). */
  key: string;
  size: number;
  /** ETag without quotes. */
  etag: string;
}

/** Context fields shared by the records the local stack sends. */
export interface NotificationContext {
  region: string;
  /** The notification configuration's id (S3 puts it in every record). */
  configurationId: string;
  /** Clock, for tests. @default () => new Date() */
  now?: () => Date;
  sequencer: () => string;
}

/** A random S3 request id, as S3 puts in its notifications. */
export const s3RequestId = (): string => randomBytes(8).toString('hex').toUpperCase();

/**
 * Builds the S3 event notification body (one record) for a created object, as S3 delivers it to
 * SQS. `eventName` is `ObjectCreated:Put` for any write: the local emulator does not tell a copy
 * or a completed multipart upload apart, and the pipeline only tests for `ObjectCreated:`.
 */
export function buildObjectCreatedEvent(obj: CreatedObjectInfo, ctx: NotificationContext): object {
  return buildEvent('ObjectCreated:Put', obj, ctx);
}

/** The notification S3 sends for a deleted object (no ETag or size, as S3 sends it). */
export function buildObjectRemovedEvent(
  obj: { bucket: string; key: string },
  ctx: NotificationContext,
): object {
  return buildEvent('ObjectRemoved:Delete', obj, ctx);
}

function buildEvent(
  eventName: string,
  obj: { bucket: string; key: string; size?: number; etag?: string },
  ctx: NotificationContext,
): object {
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: ctx.region,
        eventTime: (ctx.now?.() ?? new Date()).toISOString(),
        eventName,
        userIdentity: { principalId: 'AWS:LOCAL' },
        requestParameters: { sourceIPAddress: '127.0.0.1' },
        responseElements: {
          'x-amz-request-id': s3RequestId(),
          'x-amz-id-2': randomBytes(32).toString('base64'),
        },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: ctx.configurationId,
          bucket: {
            name: obj.bucket,
            ownerIdentity: { principalId: 'LOCAL' },
            arn: `arn:aws:s3:::${obj.bucket}`,
          },
          object: {
            key: encodeS3EventKey(obj.key),
            ...(obj.size === undefined ? {} : { size: obj.size }),
            ...(obj.etag === undefined ? {} : { eTag: obj.etag }),
            sequencer: ctx.sequencer(),
          },
        },
      },
    ],
  };
}
