/**
 * The records and messages of an image's extraction that need no model and no image decoder:
 * the job an S3 event becomes, the `feature.ready` / `feature.failed` messages, and the
 * `ExtractionFailed` error record. lib/pipeline/extract.ts writes them while it extracts; the
 * dead-letters function (lib/pipeline/dead-letters.ts) writes them for images whose extraction
 * never finished, and its bundle must not carry sharp or onnxruntime (infra zip function).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describeError } from '../errors.ts';
import type { FeatureFailedMessage, FeatureMessage, FeatureReadyMessage } from '../features/messages.ts';
import { type FeatureErrorRecord, featureMetadata } from '../features/metadata.ts';
import { featureErrorKey, featureKey, type ImageRef } from '../storage/keys.ts';
import { deleteObject, putObject } from '../storage/s3.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';

/** One image to process. Several jobs may share a record (an S3 event can list several objects). */
export interface ImageJob {
  /** The unit SQS retries (the record's messageId). */
  recordId: string;
  /** Decoded S3 key under `datasets/`. */
  key: string;
  /** ETag from the event (may be stale; the ETag of the bytes actually read is what counts). */
  etag?: string | undefined;
  size?: number | undefined;
  /** The record was received before (an earlier attempt may have written without announcing). */
  redelivered?: boolean;
  /** SQS ApproximateReceiveCount of the record (1 on the first delivery). */
  receiveCount?: number;
  /** The event's time (≈ the image's LastModified); unknown: treated as newer than any feature. */
  eventTime?: Date;
}

/** The code of the error record of an image whose extraction kept failing until its last receive. */
export const EXTRACTION_FAILED = 'ExtractionFailed';

/**
 * Gives an image up: writes its `ExtractionFailed` error record (`features/{d}/{label}/{file}.error.json`,
 * the format every error record has) for the content `etag`, deletes a feature of older content
 * (it must not be trained on), and returns the `feature.failed` message to announce it. Used on an
 * ingest record's last receive (above) and for messages that reached the ingest dead-letter queue
 * anyway (lib/pipeline/dead-letters.ts).
 */
export async function writeExtractionFailed(
  ref: { image: ImageRef; key: string },
  etag: string,
  spec: string,
  lastError: string,
  deps: { s3: S3Client; bucket: string; at: Date },
): Promise<{ record: FeatureErrorRecord; message: FeatureFailedMessage }> {
  const record: FeatureErrorRecord = {
    imageKey: ref.key,
    sourceEtag: etag,
    spec,
    reason: `extraction failed on every attempt; last error: ${lastError}`,
    code: EXTRACTION_FAILED,
    at: deps.at.toISOString(),
  };
  await putObject(deps.s3, deps.bucket, featureErrorKey(ref.image), `${JSON.stringify(record, null, 2)}\n`, {
    contentType: 'application/json',
    metadata: featureMetadata(etag, spec, ref.image.label),
  });
  await deleteObject(deps.s3, deps.bucket, featureKey(ref.image));
  return {
    record,
    message: failedMessage(ref, etag, spec, deps.at, `${EXTRACTION_FAILED}: ${record.reason}`),
  };
}

export function readyMessage(
  w: { image: ImageRef; key: string },
  etag: string,
  spec: string,
  at: Date,
): FeatureReadyMessage {
  return {
    type: 'feature.ready',
    dataset: w.image.dataset,
    label: w.image.label,
    imageKey: w.key,
    featureKey: featureKey(w.image),
    sourceEtag: etag,
    spec,
    at: at.toISOString(),
  };
}

export function failedMessage(
  w: { image: ImageRef; key: string },
  etag: string,
  spec: string,
  at: Date,
  reason: string,
): FeatureFailedMessage {
  return { ...readyMessage(w, etag, spec, at), type: 'feature.failed', reason };
}

/**
 * Sends feature messages to the features queue, 10 per `SendMessageBatch` call (its limit), four
 * calls at a time; returns the items whose message did not go with why (an entry SQS refused, or
 * a call that failed), for the caller to retry: extraction (lib/pipeline/extract.ts), dead letters
 * and removals report their records as failed, and SQS delivers them again.
 */
export async function sendFeatureMessages<T extends { message?: FeatureMessage | undefined }>(
  items: readonly T[],
  deps: { sqs: SQSClient; featuresQueueUrl: string; log: Log },
): Promise<{ item: T; error: Error }[]> {
  const unsent: { item: T; error: Error }[] = [];
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += 10) chunks.push(items.slice(i, i + 10));
  await mapWithConcurrency(chunks, 4, async (chunk) => {
    try {
      const out = await deps.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: deps.featuresQueueUrl,
          Entries: chunk.map((m, i) => ({ Id: `m${i}`, MessageBody: JSON.stringify(m.message) })),
        }),
      );
      for (const f of out.Failed ?? []) {
        const item = chunk[Number(f.Id?.slice(1))];
        if (item)
          unsent.push({ item, error: new Error(`SQS refused the message: ${f.Code} ${f.Message ?? ''}`) });
      }
    } catch (err) {
      deps.log.error('feature messages not sent; their records will be retried', {
        count: chunk.length,
        error: describeError(err),
      });
      const error = err instanceof Error ? err : new Error(describeError(err));
      for (const item of chunk) unsent.push({ item, error });
    }
  });
  return unsent;
}
