import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { describeError, ImageDecodeError, NotFoundError } from '../errors.ts';
import type { FeatureMessage } from '../features/messages.ts';
import { FEATURE_META, FeatureErrorRecord, featureMetadata } from '../features/metadata.ts';
import { encodeNpy } from '../features/npy.ts';
import { formatMegabytes, MAX_IMAGE_BYTES } from '../images/limits.ts';
import { preprocessImage } from '../images/preprocess.ts';
import type { FeatureExtractor } from '../model/types.ts';
import { featureErrorKey, featureKey, type ImageRef, parseImageKey } from '../storage/keys.ts';
import {
  deleteObject,
  getJson,
  getObject,
  headObject,
  ObjectTooLargeError,
  putObject,
  touchObject,
} from '../storage/s3.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';
import {
  failedMessage,
  type ImageJob,
  readyMessage,
  sendFeatureMessages,
  writeExtractionFailed,
} from './feature-records.ts';

/**
 * The extractor's domain logic: images under `datasets/` → `.npy` features (or `.error.json`
 * records) under `features/` + one message each on the features queue. No Lambda event shapes here:
 * the handler turns SQS records into `ImageJob`s and `failedRecordIds` into batchItemFailures.
 *
 * Idempotence (S3 and SQS deliver at least once): before any work the feature is HEADed, and an
 * image whose feature is current (same `source-etag` and `feature-spec`) is skipped without a
 * message. Every object is one PUT (atomic), and the message is sent only after its object exists.
 * A record retried by SQS after a partial failure (object written, message not sent) is redelivered
 * with a receive count > 1; for such records a current feature is announced again, so no message
 * is lost (duplicate messages are harmless: training starts are debounced).
 */

/** Dependencies, created once per container by the handler (or by a test). */
export interface ExtractDeps {
  s3: S3Client;
  sqs: SQSClient;
  bucket: string;
  featuresQueueUrl: string;
  extractor: FeatureExtractor;
  /** Images per forward pass. */
  batchSize: number;
  log: Log;
  /** Concurrent S3 reads / image decodes, and concurrent writes (the two overlap). @default 8 */
  ioConcurrency?: number;
  /** Decoded pixel limit. @default preprocessImage's (40 MP) */
  limitInputPixels?: number;
  /** Stored-image limit, bytes: larger images are never read. @default MAX_IMAGE_BYTES (lib/images/limits.ts) */
  maxImageBytes?: number;
  /**
   * The ingest queue's maxReceiveCount (lib/pipeline/settings.ts): on a record's last receive, an
   * image that would be retried gets an `ExtractionFailed` error record instead, so it is never
   * pending forever behind the dead-letter queue. @default no last receive (always retry)
   */
  maxReceiveCount?: number;
  now?: () => Date;
}

/** Why an image was skipped without a write. */
export type SkipCause = 'invalid-key' | 'current' | 'error-current' | 'vanished' | 'duplicate-in-batch';

/** What happened to one image. `retry` means its record is reported as a batch item failure. */
export type ImageOutcome =
  | { key: string; recordId: string; status: 'extracted'; featureKey: string }
  | { key: string; recordId: string; status: 'failed'; code: string; reason: string }
  | { key: string; recordId: string; status: 'skipped'; cause: SkipCause; detail?: string }
  | { key: string; recordId: string; status: 'retry'; error: string };

/** Result of `extractImages`. */
export interface ExtractResult {
  outcomes: ImageOutcome[];
  /** Records with at least one image to retry (SQS batchItemFailures). */
  failedRecordIds: string[];
  counts: { extracted: number; failed: number; skipped: number; retry: number };
  /** Wall time of the whole call and of the forward passes alone. */
  timings: { totalMs: number; forwardMs: number };
}

/** Internal per-image state, keyed by image key (a batch can hold the same key twice). */
interface Work {
  key: string;
  jobs: ImageJob[];
  image: ImageRef;
  redelivered: boolean;
  featureHead?: Awaited<ReturnType<typeof headObject>>;
  errorHead?: Awaited<ReturnType<typeof headObject>>;
  /** ETag of the bytes read. */
  etag?: string;
  input?: Float32Array;
  vector?: Float32Array;
  decodeError?: ImageDecodeError;
  outcome?:
    | { status: 'extracted' }
    | { status: 'failed'; code: string; reason: string }
    | { status: 'skipped'; cause: SkipCause; detail?: string }
    | { status: 'retry'; error: string };
  message?: FeatureMessage;
}

/**
 * Extracts features for a batch of images. Never throws for one image's problem: unusable keys
 * are skipped (logged), unusable images get an error record + `feature.failed`, and transient
 * errors (S3, SQS, timeouts, the model) mark just the affected records for retry.
 *
 * @example
 * const r = await extractImages([{ recordId: 'm1', key: 'datasets/pets/cat/1.jpg', etag }], deps);
 * return { batchItemFailures: r.failedRecordIds.map((itemIdentifier) => ({ itemIdentifier })) };
 */
export async function extractImages(jobs: readonly ImageJob[], deps: ExtractDeps): Promise<ExtractResult> {
  const started = performance.now();
  const now = deps.now ?? (() => new Date());
  const concurrency = deps.ioConcurrency ?? 8;
  const outcomes: ImageOutcome[] = [];
  const works: Work[] = [];
  const byKey = new Map<string, Work>();

  for (const job of jobs) {
    const parsed = parseImageKey(job.key);
    if (!parsed.ok) {
      deps.log.warn('skipping key that is not a usable image name', {
        reason: parsed.reason,
        detail: parsed.detail,
      });
      outcomes.push({
        key: job.key,
        recordId: job.recordId,
        status: 'skipped',
        cause: 'invalid-key',
        detail: `${parsed.reason}: ${parsed.detail}`,
      });
      continue;
    }
    const existing = byKey.get(job.key);
    if (existing) {
      // Same key twice in one batch: one read of the current object serves both records.
      existing.jobs.push(job);
      existing.redelivered ||= job.redelivered === true;
      continue;
    }
    const work: Work = {
      key: job.key,
      jobs: [job],
      image: parsed.image,
      redelivered: job.redelivered === true,
    };
    byKey.set(job.key, work);
    works.push(work);
  }

  // Chunks of batchSize images: read + preprocess, one forward pass, write. The next chunk is read
  // and decoded while the current one runs through the network (the reads are in flight and
  // sharp decodes on libuv's threads meanwhile), as `tlearn extract` does (lib/features/extract-files.ts).
  // At most two chunks of network inputs (h*w*3 floats each) are in memory, however large the batch.
  const chunks: Work[][] = [];
  for (let i = 0; i < works.length; i += deps.batchSize) chunks.push(works.slice(i, i + deps.batchSize));
  // 1. Read: skip current features, fetch and preprocess the rest. Never rejects (errors are per
  // image), so a prefetch left pending cannot become an unhandled rejection.
  const read = (chunk: Work[]) =>
    mapWithConcurrency(chunk, concurrency, (w) => prepare(w, deps, now).catch(retryOn(w, deps.log)));
  let forwardMs = 0;
  let reading = chunks[0] ? read(chunks[0]) : undefined;
  for (let c = 0; reading !== undefined; c++) {
    await reading;
    const chunk = chunks[c] as Work[];
    const following = chunks[c + 1];
    reading = following ? read(following) : undefined;
    // 2. One forward pass.
    const toExtract = chunk.filter((w) => w.outcome === undefined && w.input !== undefined);
    if (toExtract.length > 0) {
      const t0 = performance.now();
      try {
        const vectors = await deps.extractor.extractBatch(toExtract.map((w) => w.input as Float32Array));
        toExtract.forEach((w, j) => {
          w.vector = vectors[j];
        });
      } catch (err) {
        for (const w of toExtract) retryOn(w, deps.log)(err);
      } finally {
        forwardMs += performance.now() - t0;
      }
    }
    for (const w of chunk) w.input = undefined;
    // 3. Write objects (one PUT each).
    await mapWithConcurrency(chunk, concurrency, (w) => write(w, deps, now).catch(retryOn(w, deps.log)));
  }

  // 4. Announce them, after every object exists.
  await sendMessages(
    works.filter((w) => w.message !== undefined && w.outcome?.status !== 'retry'),
    deps,
  );
  // 5. Last receive: what would go to the dead-letter queue gets an error record instead.
  const last = works.filter((w) => w.outcome?.status === 'retry' && isLastReceive(w, deps.maxReceiveCount));
  if (last.length > 0) {
    await mapWithConcurrency(last, concurrency, (w) => giveUp(w, deps, now).catch(retryOn(w, deps.log)));
    await sendMessages(
      last.filter((w) => w.message !== undefined && w.outcome?.status === 'failed'),
      deps,
    );
  }

  for (const w of works) {
    const o = w.outcome ?? { status: 'retry', error: 'internal: image was not processed' };
    w.jobs.forEach((job, idx) => {
      const base = { key: job.key, recordId: job.recordId };
      if (idx > 0 && o.status !== 'retry') {
        outcomes.push({ ...base, status: 'skipped', cause: 'duplicate-in-batch' });
      } else if (o.status === 'extracted') {
        outcomes.push({ ...base, status: 'extracted', featureKey: featureKey(w.image) });
      } else {
        outcomes.push({ ...base, ...o });
      }
    });
  }
  const counts = { extracted: 0, failed: 0, skipped: 0, retry: 0 };
  for (const o of outcomes) counts[o.status] += 1;
  const failedRecordIds = [...new Set(outcomes.filter((o) => o.status === 'retry').map((o) => o.recordId))];
  return {
    outcomes,
    failedRecordIds,
    counts,
    timings: { totalMs: performance.now() - started, forwardMs },
  };
}

function isLastReceive(w: Work, maxReceiveCount: number | undefined): boolean {
  if (maxReceiveCount === undefined) return false;
  return w.jobs.some((j) => (j.receiveCount ?? 1) >= maxReceiveCount);
}

/**
 * Writes the `ExtractionFailed` error record of an image on its last receive (with the last
 * error), deleting a stale feature, and prepares its `feature.failed` message.
 */
async function giveUp(w: Work, deps: ExtractDeps, now: () => Date): Promise<void> {
  if (w.outcome?.status !== 'retry') return;
  const lastError = w.outcome.error;
  // The ETag of the bytes read, else the event's, else the current object's.
  const etag = w.etag ?? w.jobs[0]?.etag ?? (await headObject(deps.s3, deps.bucket, w.key))?.etag;
  if (etag === undefined) {
    w.outcome = { status: 'skipped', cause: 'vanished' };
    return;
  }
  const { record, message } = await writeExtractionFailed(w, etag, deps.extractor.specId, lastError, {
    ...deps,
    at: now(),
  });
  w.outcome = { status: 'failed', code: record.code, reason: record.reason };
  w.message = message;
  deps.log.warn('extraction failed on the last receive; error record written', { key: w.key });
}

function retryOn(w: Work, log: Log): (err: unknown) => void {
  return (err) => {
    w.outcome = { status: 'retry', error: describeError(err) };
    w.message = undefined;
    log.error('image will be retried', { key: w.key, error: describeError(err) });
  };
}

function isCurrent(
  head: Awaited<ReturnType<typeof headObject>>,
  etag: string | undefined,
  spec: string,
): boolean {
  return (
    head !== undefined &&
    etag !== undefined &&
    head.metadata[FEATURE_META.sourceEtag] === etag &&
    head.metadata[FEATURE_META.spec] === spec
  );
}

async function prepare(w: Work, deps: ExtractDeps, now: () => Date): Promise<void> {
  const job = w.jobs[0];
  if (!job) return;
  const [featureHead, errorHead] = await Promise.all([
    headObject(deps.s3, deps.bucket, featureKey(w.image)),
    headObject(deps.s3, deps.bucket, featureErrorKey(w.image)),
  ]);
  w.featureHead = featureHead;
  w.errorHead = errorHead;
  // Cheap path first: the event's ETag already matches the feature, no GET needed.
  if (await skipIfCurrent(w, job.etag, deps, now)) return;

  const maxBytes = deps.maxImageBytes ?? MAX_IMAGE_BYTES;
  if (job.size !== undefined && job.size > maxBytes && (await gateBySize(w, deps, now, maxBytes))) return;

  let body: Uint8Array;
  try {
    // Bounded even when the event's size is wrong: the GET's Content-Length decides before the body.
    const obj = await getObject(deps.s3, deps.bucket, w.key, { maxBytes });
    body = obj.body;
    w.etag = obj.etag;
  } catch (err) {
    if (err instanceof NotFoundError) {
      vanished(w, deps.log);
      return;
    }
    if (err instanceof ObjectTooLargeError) {
      w.etag = err.etag;
      if (job.etag !== err.etag && (await skipIfCurrent(w, err.etag, deps, now))) return;
      w.decodeError = imageTooLarge(err.size, maxBytes);
      return;
    }
    throw err;
  }
  if (job.etag !== undefined && job.etag !== w.etag) {
    deps.log.debug('image replaced since its event; using the current content', { key: w.key });
    if (await skipIfCurrent(w, w.etag, deps, now)) return;
  }
  try {
    if (body.length === 0) throw new ImageDecodeError('EmptyImage', 'image is empty (0 bytes)');
    w.input = await preprocessImage(body, {
      size: deps.extractor.spec.input,
      resize: deps.extractor.spec.resize,
      ...(deps.limitInputPixels === undefined ? {} : { limitInputPixels: deps.limitInputPixels }),
    });
  } catch (err) {
    if (!(err instanceof ImageDecodeError)) throw err;
    w.decodeError = err;
  }
}

function vanished(w: Work, log: Log): void {
  // Deleted since the event: nothing to extract, and retrying cannot help.
  w.outcome = { status: 'skipped', cause: 'vanished' };
  log.debug('image no longer exists; skipped', { key: w.key });
}

function imageTooLarge(size: number, maxBytes: number): ImageDecodeError {
  return new ImageDecodeError(
    'ImageTooLarge',
    `image is ${formatMegabytes(size)}, over the limit of ${formatMegabytes(maxBytes)} for a stored image; it was not read`,
  );
}

/**
 * Size gate from the event (or, for a reindex, the listing): an image over the limit gets its
 * `ImageTooLarge` record without a GET. A HEAD (no bytes) confirms the size and ETag first, since
 * the event may be older than the object: a replaced image is decided by what is there now.
 * Returns false when the current object is small enough to read.
 */
async function gateBySize(w: Work, deps: ExtractDeps, now: () => Date, maxBytes: number): Promise<boolean> {
  const head = await headObject(deps.s3, deps.bucket, w.key);
  if (head === undefined) {
    vanished(w, deps.log);
    return true;
  }
  if (head.size <= maxBytes) return false;
  w.etag = head.etag;
  if (head.etag !== w.jobs[0]?.etag && (await skipIfCurrent(w, head.etag, deps, now))) return true;
  w.decodeError = imageTooLarge(head.size, maxBytes);
  return true;
}

/**
 * An identical re-upload is newer than its current feature (or error record): stamp that object
 * again so readiness, which decides from listings, sees it current (one copy instead of a HEAD on
 * every poll).
 */
async function restampIfOlder(
  w: Work,
  deps: ExtractDeps,
  head: Work['featureHead'],
  key: string,
  contentType: string,
): Promise<void> {
  if (head && isOlderThanEvent(head.lastModified, w.jobs))
    await touchObject(deps.s3, deps.bucket, key, { metadata: head.metadata, contentType });
}

/**
 * Whether a current feature is older than the (re-)upload its event reports, so listings would call
 * it stale: an identical re-upload. A duplicate or redelivered event of the same upload is not.
 */
function isOlderThanEvent(lastModified: Date | undefined, jobs: readonly ImageJob[]): boolean {
  if (lastModified === undefined) return true;
  return jobs.some(
    (j) =>
      j.eventTime === undefined ||
      Math.floor(j.eventTime.getTime() / 1000) >= Math.floor(lastModified.getTime() / 1000),
  );
}

/** Marks the work skipped when its feature (or error record) is current for `etag`. */
async function skipIfCurrent(
  w: Work,
  etag: string | undefined,
  deps: ExtractDeps,
  now: () => Date,
): Promise<boolean> {
  const spec = deps.extractor.specId;
  if (isCurrent(w.featureHead, etag, spec) && etag !== undefined) {
    await restampIfOlder(w, deps, w.featureHead, featureKey(w.image), 'application/octet-stream');
    w.outcome = { status: 'skipped', cause: 'current' };
    if (w.redelivered) {
      // An earlier attempt may have written the feature and failed before announcing it.
      if (w.errorHead) await deleteObject(deps.s3, deps.bucket, featureErrorKey(w.image));
      w.message = readyMessage(w, etag, spec, now());
    }
    return true;
  }
  if (isCurrent(w.errorHead, etag, spec) && etag !== undefined) {
    await restampIfOlder(w, deps, w.errorHead, featureErrorKey(w.image), 'application/json');
    w.outcome = { status: 'skipped', cause: 'error-current' };
    if (w.redelivered) {
      const rec = await getJson(deps.s3, deps.bucket, featureErrorKey(w.image), FeatureErrorRecord);
      w.message = failedMessage(w, etag, spec, now(), `${rec.code}: ${rec.reason}`);
    }
    return true;
  }
  return false;
}

async function write(w: Work, deps: ExtractDeps, now: () => Date): Promise<void> {
  if (w.outcome !== undefined || w.etag === undefined) return;
  const spec = deps.extractor.specId;
  const metadata = featureMetadata(w.etag, spec, w.image.label);
  if (w.vector) {
    if (w.vector.length !== deps.extractor.dims) {
      throw new Error(`extractor returned ${w.vector.length} values instead of ${deps.extractor.dims}`);
    }
    await putObject(deps.s3, deps.bucket, featureKey(w.image), encodeNpy(w.vector), {
      contentType: 'application/octet-stream',
      metadata,
    });
    // An error record of older content would make readiness call the image failed.
    if (w.errorHead) await deleteObject(deps.s3, deps.bucket, featureErrorKey(w.image));
    w.vector = undefined;
    w.outcome = { status: 'extracted' };
    w.message = readyMessage(w, w.etag, spec, now());
    return;
  }
  if (w.decodeError) {
    const at = now();
    const record: FeatureErrorRecord = {
      imageKey: w.key,
      sourceEtag: w.etag,
      spec,
      reason: w.decodeError.message,
      code: w.decodeError.code,
      at: at.toISOString(),
    };
    await putObject(deps.s3, deps.bucket, featureErrorKey(w.image), `${JSON.stringify(record, null, 2)}\n`, {
      contentType: 'application/json',
      metadata,
    });
    // The feature of older content must not be trained on once the image is unusable.
    if (w.featureHead) await deleteObject(deps.s3, deps.bucket, featureKey(w.image));
    w.outcome = { status: 'failed', code: record.code, reason: record.reason };
    w.message = failedMessage(w, w.etag, spec, at, describeError(w.decodeError));
    deps.log.warn('image cannot be used; error record written', { key: w.key, code: record.code });
  }
}

/** A message that did not go (a refused entry, a failed call) retries just its image. */
async function sendMessages(works: Work[], deps: ExtractDeps): Promise<void> {
  for (const { item, error } of await sendFeatureMessages(works, deps)) retryOn(item, deps.log)(error);
}
