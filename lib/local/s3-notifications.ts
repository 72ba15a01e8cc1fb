/**
 * The S3 → SQS event notifications AWS sends for `ObjectCreated:*` and `ObjectRemoved:*` under `datasets/` (DESIGN.md
 * flow), rebuilt for the local stack: same JSON shape, same key encoding, same test event when the
 * notification is first configured. The extractor cannot tell it from the real thing.
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describeError } from '../errors.ts';
import { featureErrorKey, featureKey, parseImageKey } from '../storage/keys.ts';
import { listAllObjects } from '../storage/s3.ts';
import type { Log } from '../util/log.ts';
import type { ObjectEvent } from './emulator.ts';

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

const requestId = (): string => randomBytes(8).toString('hex').toUpperCase();

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
          'x-amz-request-id': requestId(),
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

/** The message S3 sends once when a notification configuration is created or changed. */
export function buildS3TestEvent(bucket: string, now: Date = new Date()): object {
  return {
    Service: 'Amazon S3',
    Event: 's3:TestEvent',
    Time: now.toISOString(),
    Bucket: bucket,
    RequestId: requestId(),
    HostId: randomBytes(32).toString('base64'),
  };
}

/** A running S3 → SQS notifier. */
export interface S3Notifier {
  /** Sends the `ObjectCreated` notification for an object (used for the startup catch-up too). */
  notifyCreated(obj: CreatedObjectInfo): void;
  /** Resolves when every notification sent so far has been accepted by the queue. */
  idle(): Promise<void>;
  /** Stops listening to the emulator and waits for sends in flight. */
  stop(): Promise<void>;
}

/** Options of {@link startS3Notifications}. */
export interface S3NotificationOptions {
  /** Where object writes come from (the emulator's `onObjectEvent`). */
  onObjectEvent: (listener: (event: ObjectEvent) => void) => () => void;
  sqs: SQSClient;
  queueUrl: string;
  bucket: string;
  /** Only keys under this prefix notify (the notification's filter). @default 'datasets/' */
  prefix?: string;
  region: string;
  /** @default 'tlearn-ingest' */
  configurationId?: string;
  /** Send the `s3:TestEvent` first, like S3 does when the notification is configured. @default true */
  sendTestEvent?: boolean;
  log: Log;
}

/**
 * Forwards every object created under `prefix` in `bucket` to `queueUrl` as an S3 event
 * notification. Sends are asynchronous (S3's are too); a failed send is logged, not retried,
 * and the startup catch-up (`notifyUnprocessedImages`) picks such images up on the next start.
 */
export function startS3Notifications(opts: S3NotificationOptions): S3Notifier {
  const prefix = opts.prefix ?? 'datasets/';
  const ctx: NotificationContext = {
    region: opts.region,
    configurationId: opts.configurationId ?? 'tlearn-ingest',
    sequencer: createSequencer(),
  };
  const inFlight = new Set<Promise<void>>();
  const send = (body: object, what: string): void => {
    const p = opts.sqs
      .send(new SendMessageCommand({ QueueUrl: opts.queueUrl, MessageBody: JSON.stringify(body) }))
      .then(
        () => undefined,
        (err: unknown) =>
          opts.log.warn(`could not send the S3 notification for ${what}`, { error: describeError(err) }),
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const notifyCreated = (obj: CreatedObjectInfo): void =>
    send(buildObjectCreatedEvent(obj, ctx), `s3://${obj.bucket}/${obj.key}`);

  if (opts.sendTestEvent ?? true) send(buildS3TestEvent(opts.bucket), 's3:TestEvent');
  const unsubscribe = opts.onObjectEvent((event) => {
    if (event.bucket !== opts.bucket) return;
    if (event.type === 'removed') {
      if (event.key.startsWith(prefix))
        send(
          buildObjectRemovedEvent({ bucket: event.bucket, key: event.key }, ctx),
          `s3://${event.bucket}/${event.key}`,
        );
      return;
    }
    if (!event.object.key.startsWith(prefix)) return;
    notifyCreated({
      bucket: event.bucket,
      key: event.object.key,
      size: event.object.size,
      etag: event.object.etag,
    });
  });

  const idle = async (): Promise<void> => {
    while (inFlight.size > 0) await Promise.all([...inFlight]);
  };
  return {
    notifyCreated,
    idle,
    async stop() {
      unsubscribe();
      await idle();
    },
  };
}

/**
 * Startup catch-up: queue messages live in memory only, so images uploaded just before a stop may
 * never have been processed. Notifies every image under `datasets/` that has neither a feature
 * (`.npy`) nor an error record; images with features are left alone (the extractor would skip
 * them anyway). Returns how many were notified.
 */
export async function notifyUnprocessedImages(opts: {
  s3: S3Client;
  bucket: string;
  notifier: Pick<S3Notifier, 'notifyCreated'>;
  /** Only images under this prefix. @default 'datasets/' */
  prefix?: string;
}): Promise<number> {
  const [images, features] = await Promise.all([
    listAllObjects(opts.s3, opts.bucket, opts.prefix ?? 'datasets/'),
    listAllObjects(opts.s3, opts.bucket, 'features/'),
  ]);
  const done = new Set(features.map((f) => f.key));
  let count = 0;
  for (const img of images) {
    const parsed = parseImageKey(img.key);
    if (!parsed.ok) continue;
    if (done.has(featureKey(parsed.image)) || done.has(featureErrorKey(parsed.image))) continue;
    opts.notifier.notifyCreated({ bucket: opts.bucket, key: img.key, size: img.size, etag: img.etag });
    count++;
  }
  return count;
}
