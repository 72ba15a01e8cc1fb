/**
 * Features of the unlabelled pool (`unlabelled/{d}/…` → `unlabelled-features/{d}/….npy`), made by
 * the extractor from the same S3 events as training images, but never announced to training: the
 * pool is only ranked (lib/capture/suggestions.ts). An image the decoder refuses is logged and
 * left out of the suggestions; an S3 or model failure is retried like any record.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { TlearnError } from '../errors.ts';
import { FEATURE_META, featureMetadata } from '../features/metadata.ts';
import { encodeNpy } from '../features/npy.ts';
import { preprocessImage } from '../images/preprocess.ts';
import type { FeatureExtractor } from '../model/types.ts';
import { isValidDatasetName, UNLABELLED_PREFIX } from '../storage/keys.ts';
import { deleteObject, getObjectIfExists, headObject, putObject } from '../storage/s3.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';
import { isPoolKey, poolFeatureKey } from './suggestions.ts';

/** One S3 event of the pool. */
export interface PoolJob {
  recordId: string;
  key: string;
  etag?: string | undefined;
}

/** What {@link extractPoolImages} needs. */
export interface PoolExtractDeps {
  s3: S3Client;
  bucket: string;
  extractor: FeatureExtractor;
  batchSize: number;
  log: Log;
  limitInputPixels?: number;
}

/** Whether a key belongs to some dataset's pool (the handler routes it here). */
export function isAnyPoolKey(key: string): boolean {
  const dataset = key.slice(UNLABELLED_PREFIX.length).split('/')[0] ?? '';
  return key.startsWith(UNLABELLED_PREFIX) && isValidDatasetName(dataset) && isPoolKey(key, dataset);
}

/**
 * Extracts the pool images of a batch; returns the records to retry. A current feature (same
 * source ETag and spec) is not recomputed, so redeliveries cost a HEAD.
 */
export async function extractPoolImages(
  jobs: readonly PoolJob[],
  deps: PoolExtractDeps,
): Promise<{ failedRecordIds: string[]; extracted: number; unusable: number }> {
  const failed = new Set<string>();
  let extracted = 0;
  let unusable = 0;
  const spec = deps.extractor.specId;
  const unique = [...new Map(jobs.filter((j) => isAnyPoolKey(j.key)).map((j) => [j.key, j])).values()];
  for (let i = 0; i < unique.length; i += deps.batchSize) {
    const chunk = unique.slice(i, i + deps.batchSize);
    const inputs = await mapWithConcurrency(chunk, 8, async (job) => {
      try {
        const head = await headObject(deps.s3, deps.bucket, poolFeatureKey(job.key));
        if (
          head &&
          head.metadata[FEATURE_META.spec] === spec &&
          head.metadata[FEATURE_META.sourceEtag] === job.etag
        ) {
          return undefined;
        }
        const obj = await getObjectIfExists(deps.s3, deps.bucket, job.key);
        if (!obj) return undefined;
        const pixels = await preprocessImage(obj.body, {
          size: deps.extractor.spec.input,
          resize: deps.extractor.spec.resize,
          ...(deps.limitInputPixels === undefined ? {} : { limitInputPixels: deps.limitInputPixels }),
        });
        return { job, etag: obj.etag, pixels };
      } catch (err) {
        if (err instanceof TlearnError && err.status < 500) {
          unusable += 1;
          deps.log.warn('pool image cannot be used; left out of suggestions', { code: err.code });
        } else {
          failed.add(job.recordId);
        }
        return undefined;
      }
    });
    const ready = inputs.filter((x) => x !== undefined);
    if (ready.length === 0) continue;
    try {
      const vectors = await deps.extractor.extractBatch(ready.map((r) => r.pixels));
      await mapWithConcurrency(ready, 8, async (r, j) => {
        const v = vectors[j];
        if (!v) throw new Error('extractor returned fewer vectors than images');
        await putObject(deps.s3, deps.bucket, poolFeatureKey(r.job.key), encodeNpy(v), {
          contentType: 'application/octet-stream',
          metadata: featureMetadata(r.etag, spec, ''),
        });
        extracted += 1;
      });
    } catch (err) {
      deps.log.warn('pool extraction failed; retrying the batch', { error: String(err) });
      for (const r of ready) failed.add(r.job.recordId);
    }
  }
  return { failedRecordIds: [...failed], extracted, unusable };
}

/** A pool image was deleted: its feature goes too. */
export async function removePoolFeatures(
  s3: S3Client,
  bucket: string,
  keys: readonly string[],
): Promise<void> {
  await mapWithConcurrency(
    keys.filter((k) => isAnyPoolKey(k)),
    8,
    (k) => deleteObject(s3, bucket, poolFeatureKey(k)),
  );
}
