/**
 * The S3 → SQS event notifications AWS sends for `ObjectCreated:*` and `ObjectRemoved:*` under
 * `datasets/` and `unlabelled/` (docs/ARCHITECTURE.md "Messages"), rebuilt for the local stack:
 * same JSON shape, same key encoding, same test event when the notification is first configured.
 * The extractor cannot tell it from the real thing.
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describeError } from '../errors.ts';
import {
  buildObjectCreatedEvent,
  buildObjectRemovedEvent,
  type CreatedObjectInfo,
  createSequencer,
  type NotificationContext,
  s3RequestId,
} from '../pipeline/s3-events.ts';
import { featureErrorKey, featureKey, INGEST_PREFIXES, parseImageKey } from '../storage/keys.ts';
import { listAllObjects } from '../storage/s3.ts';
import type { Log } from '../util/log.ts';
import type { ObjectEvent } from './emulator.ts';

// The event bodies are built in lib/pipeline/s3-events.ts (reindex sends the same ones).
export {
  buildObjectCreatedEvent,
  buildObjectRemovedEvent,
  type CreatedObjectInfo,
  createSequencer,
  encodeS3EventKey,
  type NotificationContext,
} from '../pipeline/s3-events.ts';

/** Delivery attempts of one notification. */
const SEND_ATTEMPTS = 6;

/** The message S3 sends once when a notification configuration is created or changed. */
export function buildS3TestEvent(bucket: string, now: Date = new Date()): object {
  return {
    Service: 'Amazon S3',
    Event: 's3:TestEvent',
    Time: now.toISOString(),
    Bucket: bucket,
    RequestId: s3RequestId(),
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
  /** Only keys under these prefixes notify (the notifications' filters). @default INGEST_PREFIXES */
  prefixes?: readonly string[];
  region: string;
  /** @default 'tlearn-ingest' */
  configurationId?: string;
  /** Send the `s3:TestEvent` first, like S3 does when the notification is configured. @default true */
  sendTestEvent?: boolean;
  log: Log;
}

/**
 * Forwards every object created under `prefixes` in `bucket` to `queueUrl` as an S3 event
 * notification. Sends are asynchronous (S3's are too) and retried; one that still fails is logged,
 * and the startup catch-up (`notifyUnprocessedImages`) picks such images up on the next start.
 */
export function startS3Notifications(opts: S3NotificationOptions): S3Notifier {
  const prefixes = opts.prefixes ?? INGEST_PREFIXES;
  const watched = (key: string) => prefixes.some((p) => key.startsWith(p));
  const ctx: NotificationContext = {
    region: opts.region,
    configurationId: opts.configurationId ?? 'tlearn-ingest',
    sequencer: createSequencer(),
  };
  const inFlight = new Set<Promise<void>>();
  // S3 retries a delivery that fails; so does this (a lost notification would leave an image
  // pending until readiness stops waiting for it): up to SEND_ATTEMPTS tries, backing off.
  const deliver = async (body: string, what: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await opts.sqs.send(new SendMessageCommand({ QueueUrl: opts.queueUrl, MessageBody: body }));
        return;
      } catch (err) {
        if (attempt >= SEND_ATTEMPTS) {
          opts.log.warn(`could not send the S3 notification for ${what}`, { error: describeError(err) });
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  };
  const send = (body: object, what: string): void => {
    const p = deliver(JSON.stringify(body), what).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const notifyCreated = (obj: CreatedObjectInfo): void =>
    send(buildObjectCreatedEvent(obj, ctx), `s3://${obj.bucket}/${obj.key}`);

  if (opts.sendTestEvent ?? true) send(buildS3TestEvent(opts.bucket), 's3:TestEvent');
  const unsubscribe = opts.onObjectEvent((event) => {
    if (event.bucket !== opts.bucket) return;
    if (event.type === 'removed') {
      if (watched(event.key))
        send(
          buildObjectRemovedEvent({ bucket: event.bucket, key: event.key }, ctx),
          `s3://${event.bucket}/${event.key}`,
        );
      return;
    }
    if (!watched(event.object.key)) return;
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
