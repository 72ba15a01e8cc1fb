import type { S3Client } from '@aws-sdk/client-s3';
import {
  datasetPrefix,
  featureErrorKey,
  featureKey,
  featuresPrefix,
  type ImageRef,
  parseImageKey,
  type SkipReason,
} from '../storage/keys.ts';
import { headObject, type ListedObject, listAllObjects } from '../storage/s3.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import { FEATURE_META } from './feature-metadata.ts';

/**
 * Where a dataset stands: which images have a current feature, which could not be used, which
 * are still waiting for the extractor. Used by the state machine's CheckReadiness step, by the
 * trainer (which features to load) and by the API's dataset status.
 *
 * How "current" is decided, and the trade-off: a listing gives keys, ETags and LastModified but
 * no user metadata, and HEADing every feature of a 25,000-image dataset on every readiness poll
 * would cost 25,000 requests. So a feature (or `.error.json`) written strictly after the image's
 * LastModified is taken as belonging to the image's current content without a request: the
 * extractor only writes after reading the image, and S3 stamps both with its own clock. Only when
 * that does not hold (the image was replaced or re-uploaded after the feature was written, or the
 * timestamps share a second: listings have second precision) is the feature HEADed and its
 * `source-etag` metadata compared with the image's ETag. The rare case this misses: an image
 * replaced within the same second after its feature was written *and* listed with an older
 * timestamp — impossible with S3's monotonic server clock. A re-upload of identical bytes (same
 * ETag, newer LastModified) is correctly ready after one HEAD, although the extractor skips it.
 *
 * The feature spec is not visible in a listing either: with `spec` set, every feature is HEADed
 * (exact mode, N requests); without it, spec is checked by the trainer, which reads every
 * feature's metadata anyway and excludes (and reports) other specs.
 */

/** The state of one usable image. */
export type ImageStatus = 'ready' | 'failed' | 'pending';

/** One usable image of the dataset and the state of its feature. */
export interface ImageEntry {
  image: ImageRef;
  /** The image's ETag (unquoted). */
  etag: string;
  size: number;
  status: ImageStatus;
  /** `features/…npy` of the image (exists when status is ready). */
  featureKey: string;
}

/** A key under `datasets/{d}/` that is not a usable image name; never pending, never trained. */
export interface SkippedKey {
  key: string;
  reason: SkipReason;
}

/** Every usable image of a dataset with its status, plus the skipped keys. */
export interface DatasetScan {
  dataset: string;
  /** Sorted by image key, so the order is stable from one scan to the next. */
  entries: ImageEntry[];
  skipped: SkippedKey[];
  /** Feature objects whose image no longer exists (ignored by training). */
  orphaned: number;
}

/** Counts of one label. */
export interface LabelReadiness {
  images: number;
  ready: number;
  failed: number;
  pending: number;
}

/**
 * The CheckReadiness result (the state machine's contract: `{total, ready, failed, pending, labels}`).
 * `total = ready + failed + pending` counts usable images only; `skipped` counts keys that are not
 * usable image names (they never block training).
 */
export interface ReadinessReport {
  dataset: string;
  total: number;
  ready: number;
  failed: number;
  pending: number;
  skipped: number;
  orphaned: number;
  labels: Record<string, LabelReadiness>;
}

/** Options of `scanDataset` / `checkReadiness`. */
export interface ReadinessOptions {
  /** Feature spec that counts as current; when set, every feature is HEADed (exact, N requests). */
  spec?: string;
  /** Concurrent HEAD requests. @default 16 */
  concurrency?: number;
}

type Candidate = { status: 'ready' | 'failed'; obj: ListedObject };

/**
 * Lists `datasets/{d}/` and `features/{d}/` and works out each usable image's status (see the
 * module comment for how "current" is decided cheaply).
 *
 * @example const { entries } = await scanDataset(s3, bucket, 'pets');
 *          const ready = entries.filter((e) => e.status === 'ready');
 */
export async function scanDataset(
  s3: S3Client,
  bucket: string,
  dataset: string,
  opts: ReadinessOptions = {},
): Promise<DatasetScan> {
  const [images, features] = await Promise.all([
    listAllObjects(s3, bucket, datasetPrefix(dataset)),
    listAllObjects(s3, bucket, featuresPrefix(dataset)),
  ]);
  const featureObjects = new Map(features.map((o) => [o.key, o]));
  const skipped: SkippedKey[] = [];
  const used = new Set<string>();
  const pending: { entry: ImageEntry; candidates: Candidate[]; lastModified: Date | undefined }[] = [];

  for (const obj of images) {
    const parsed = parseImageKey(obj.key);
    if (!parsed.ok) {
      skipped.push({ key: obj.key, reason: parsed.reason });
      continue;
    }
    const fKey = featureKey(parsed.image);
    const eKey = featureErrorKey(parsed.image);
    const candidates: Candidate[] = [];
    const npy = featureObjects.get(fKey);
    const err = featureObjects.get(eKey);
    if (npy) candidates.push({ status: 'ready', obj: npy });
    if (err) candidates.push({ status: 'failed', obj: err });
    used.add(fKey).add(eKey);
    // The newer of feature / error record speaks for the newest content the extractor saw.
    candidates.sort((a, b) => time(b.obj.lastModified) - time(a.obj.lastModified));
    pending.push({
      entry: { image: parsed.image, etag: obj.etag, size: obj.size, status: 'pending', featureKey: fKey },
      candidates,
      lastModified: obj.lastModified,
    });
  }

  await mapWithConcurrency(pending, opts.concurrency ?? 16, async (item) => {
    for (const c of item.candidates) {
      if (await isCurrent(s3, bucket, c.obj, item.entry.etag, item.lastModified, opts.spec)) {
        item.entry.status = c.status;
        return;
      }
    }
  });

  const entries = pending.map((p) => p.entry).sort((a, b) => compare(a.image.key, b.image.key));
  const orphaned = features.filter((o) => !used.has(o.key)).length;
  return { dataset, entries, skipped, orphaned };
}

function time(d: Date | undefined): number {
  return d?.getTime() ?? 0;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function isCurrent(
  s3: S3Client,
  bucket: string,
  obj: ListedObject,
  imageEtag: string,
  imageModified: Date | undefined,
  spec: string | undefined,
): Promise<boolean> {
  const newer =
    obj.lastModified !== undefined &&
    imageModified !== undefined &&
    Math.floor(obj.lastModified.getTime() / 1000) > Math.floor(imageModified.getTime() / 1000);
  if (newer && spec === undefined) return true;
  const head = await headObject(s3, bucket, obj.key);
  if (!head) return false; // deleted since the listing
  if (head.metadata[FEATURE_META.sourceEtag] !== imageEtag) return false;
  return spec === undefined || head.metadata[FEATURE_META.spec] === spec;
}

/** Counts a scan by status and label. */
export function summarizeScan(scan: DatasetScan): ReadinessReport {
  const labels: Record<string, LabelReadiness> = {};
  const report: ReadinessReport = {
    dataset: scan.dataset,
    total: scan.entries.length,
    ready: 0,
    failed: 0,
    pending: 0,
    skipped: scan.skipped.length,
    orphaned: scan.orphaned,
    labels,
  };
  for (const e of scan.entries) {
    report[e.status] += 1;
    let l = labels[e.image.label];
    if (!l) {
      l = { images: 0, ready: 0, failed: 0, pending: 0 };
      labels[e.image.label] = l;
    }
    l.images += 1;
    l[e.status] += 1;
  }
  return report;
}

/**
 * How many of a dataset's images are ready, failed or pending, overall and per label: the
 * CheckReadiness step of the training state machine and the API's dataset status.
 *
 * @example const r = await checkReadiness(s3, bucket, 'pets');
 *          if (r.pending > 0) { … wait and poll again … }
 */
export async function checkReadiness(
  s3: S3Client,
  bucket: string,
  dataset: string,
  opts: ReadinessOptions = {},
): Promise<ReadinessReport> {
  return summarizeScan(await scanDataset(s3, bucket, dataset, opts));
}
