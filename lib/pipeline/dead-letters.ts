import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { describeError } from '../errors.ts';
import type { FeatureFailedMessage } from '../features/messages.ts';
import { FEATURE_META } from '../features/metadata.ts';
import { featureErrorKey, featureKey, parseImageKey } from '../storage/keys.ts';
import { headObject } from '../storage/s3.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';
import { type ImageJob, sendFeatureMessages, writeExtractionFailed } from './feature-records.ts';

/**
 * Messages of the ingest dead-letter queue (docs/ARCHITECTURE.md "Dead letters"): S3 events whose
 * extraction never finished (a crash or a timeout on the last receive, an out-of-memory kill) and so
 * never got the error record the extractor writes on a last receive. Each image gets that
 * `ExtractionFailed` record (lib/pipeline/extract.ts `writeExtractionFailed`) and a `feature.failed`
 * message, so readiness stops counting it pending and the dataset trains without it.
 *
 * Idempotent: an image with a feature or error record of its current content is left alone, as is
 * an image deleted since its event (a record this module wrote is written and announced again, in
 * case its message is what failed). The function loads no model, so the record's spec is
 * {@link DEAD_LETTER_SPEC}: the extractor never takes it for current, and a re-upload or
 * `tlearn reindex D --all` tries the image again.
 */

/** The spec written on dead-letter records: not a feature spec, so no extractor takes them for current. */
export const DEAD_LETTER_SPEC = 'dead-letter';

/** What the ingest dead letters need (built once per container by functions/dead-letters). */
export interface DeadImageDeps {
  s3: S3Client;
  sqs: SQSClient;
  bucket: string;
  featuresQueueUrl: string;
  log: Log;
  now?: () => Date;
}

/** What became of the images of the dead messages. */
export interface DeadImagesResult {
  /** Images that got an `ExtractionFailed` record now. */
  recorded: number;
  /** Images with a current feature or record, deleted since, or not image keys. */
  skipped: number;
  /** Records to retry (S3 or SQS failed): the dead-letter queue redelivers them. */
  failedRecordIds: string[];
}

/** Why the record was written, for the user (`GET /datasets/{d}/failures`). */
const DEAD_LETTER_ERROR =
  'the message reached the dead-letter queue (the extractor crashed, timed out or ran out of memory on its last receive)';

/** Records the images of dead ingest messages as `ExtractionFailed` and announces them. */
export async function recordDeadImages(
  jobs: readonly ImageJob[],
  deps: DeadImageDeps,
): Promise<DeadImagesResult> {
  const now = deps.now ?? (() => new Date());
  const failed = new Set<string>();
  const messages: { recordId: string; message: FeatureFailedMessage }[] = [];
  let skipped = 0;
  const seen = new Set<string>();
  await mapWithConcurrency(jobs, 8, async (job) => {
    const parsed = parseImageKey(job.key);
    if (!parsed.ok || seen.has(job.key)) {
      skipped++;
      return;
    }
    seen.add(job.key);
    try {
      const ref = { image: parsed.image, key: job.key };
      const [image, feature, record] = await Promise.all([
        headObject(deps.s3, deps.bucket, job.key),
        headObject(deps.s3, deps.bucket, featureKey(parsed.image)),
        headObject(deps.s3, deps.bucket, featureErrorKey(parsed.image)),
      ]);
      const ofContent = (h: typeof feature) => h?.metadata[FEATURE_META.sourceEtag] === image?.etag;
      // A record of our own is written and announced again: its message may be what failed last time.
      const ours = record?.metadata[FEATURE_META.spec] === DEAD_LETTER_SPEC;
      if (image === undefined || ofContent(feature) || (ofContent(record) && !ours)) {
        skipped++;
        return;
      }
      const { message } = await writeExtractionFailed(ref, image.etag, DEAD_LETTER_SPEC, DEAD_LETTER_ERROR, {
        s3: deps.s3,
        bucket: deps.bucket,
        at: now(),
      });
      messages.push({ recordId: job.recordId, message });
      deps.log.warn('dead-lettered image recorded as ExtractionFailed', { dataset: parsed.image.dataset });
    } catch (err) {
      deps.log.error('dead-lettered image not recorded; it will be retried', { error: describeError(err) });
      failed.add(job.recordId);
    }
  });
  for (const { item } of await sendFeatureMessages(messages, deps)) failed.add(item.recordId);
  return { recorded: messages.length, skipped, failedRecordIds: [...failed] };
}
