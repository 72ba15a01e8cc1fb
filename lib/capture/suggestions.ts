/**
 * What to label next: images of the unlabelled pool (`unlabelled/{d}/…`, their features under
 * `unlabelled-features/{d}/…`, never trained on) ranked so that a few labels teach the model the
 * most: uncertain (small margin between the two top classes) and unlike each other (greedy
 * k-center on count sketches of the features, so 50 suggestions are not 50 near-copies).
 * See docs/ARCHITECTURE.md "Closing the loop".
 */
import { CopyObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { NotFoundError, ValidationError } from '../errors.ts';
import { FEATURE_META } from '../features/metadata.ts';
import { decodeNpy } from '../features/npy.ts';
import { sketchRows } from '../quality/similarity.ts';
import {
  imageKey,
  POOL_FEATURES_PREFIX,
  poolFeaturesPrefix,
  UNLABELLED_PREFIX,
  unlabelledPrefix,
} from '../storage/keys.ts';
import { deleteObject, getObject, headObject, listObjects } from '../storage/s3.ts';
import { predictProba } from '../training/head.ts';
import type { Head } from '../training/types.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import { checkReviewLabel, marginOf } from './captures.ts';

/** Pool images scored per request: the newest this many (their features are read whole). */
export const MAX_POOL_SCORED = 2000;
/** Candidates for diversity: the most uncertain `CANDIDATES_PER_PICK × n` of the pool. */
const CANDIDATES_PER_PICK = 5;
const SKETCH_WIDTH = 256;
const READ_CONCURRENCY = 16;

/** One pool image, scored by the promoted model. */
export interface ScoredPoolImage {
  key: string;
  probabilities: readonly number[];
  features: Float32Array;
}

/** One suggestion. */
export interface Suggestion {
  /** The image, `unlabelled/{d}/…`. */
  key: string;
  /** The model's guess and its probability. */
  label: string;
  confidence: number;
  margin: number;
  scores: Array<{ label: string; probability: number }>;
}

/**
 * Picks `n` images: candidates are the `5n` smallest margins; the first pick is the most uncertain,
 * each next one maximizes (distance to the nearest pick) × (1 − margin), distances being cosine
 * distances of count sketches of the features. Deterministic.
 */
export function rankSuggestions(
  pool: readonly ScoredPoolImage[],
  classes: readonly string[],
  n: number,
): Suggestion[] {
  if (pool.length === 0 || n <= 0) return [];
  const ranked = pool.map((p) => {
    const scores = classes
      .map((label, i) => ({ label, probability: p.probabilities[i] ?? 0 }))
      .sort((a, b) => b.probability - a.probability || (a.label < b.label ? -1 : 1));
    return { p, scores, margin: marginOf(scores) };
  });
  ranked.sort((a, b) => a.margin - b.margin || (a.p.key < b.p.key ? -1 : 1));
  const candidates = ranked.slice(0, Math.min(ranked.length, CANDIDATES_PER_PICK * n));
  const d = candidates[0]?.p.features.length ?? 0;
  const sketch = sketchRows(
    { n: candidates.length, d, row: (i) => candidates[i]?.p.features ?? new Float32Array(d) },
    SKETCH_WIDTH,
    17,
  );
  const unit = (i: number) => {
    const norm = sketch.sketchNorms[i] || 1;
    return sketch.data.subarray(i * SKETCH_WIDTH, (i + 1) * SKETCH_WIDTH).map((v) => v / norm);
  };
  const vectors = candidates.map((_, i) => unit(i));
  const nearest = new Float64Array(candidates.length).fill(Number.POSITIVE_INFINITY);
  const picked: number[] = [];
  const taken = new Uint8Array(candidates.length);
  while (picked.length < Math.min(n, candidates.length)) {
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < candidates.length; i++) {
      if (taken[i]) continue;
      const spread = picked.length === 0 ? 1 : (nearest[i] as number);
      const score = spread * (1 - (candidates[i]?.margin ?? 1) + 1e-6);
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    taken[best] = 1;
    picked.push(best);
    const v = vectors[best] as Float32Array;
    for (let i = 0; i < candidates.length; i++) {
      if (taken[i]) continue;
      const u = vectors[i] as Float32Array;
      let dot = 0;
      for (let k = 0; k < SKETCH_WIDTH; k++) dot += (u[k] as number) * (v[k] as number);
      nearest[i] = Math.min(nearest[i] as number, Math.max(0, 1 - dot));
    }
  }
  return picked.map((i) => {
    const c = candidates[i];
    if (!c) throw new Error('unreachable: picked index out of range');
    const top = c.scores[0];
    return {
      key: c.p.key,
      label: top?.label ?? '',
      confidence: top?.probability ?? 0,
      margin: c.margin,
      scores: c.scores.slice(0, 3),
    };
  });
}

/** The pool image a pool feature key stands for (`unlabelled-features/{d}/x.jpg.npy` → `unlabelled/{d}/x.jpg`). */
export function poolImageKey(featureKey: string, dataset: string): string | undefined {
  const prefix = poolFeaturesPrefix(dataset);
  if (!featureKey.startsWith(prefix) || !featureKey.endsWith('.npy')) return undefined;
  return `${unlabelledPrefix(dataset)}${featureKey.slice(prefix.length, -'.npy'.length)}`;
}

/** The pool, as counts and the scored newest images. */
export interface PoolSuggestions {
  pool: { images: number; withFeatures: number; scored: number; otherSpec: number };
  suggestions: Suggestion[];
}

/**
 * Lists the pool, reads the features of the newest {@link MAX_POOL_SCORED} images made with the
 * model's spec, scores them with the head and ranks `n` of them.
 */
export async function suggestFromPool(
  s3: S3Client,
  bucket: string,
  dataset: string,
  head: Head,
  n: number,
): Promise<PoolSuggestions> {
  let images = 0;
  for await (const o of listObjects(s3, bucket, unlabelledPrefix(dataset)))
    if (!o.key.endsWith('/')) images += 1;
  const features = [];
  for await (const o of listObjects(s3, bucket, poolFeaturesPrefix(dataset))) {
    if (poolImageKey(o.key, dataset)) features.push(o);
  }
  features.sort((a, b) => (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0));
  const newest = features.slice(0, MAX_POOL_SCORED);
  let otherSpec = 0;
  const scored = await mapWithConcurrency(
    newest,
    READ_CONCURRENCY,
    async (o): Promise<ScoredPoolImage | undefined> => {
      const obj = await getObject(s3, bucket, o.key);
      if (obj.metadata[FEATURE_META.spec] !== head.spec) {
        otherSpec += 1;
        return undefined;
      }
      const vec = decodeNpy(obj.body).data;
      const key = poolImageKey(o.key, dataset) as string;
      return { key, features: vec, probabilities: predictProba(head, vec) };
    },
  );
  const usable = scored.filter((s): s is ScoredPoolImage => s !== undefined);
  return {
    pool: { images, withFeatures: features.length, scored: usable.length, otherSpec },
    suggestions: rankSuggestions(usable, head.classes, n),
  };
}

/** Whether a key is in a dataset's pool (a suggestion being labelled must be). */
export function isPoolKey(key: string, dataset: string): boolean {
  const prefix = unlabelledPrefix(dataset);
  const rest = key.slice(prefix.length);
  return (
    key.startsWith(UNLABELLED_PREFIX) &&
    key.startsWith(prefix) &&
    rest.length > 0 &&
    !rest.split('/').some((p) => p === '' || p === '.' || p === '..')
  );
}

/** The pool feature key of a pool image (`unlabelled/{d}/x.jpg` → `unlabelled-features/{d}/x.jpg.npy`). */
export function poolFeatureKey(key: string): string {
  return `${POOL_FEATURES_PREFIX}${key.slice(UNLABELLED_PREFIX.length)}.npy`;
}

/**
 * Labels a pool image: copied to `datasets/{d}/{label}/{file}` (the pool's folders kept in the
 * file name's place), then removed from the pool with its feature. A label outside `classes`
 * needs `createClass`. Returns the new image key.
 */
export async function labelPoolImage(
  s3: S3Client,
  bucket: string,
  input: { dataset: string; key: string; label: string; classes: readonly string[]; createClass: boolean },
): Promise<string> {
  if (!isPoolKey(input.key, input.dataset)) {
    throw new ValidationError(`'key' must name an image under ${unlabelledPrefix(input.dataset)}`, {
      code: 'InvalidImageKey',
    });
  }
  checkReviewLabel(input);
  if ((await headObject(s3, bucket, input.key)) === undefined) {
    throw new NotFoundError(`image '${input.key.slice(0, 200)}' is not in the pool (labelled already?)`, {
      code: 'ImageNotFound',
    });
  }
  const file = input.key.slice(unlabelledPrefix(input.dataset).length).replace(/\//g, '_');
  const target = imageKey(input.dataset, input.label, file);
  await s3.send(
    new CopyObjectCommand({
      Bucket: bucket,
      Key: target,
      CopySource: `${bucket}/${encodeURIComponent(input.key).replace(/%2F/g, '/')}`,
    }),
  );
  await deleteObject(s3, bucket, input.key);
  await deleteObject(s3, bucket, poolFeatureKey(input.key));
  return target;
}
