import { createHash } from 'node:crypto';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import {
  datasetPrefix,
  featureErrorKey,
  featureKey,
  featuresPrefix,
  type ImageRef,
  parseImageKey,
  type SkipReason,
} from '../storage/keys.ts';
import { type ListedObject, listAllObjects, normalizeEtag } from '../storage/s3.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import { lockGeneration } from './training-lock.ts';

/**
 * Where a dataset stands: which images have a current feature, which could not be used, which
 * are still waiting for the extractor. Used by the state machine's CheckReadiness step, by the
 * trainer (which features to load) and by the API's dataset status.
 *
 * Decided from listings only (keys, ETags, LastModified; no HEAD per image, so the cost is the
 * listing: 1,000 keys per request, labels listed in parallel). A feature (or `.error.json`) is
 * current when its LastModified is at or after the image's: the extractor writes only after
 * reading the image, S3 stamps both with its own clock, and when the extractor skips an image
 * whose feature is already current but older than the upload (an identical re-upload, a reindex)
 * it refreshes the feature's LastModified (CopyObject onto itself), so the listing stays the truth.
 * What a listing cannot see: an image replaced within the same second after its feature was
 * written (second-precision timestamps) counts as ready until its new feature lands; the trainer
 * reads every feature's `source-etag` anyway and leaves such a feature out (reported as stale).
 * The feature spec is not in a listing either: the trainer checks it (other specs are excluded
 * and reported), and `tlearn reindex --all` re-extracts after a change of weights or spec.
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
  /** The image's LastModified (its upload). */
  uploadedAt?: Date;
  /** LastModified of its current feature or error record (ready or failed only). */
  doneAt?: Date;
  /** ETag of that feature or error record (ready or failed only): its content. */
  doneEtag?: string;
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
  /** Concurrent listings (one per label folder). @default 16 */
  concurrency?: number;
}

/**
 * Every object under `prefix`: one delimited listing of the top level, then every folder (label)
 * listed in parallel, so a dataset of many labels lists in a fraction of the sequential time.
 * Sorted by key.
 */
export async function listPrefixParallel(
  s3: S3Client,
  bucket: string,
  prefix: string,
  concurrency = 16,
): Promise<ListedObject[]> {
  const top: ListedObject[] = [];
  const folders: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
    );
    for (const o of out.Contents ?? []) {
      if (o.Key !== undefined)
        top.push({
          key: o.Key,
          etag: normalizeEtag(o.ETag),
          size: o.Size ?? 0,
          lastModified: o.LastModified,
        });
    }
    for (const p of out.CommonPrefixes ?? []) if (p.Prefix) folders.push(p.Prefix);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  const nested = await mapWithConcurrency(folders, concurrency, (f) => listAllObjects(s3, bucket, f));
  const all = top.concat(...nested);
  return all.sort((a, b) => compare(a.key, b.key));
}

/**
 * Lists `datasets/{d}/` and `features/{d}/` (labels in parallel) and works out each usable
 * image's status from the listings alone (see the module comment).
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
  const concurrency = opts.concurrency ?? 16;
  const [images, features] = await Promise.all([
    listPrefixParallel(s3, bucket, datasetPrefix(dataset), concurrency),
    listPrefixParallel(s3, bucket, featuresPrefix(dataset), concurrency),
  ]);
  const featureObjects = new Map(features.map((o) => [o.key, o]));
  const skipped: SkippedKey[] = [];
  let used = 0;
  const entries: ImageEntry[] = [];

  for (const obj of images) {
    const parsed = parseImageKey(obj.key);
    if (!parsed.ok) {
      skipped.push({ key: obj.key, reason: parsed.reason });
      continue;
    }
    const fKey = featureKey(parsed.image);
    const npy = featureObjects.get(fKey);
    const err = featureObjects.get(featureErrorKey(parsed.image));
    if (npy) used++;
    if (err) used++;
    // The newer of feature / error record speaks for the newest content the extractor saw.
    const newest = npy && (!err || time(npy.lastModified) >= time(err.lastModified)) ? npy : err;
    let status: ImageStatus = 'pending';
    if (newest && time(newest.lastModified) >= time(obj.lastModified))
      status = newest === npy ? 'ready' : 'failed';
    entries.push({
      image: parsed.image,
      etag: obj.etag,
      size: obj.size,
      status,
      featureKey: fKey,
      ...(obj.lastModified ? { uploadedAt: obj.lastModified } : {}),
      ...(status !== 'pending' && newest?.lastModified ? { doneAt: newest.lastModified } : {}),
      ...(status !== 'pending' && newest ? { doneEtag: newest.etag } : {}),
    });
  }
  // Listings are sorted by key already; the order is stable from one scan to the next.
  return { dataset, entries, skipped, orphaned: features.length - used };
}

/**
 * What a training made of this scan could know, in one string: `{images}-{hash}`, the hash over
 * every usable image's key (label included), its ETag, its status and the ETag of the feature or
 * error record behind that status. Two scans with the same fingerprint would train the same
 * model: no image arrived, left, moved to another label or changed content, and no feature was
 * written anew (a reindex changes the features' ETags), between them. A feature whose
 * LastModified was only refreshed (an identical re-upload) keeps its ETag, and changes nothing.
 * Finish compares the scan the trainer used with a fresh one (lib/pipeline/training-lock.ts).
 *
 * @example scanFingerprint(await scanDataset(s3, bucket, 'pets')) // '5000-Jq3…' (27 characters of hash)
 */
export function scanFingerprint(scan: DatasetScan): string {
  const hash = createHash('sha256');
  // Entries are sorted by key (scanDataset); one JSON array per entry keeps the fields apart.
  for (const e of scan.entries)
    hash.update(JSON.stringify([e.image.key, e.etag, e.status, e.doneEtag ?? '']));
  return `${scan.entries.length}-${hash.digest('base64url').slice(0, 27)}`;
}

function time(d: Date | undefined): number {
  return d?.getTime() ?? 0;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * When the dataset's images were uploaded (first and last LastModified) and when the last feature
 * or error record was written: the ends of the extraction that a training waits for.
 */
export function scanTimes(scan: DatasetScan): {
  firstUploadAt: string | null;
  lastUploadAt: string | null;
  lastFeatureAt: string | null;
} {
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  let done = Number.NEGATIVE_INFINITY;
  for (const e of scan.entries) {
    const up = e.uploadedAt?.getTime();
    if (up !== undefined) {
      first = Math.min(first, up);
      last = Math.max(last, up);
    }
    if (e.doneAt) done = Math.max(done, e.doneAt.getTime());
  }
  const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : null);
  return { firstUploadAt: iso(first), lastUploadAt: iso(last), lastFeatureAt: iso(done) };
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

/** CheckReadiness's result: counts only, so the state machine's payload stays small whatever the label count. */
export type ReadinessCounts = Omit<ReadinessReport, 'dataset' | 'labels'> & {
  /** Number of labels. */
  labels: number;
  /** The dataset lock's generation, read before listing (Finish compares it; see training-lock.ts). */
  generation: number;
};

/**
 * The state machine's CheckReadiness step: the lock generation first, then the listings, so any
 * feature message counted after the generation was read belongs to a feature the listing may
 * have missed (and Finish trains again for it).
 */
export async function checkReadinessStep(
  s3: S3Client,
  bucket: string,
  dataset: string,
  opts: ReadinessOptions = {},
): Promise<ReadinessCounts> {
  const generation = await lockGeneration(s3, bucket, dataset);
  const { dataset: _dataset, labels, ...counts } = await checkReadiness(s3, bucket, dataset, opts);
  return { ...counts, labels: Object.keys(labels).length, generation };
}
