import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { TlearnError } from '../errors.ts';
import {
  datasetPrefix,
  featureErrorKey,
  featureKey,
  featuresPrefix,
  parseImageKey,
} from '../storage/keys.ts';
import { type ListedObject, normalizeEtag } from '../storage/s3.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';
import { buildObjectCreatedEvent, createSequencer } from './s3-events.ts';

/**
 * Backfill (`POST /datasets/{d}/reindex`, `tlearn reindex D`): images already in the bucket before
 * the stack was deployed, or whose features are of old weights/spec, are sent to the ingest queue
 * as the S3 event notifications S3 would have sent, so the extractor treats them like uploads
 * (idempotent: a current feature is skipped).
 *
 * Bounded and paginated: one call looks at one page of at most `maxImages` image keys (default
 * 5,000) and stops early at its time budget, returning a continuation token; the caller loops.
 * A page's features are listed only within the key range of that page's images, label by label
 * in parallel, so the cost of a call does not grow with the dataset (200,000 images = 40 calls).
 */

/** One page of a reindex. */
export interface ReindexPage {
  dataset: string;
  /** Image keys looked at in this call (usable or not). */
  scanned: number;
  /** Images sent to the ingest queue. */
  enqueued: number;
  /** Images with a current feature or error record (not sent). */
  current: number;
  /** Keys that are not usable image names. */
  skipped: number;
  /** Pass back as `token` for the next page; null when the dataset is done. */
  nextToken: string | null;
}

/** Options of {@link reindexDataset}. */
export interface ReindexOptions {
  /** Send every image, current or not (after a change of weights or spec, which listings cannot see). */
  all?: boolean;
  /** Continuation token of the previous page. */
  token?: string | undefined;
  /** Image keys per call. @default 5000 */
  maxImages?: number;
  /** Stop listing after this long, ms (the API's 29 s limit minus margin). @default 15000 */
  budgetMs?: number;
}

/** Dependencies (the API's clients). */
export interface ReindexDeps {
  s3: S3Client;
  sqs: SQSClient;
  bucket: string;
  region: string;
  ingestQueueUrl: string;
  log: Log;
}

/** The continuation token is not one this API gave out. */
export class InvalidTokenError extends TlearnError {
  constructor(message: string) {
    super('InvalidToken', message, 400);
  }
}

/** Opaque continuation token: the last image key of a page, base64url. */
function encodeToken(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeToken(token: string, dataset: string): string {
  const key = Buffer.from(token, 'base64url').toString('utf8');
  if (!key.startsWith(datasetPrefix(dataset))) {
    throw new InvalidTokenError(`token does not belong to dataset '${dataset}': start again without a token`);
  }
  return key;
}

async function listPage(
  s3: S3Client,
  bucket: string,
  prefix: string,
  opts: { startAfter?: string | undefined; maxKeys: number; stopAfter?: string; deadline: number },
): Promise<{ objects: ListedObject[]; more: boolean }> {
  const objects: ListedObject[] = [];
  let token: string | undefined;
  for (;;) {
    const out = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ...(token ? { ContinuationToken: token } : opts.startAfter ? { StartAfter: opts.startAfter } : {}),
        MaxKeys: Math.min(1000, opts.maxKeys - objects.length),
      }),
    );
    for (const o of out.Contents ?? []) {
      if (o.Key === undefined) continue;
      if (opts.stopAfter !== undefined && o.Key > opts.stopAfter) return { objects, more: false };
      objects.push({
        key: o.Key,
        etag: normalizeEtag(o.ETag),
        size: o.Size ?? 0,
        lastModified: o.LastModified,
      });
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
    if (!token) return { objects, more: false };
    if (objects.length >= opts.maxKeys || Date.now() > opts.deadline) return { objects, more: true };
  }
}

/**
 * Sends one page of a dataset's images without a current feature (or every image with `all`) to
 * the ingest queue. Loop with `nextToken` until it is null.
 *
 * @example
 * let token: string | undefined;
 * do { const p = await reindexDataset('pets', { token }, deps); token = p.nextToken ?? undefined; } while (token);
 */
export async function reindexDataset(
  dataset: string,
  opts: ReindexOptions,
  deps: ReindexDeps,
): Promise<ReindexPage> {
  const deadline = Date.now() + (opts.budgetMs ?? 15_000);
  const startAfter = opts.token === undefined ? undefined : decodeToken(opts.token, dataset);
  const page = await listPage(deps.s3, deps.bucket, datasetPrefix(dataset), {
    startAfter,
    maxKeys: opts.maxImages ?? 5000,
    deadline,
  });
  const images: { obj: ListedObject; npy: string; err: string; folder: string }[] = [];
  let skipped = 0;
  for (const obj of page.objects) {
    const parsed = parseImageKey(obj.key);
    if (!parsed.ok) {
      skipped++;
      continue;
    }
    images.push({
      obj,
      npy: featureKey(parsed.image),
      err: featureErrorKey(parsed.image),
      folder: `${featuresPrefix(dataset)}${parsed.image.label}/`,
    });
  }

  // The page's features: per label folder, only the key range this page needs.
  const features = new Map<string, ListedObject>();
  if (!opts.all) {
    const ranges = new Map<string, { min: string; max: string }>();
    for (const i of images) {
      const r = ranges.get(i.folder);
      // `{file}.error.json` sorts before `{file}.npy` ('e' < 'n'): the image's two keys span [err, npy].
      const lo = i.err;
      const hi = i.npy;
      if (!r) ranges.set(i.folder, { min: lo, max: hi });
      else {
        if (lo < r.min) r.min = lo;
        if (hi > r.max) r.max = hi;
      }
    }
    await mapWithConcurrency([...ranges], 16, async ([folder, r]) => {
      const listed = await listPage(deps.s3, deps.bucket, folder, {
        // Exclusive: a prefix of `min` sorts just before it.
        startAfter: r.min.slice(0, -1),
        maxKeys: Number.MAX_SAFE_INTEGER,
        stopAfter: r.max,
        deadline: Number.MAX_SAFE_INTEGER,
      });
      for (const o of listed.objects) features.set(o.key, o);
    });
  }
  const stale = images.filter((i) => {
    if (opts.all) return true;
    const t = i.obj.lastModified?.getTime() ?? 0;
    const npy = features.get(i.npy);
    const err = features.get(i.err);
    return !(
      (npy && (npy.lastModified?.getTime() ?? 0) >= t) ||
      (err && (err.lastModified?.getTime() ?? 0) >= t)
    );
  });

  const ctx = { region: deps.region, configurationId: 'tlearn-reindex', sequencer: createSequencer() };
  const batches: (typeof stale)[] = [];
  for (let i = 0; i < stale.length; i += 10) batches.push(stale.slice(i, i + 10));
  await mapWithConcurrency(batches, 8, async (batch) => {
    const out = await deps.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: deps.ingestQueueUrl,
        Entries: batch.map((i, n) => ({
          Id: `i${n}`,
          MessageBody: JSON.stringify(
            buildObjectCreatedEvent(
              { bucket: deps.bucket, key: i.obj.key, size: i.obj.size, etag: i.obj.etag },
              ctx,
            ),
          ),
        })),
      }),
    );
    if (out.Failed && out.Failed.length > 0) {
      throw new TlearnError(
        'ReindexSendFailed',
        `the ingest queue refused ${out.Failed.length} message(s); run reindex again`,
        503,
      );
    }
  });
  const last = page.objects.at(-1);
  deps.log.info('reindex page', { dataset, scanned: page.objects.length, enqueued: stale.length });
  return {
    dataset,
    scanned: page.objects.length,
    enqueued: stale.length,
    current: images.length - stale.length,
    skipped,
    nextToken: page.more && last ? encodeToken(last.key) : null,
  };
}
