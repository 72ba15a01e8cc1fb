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
import { createInferenceQueue } from '../api/inference-queue.ts';
import { type LoadedModel, loadModelVersion } from '../api/model-cache.ts';
import { scoreImageBytes } from '../api/predict.ts';
import { describeError, NotFoundError, SpecMismatchError, TlearnError } from '../errors.ts';
import { formatMegabytes, MAX_IMAGE_BYTES } from '../images/limits.ts';
import type { FeatureExtractor } from '../model/types.ts';
import { getJsonIfExists, getObject, ObjectTooLargeError, putJson, putObject } from '../storage/s3.ts';
import type { ThresholdChoice } from '../training/thresholds.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';
import { finishBatch } from './finish.ts';
import {
  type BatchRow,
  batchKeys,
  type ChunkMessage,
  type Manifest,
  PART_METADATA,
  SummarySchema,
} from './layout.ts';
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

/** Scores one image key into a row; an unusable image (missing, undecodable) is a row with `error`. */
async function scoreKey(
  deps: BatchWorkerDeps,
  extract: (pixels: Float32Array) => Promise<Float32Array>,
  model: LoadedModel,
  threshold: ThresholdChoice,
  key: string,
): Promise<BatchRow> {
  let bytes: Uint8Array;
  try {
    bytes = (await getObject(deps.s3, deps.bucket, key, { maxBytes: MAX_IMAGE_BYTES })).body;
  } catch (err) {
    if (err instanceof NotFoundError)
      return { key, error: `image '${key}' does not exist (deleted after the batch started)` };
    if (err instanceof ObjectTooLargeError)
      return { key, error: `ImageTooLarge: image is over the limit of ${formatMegabytes(MAX_IMAGE_BYTES)}` };
    throw err; // transient: the chunk is retried
  }
  try {
    const s = await scoreImageBytes(bytes, {
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

/** Scores one chunk, writes its part, and finishes the batch when it was the last. */
export async function runChunk(deps: BatchWorkerDeps, msg: ChunkMessage): Promise<ChunkOutcome> {
  const started = performance.now();
  const manifest = await readManifest(deps.s3, deps.bucket, msg.dataset, msg.id);
  const k = batchKeys(msg.dataset, msg.id);
  const keys = manifest.chunks[msg.part];
  if (keys === undefined) {
    throw new TlearnError(
      'InvalidChunk',
      `batch ${msg.id} has ${manifest.chunks.length} chunks, not part ${msg.part}`,
    );
  }
  if (await getJsonIfExists(deps.s3, deps.bucket, k.summary, SummarySchema)) {
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
  const queue = createInferenceQueue(deps.extractor, { maxBatch: deps.maxBatch ?? 8 });
  const threshold = thresholdChoice(manifest.threshold);
  const rows = await mapWithConcurrency(keys, keys.length, (key) =>
    scoreKey(deps, (p) => queue.extract(p), model, threshold, key),
  );
  await putObject(
    deps.s3,
    deps.bucket,
    k.part(msg.part),
    rows.map((r) => `${JSON.stringify(r)}\n`).join(''),
    {
      contentType: 'application/x-ndjson',
      // Manifest, summary check and one read per image (the model is read once per container).
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
