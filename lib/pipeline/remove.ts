import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { describeError } from '../errors.ts';
import type { FeatureRemovedMessage } from '../features/messages.ts';
import { featureErrorKey, featureKey, parseImageKey } from '../storage/keys.ts';
import { deleteObject, headObject } from '../storage/s3.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';
import { sendFeatureMessages } from './feature-records.ts';

/**
 * Deleted images (S3 `ObjectRemoved`): the image's feature and error record are deleted and a
 * `feature.removed` message asks for a retrain without it. A move (`aws s3 mv`: copy, then
 * delete) is the copy's extraction under the new label plus this removal under the old one, so
 * the next model has the image relabelled.
 */

/** One removed image (the SQS record it came in, for retries). */
export interface ImageRemoval {
  recordId: string;
  key: string;
}

/** Dependencies (the extractor's). */
export interface RemoveDeps {
  s3: S3Client;
  sqs: SQSClient;
  bucket: string;
  featuresQueueUrl: string;
  log: Log;
  now?: () => Date;
}

/** Result: how many images lost their feature, and the records to retry. */
export interface RemoveResult {
  removed: number;
  /** Events whose image exists again (re-uploaded since the delete) or whose key is not an image. */
  skipped: number;
  failedRecordIds: string[];
}

/**
 * Removes the features of deleted images and announces it. Idempotent (deleting what is gone is
 * fine); an image that exists again (re-uploaded after the delete: events may arrive late) is
 * left alone, its ObjectCreated event brings the feature up to date.
 */
export async function removeImages(
  removals: readonly ImageRemoval[],
  deps: RemoveDeps,
): Promise<RemoveResult> {
  const now = deps.now ?? (() => new Date());
  const failed = new Set<string>();
  const messages: { recordId: string; message: FeatureRemovedMessage }[] = [];
  let skipped = 0;
  await mapWithConcurrency(removals, 8, async (r) => {
    const parsed = parseImageKey(r.key);
    if (!parsed.ok) {
      skipped++;
      return;
    }
    try {
      if (await headObject(deps.s3, deps.bucket, r.key)) {
        skipped++;
        return;
      }
      await Promise.all([
        deleteObject(deps.s3, deps.bucket, featureKey(parsed.image)),
        deleteObject(deps.s3, deps.bucket, featureErrorKey(parsed.image)),
      ]);
      messages.push({
        recordId: r.recordId,
        message: {
          type: 'feature.removed',
          dataset: parsed.image.dataset,
          label: parsed.image.label,
          imageKey: r.key,
          featureKey: featureKey(parsed.image),
          at: now().toISOString(),
        },
      });
    } catch (err) {
      deps.log.error('removing the features of a deleted image failed; will retry', {
        error: describeError(err),
      });
      failed.add(r.recordId);
    }
  });
  for (const { item } of await sendFeatureMessages(messages, deps)) failed.add(item.recordId);
  return { removed: messages.length, skipped, failedRecordIds: [...failed] };
}
