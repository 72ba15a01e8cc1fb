import type { Log } from '../util/log.ts';
import type { ImageJob } from './feature-records.ts';
import type { ImageRemoval } from './remove.ts';
import { parseS3EventBody } from './s3-events.ts';

/** A queue message as the pipeline needs it (the handler maps the Lambda SQS record to this). */
export interface QueueMessage {
  id: string;
  body: string;
  /** SQS ApproximateReceiveCount; > 1 means the message was delivered before. */
  receiveCount: number;
}

/** Messages of the ingest queue turned into image jobs, plus what was dropped and why. */
export interface IngestBatch {
  jobs: ImageJob[];
  /** Messages that will never be processable (not S3 events, bad encoding): logged and dropped. */
  dropped: { id: string; reason: string }[];
  /** s3:TestEvent messages (sent once when the notification is configured). */
  testEvents: number;
  /** Records ignored: neither ObjectCreated nor ObjectRemoved, or from another bucket. */
  ignored: { id: string; key: string; reason: string }[];
  /** Images deleted (ObjectRemoved): their features go, and the dataset retrains. */
  removals: ImageRemoval[];
}

/**
 * Parses the ingest queue's messages (S3 event notifications) into image jobs. Malformed
 * messages are dropped with a log line instead of failing: a retry could never fix them, and
 * failing would send them round to the dead-letter queue while holding up nothing useful.
 * Keys are logged only at debug level (they can be user content).
 */
export function imageJobsFromMessages(
  messages: readonly QueueMessage[],
  bucket: string,
  log: Log,
): IngestBatch {
  const batch: IngestBatch = { jobs: [], dropped: [], testEvents: 0, ignored: [], removals: [] };
  for (const m of messages) {
    const parsed = parseS3EventBody(m.body);
    if (parsed.kind === 'invalid') {
      log.warn('dropping ingest message that is not an S3 event notification', {
        messageId: m.id,
        reason: parsed.reason,
      });
      batch.dropped.push({ id: m.id, reason: parsed.reason });
      continue;
    }
    if (parsed.kind === 'test-event') {
      log.info('ignoring s3:TestEvent', { messageId: m.id });
      batch.testEvents += 1;
      continue;
    }
    for (const r of parsed.ignored) {
      batch.ignored.push({ id: m.id, key: r.key, reason: `event ${r.eventName}` });
    }
    for (const o of parsed.removed) {
      if (o.bucket !== bucket) {
        batch.ignored.push({ id: m.id, key: o.key, reason: `bucket ${o.bucket}` });
        continue;
      }
      batch.removals.push({ recordId: m.id, key: o.key });
    }
    for (const o of parsed.objects) {
      if (o.bucket !== bucket) {
        log.warn('ignoring event of another bucket', { messageId: m.id, bucket: o.bucket });
        batch.ignored.push({ id: m.id, key: o.key, reason: `bucket ${o.bucket}` });
        continue;
      }
      batch.jobs.push({
        recordId: m.id,
        key: o.key,
        etag: o.etag,
        size: o.size,
        redelivered: m.receiveCount > 1,
        receiveCount: m.receiveCount,
        ...(o.eventTime ? { eventTime: o.eventTime } : {}),
      });
    }
  }
  return batch;
}
