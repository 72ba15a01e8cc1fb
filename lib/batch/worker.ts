/**
 * The batch worker: scores one chunk of a batch (one queue message) with the model version the
 * batch pinned, through the API's own prediction code (`scoreImageBytes`), writes
 * `parts/{n}.jsonl`, and when every chunk has a part, finishes the batch (results + summary).
 *
 * Idempotent: a redelivered chunk rewrites the same part (parts are counted by chunk number, never
 * by deliveries), and finishing twice writes the same results; `summary.json` is written last, so
 * its presence means the results are complete.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { describeError, NotFoundError, SpecMismatchError, TlearnError } from '../errors.ts';
import { formatMegabytes, MAX_IMAGE_BYTES } from '../images/limits.ts';
import type { FeatureExtractor } from '../model/types.ts';
import { createInferenceQueue } from '../serving/inference-queue.ts';
import { type LoadedModel, loadModelVersion } from '../serving/model-cache.ts';
import { scoreImageBytes } from '../serving/score.ts';
import { batchKeys } from '../storage/keys.ts';
import { getJsonIfExists, getObject, ObjectTooLargeError, putJson, putObject } from '../storage/s3.ts';
import type { ThresholdChoice } from '../training/thresholds.ts';
import { createGate } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';
import { finishBatch } from './finish.ts';
import { type BatchRow, type ChunkMessage, type Manifest, PART_METADATA, SummarySchema } from './layout.ts';
import { readManifest } from './start.ts';

/** What the worker needs (built once per container by functions/batch-predict). */
export interface BatchWorkerDeps {
  s3: S3Client;
  bucket: string;
  extractor: FeatureExtractor;
  limitInputPixels: number;
  /** Region whose prices the summary's cost uses. @default us-east-1 */
  region?: string;
  /** Images per forward pass. @default 8 */
  maxBatch?: number;
  /** Images decoded at once. @default DECODE_CONCURRENCY */
  decodeConcurrency?: number;
  log: Log;
  now?: () => Date;
}

/** What one chunk did. */
export interface ChunkOutcome {
  part: number;
  rows: number;
  failed: number;
  /** `finished`: this call wrote the results; `failed`: the batch cannot run (see failed.json). */
  batch: 'running' | 'finished' | 'failed';
}

const models = new Map<string, Promise<LoadedModel>>();

function thresholdChoice(t: Manifest['threshold']): ThresholdChoice {
  return t === 'none' ? { kind: 'none' } : t === 'auto' ? { kind: 'auto' } : { kind: 'fixed', value: t };
}

/**
 * Images of a chunk decoded at once (sharp runs on libuv's pool), as `tlearn extract` decodes:
 * enough to keep the forward passes fed (a decode is a fraction of a pass), few enough that the
 * first pass starts after one decode rather than after the whole chunk's.
 */
export const DECODE_CONCURRENCY = 4;

/** An image's bytes, or the row of an image that cannot be read (never rejects: see readKey). */
type Read = { bytes: Uint8Array } | { row: BatchRow } | { transient: unknown };

/** Reads one image key; an unusable image (missing, too large) becomes its row. */
async function readKey(deps: BatchWorkerDeps, key: string): Promise<Read> {
  try {
    return { bytes: (await getObject(deps.s3, deps.bucket, key, { maxBytes: MAX_IMAGE_BYTES })).body };
  } catch (err) {
    if (err instanceof NotFoundError)
      return { row: { key, error: `image '${key}' does not exist (deleted after the batch started)` } };
    if (err instanceof ObjectTooLargeError)
      return {
        row: { key, error: `ImageTooLarge: image is over the limit of ${formatMegabytes(MAX_IMAGE_BYTES)}` },
      };
    return { transient: err }; // the chunk is retried
  }
}

/** Scores one image read into a row; an undecodable image is a row with `error`. */
async function scoreRead(
  deps: BatchWorkerDeps,
  extract: (pixels: Float32Array) => Promise<Float32Array>,
  model: LoadedModel,
  threshold: ThresholdChoice,
  key: string,
  read: Read,
): Promise<BatchRow> {
  if ('row' in read) return read.row;
  if ('transient' in read) throw read.transient;
  try {
    const s = await scoreImageBytes(read.bytes, {
      extractor: deps.extractor,
      extract,
      model,
      limitInputPixels: deps.limitInputPixels,
      threshold,
    });
    return {
      key,
      label: s.outcome.label,
      confidence: s.confidence,
      abstained: s.outcome.abstained,
      scores: s.scores,
    };
  } catch (err) {
    if (err instanceof TlearnError && err.status < 500) return { key, error: describeError(err) };
    throw err;
  }
}

/**
 * Scores a chunk's keys: every read starts at once (S3 latency, not CPU); decodes go
 * {@link DECODE_CONCURRENCY} at a time in key order, each handing its image to the inference
 * queue and freeing its slot at once, so the next images decode while the forward passes run
 * (as `tlearn extract` decodes the next batch during the current one) and the first pass starts
 * after one decode. Settles every image before answering (nothing left running on an error).
 */
async function scoreKeys(
  deps: BatchWorkerDeps,
  model: LoadedModel,
  threshold: ThresholdChoice,
  keys: readonly string[],
): Promise<BatchRow[]> {
  const reads = keys.map((key) => readKey(deps, key));
  const queue = createInferenceQueue(deps.extractor, { maxBatch: deps.maxBatch ?? 8 });
  const decodes = createGate(deps.decodeConcurrency ?? DECODE_CONCURRENCY);
  const settled = await Promise.allSettled(
    keys.map(async (key, i) => {
      const read = await (reads[i] as Promise<Read>);
      await decodes.acquire();
      let held = true;
      const release = () => {
        if (held) decodes.release();
        held = false;
      };
      try {
        return await scoreRead(
          deps,
          (pixels) => {
            release(); // decoded: the next image may decode while this one waits for its pass
            return queue.extract(pixels);
          },
          model,
          threshold,
          key,
          read,
        );
      } finally {
        release();
      }
    }),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<BatchRow>).value);
}

/**
 * Manifests by batch (written once, with If-None-Match, so never stale): a container reads a
 * batch's manifest once however many of its chunks it runs.
 */
const manifests = new Map<string, Promise<Manifest>>();

function cachedManifest(deps: BatchWorkerDeps, dataset: string, id: string): Promise<Manifest> {
  const key = `${dataset}/${id}`;
  let p = manifests.get(key);
  if (p === undefined) {
    if (manifests.size >= 100) manifests.clear();
    p = readManifest(deps.s3, deps.bucket, dataset, id);
    manifests.set(key, p);
    p.catch(() => manifests.delete(key));
  }
  return p;
}

/** Scores one chunk, writes its part, and finishes the batch when it was the last. */
export async function runChunk(deps: BatchWorkerDeps, msg: ChunkMessage): Promise<ChunkOutcome> {
  const started = performance.now();
  const k = batchKeys(msg.dataset, msg.id);
  // The manifest (cached per container) and the finished check in one round trip.
  const summaryRead = getJsonIfExists(deps.s3, deps.bucket, k.summary, SummarySchema);
  summaryRead.catch(() => undefined);
  const manifest = await cachedManifest(deps, msg.dataset, msg.id);
  const keys = manifest.chunks[msg.part];
  if (keys === undefined) {
    throw new TlearnError(
      'InvalidChunk',
      `batch ${msg.id} has ${manifest.chunks.length} chunks, not part ${msg.part}`,
    );
  }
  if (await summaryRead) {
    return { part: msg.part, rows: keys.length, failed: 0, batch: 'finished' };
  }
  let model: LoadedModel;
  try {
    model = await pinnedModel(deps, manifest);
  } catch (err) {
    // Only what retrying cannot fix fails the batch (no model file, spec mismatch); the rest is retried.
    const permanent = err instanceof TlearnError && (err.status < 500 || err.code === 'ModelMissing');
    if (!permanent) throw err;
    await putJson(deps.s3, deps.bucket, k.failed, {
      code: err instanceof TlearnError ? err.code : 'ModelUnavailable',
      message: describeError(err),
      at: new Date().toISOString(),
    });
    deps.log.error('batch cannot run', { dataset: msg.dataset, id: msg.id, error: describeError(err) });
    return { part: msg.part, rows: 0, failed: 0, batch: 'failed' };
  }
  const rows = await scoreKeys(deps, model, thresholdChoice(manifest.threshold), keys);
  await putObject(
    deps.s3,
    deps.bucket,
    k.part(msg.part),
    rows.map((r) => `${JSON.stringify(r)}\n`).join(''),
    {
      contentType: 'application/x-ndjson',
      // Summary check and one read per image (manifest and model: once per container; counted
      // here as on a chunk's first run).
      metadata: {
        [PART_METADATA.ms]: String(Math.round(performance.now() - started)),
        [PART_METADATA.gets]: String(2 + keys.length),
      },
    },
  );
  const failed = rows.filter((r) => r.error !== undefined).length;
  const finished = await finishBatch(deps, manifest, model.head.classes);
  return { part: msg.part, rows: rows.length, failed, batch: finished ? 'finished' : 'running' };
}

async function pinnedModel(deps: BatchWorkerDeps, manifest: Manifest): Promise<LoadedModel> {
  const cacheKey = `${manifest.dataset}/${manifest.modelVersion}`;
  let p = models.get(cacheKey);
  if (p === undefined) {
    const at = new Date().toISOString();
    p = loadModelVersion(deps.s3, deps.bucket, manifest.dataset, manifest.modelVersion, {
      promotedAt: at,
      loadedAt: at,
    });
    models.set(cacheKey, p);
    p.catch(() => models.delete(cacheKey));
  }
  const model = await p;
  if (model.spec !== deps.extractor.specId) {
    throw new SpecMismatchError(
      `model ${model.version} of '${model.dataset}' was trained on features of spec '${model.spec}', but the batch worker extracts '${deps.extractor.specId}'; re-extract and train again`,
    );
  }
  return model;
}
