/**
 * One image through a promoted model: decode → forward pass → head → threshold. The single code
 * path behind `POST /datasets/{d}/predictions` (lib/api/predict.ts) and every batch row
 * (lib/batch/worker.ts), so both give the same answer.
 */
import { TlearnError } from '../errors.ts';
import { preprocessImage } from '../images/preprocess.ts';
import type { FeatureExtractor } from '../model/types.ts';
import { predictProba } from '../training/head.ts';
import { applyThreshold, type ThresholdChoice, type ThresholdOutcome } from '../training/thresholds.ts';
import type { LoadedModel } from './model-cache.ts';

/** One class and its probability (the API's `Score`, lib/api/schemas.ts). */
export interface Score {
  label: string;
  probability: number;
}

/** Sorts scores by probability, highest first (ties by label so the order is stable). */
export function rankScores(classes: readonly string[], probabilities: readonly number[]): Score[] {
  return classes
    .map((label, i) => ({ label, probability: probabilities[i] ?? 0 }))
    .sort((a, b) => b.probability - a.probability || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

/** One image scored by a promoted model: what a prediction and a batch row both report. */
export interface ScoredImage {
  scores: Score[];
  confidence: number;
  outcome: ThresholdOutcome;
  timingsMs: { decode: number; forward: number; head: number };
}

/** What {@link scoreImageBytes} needs: the extractor (for its spec), a forward pass, the model. */
export interface ScoreImageOptions {
  extractor: FeatureExtractor;
  /** One forward pass (the API's inference queue, or the extractor directly). */
  extract: (pixels: Float32Array) => Promise<Float32Array>;
  model: LoadedModel;
  limitInputPixels: number;
  threshold: ThresholdChoice;
}

/**
 * Decode → forward pass → head → threshold for one image: the single code path behind
 * `POST /datasets/{d}/predictions` and every batch row (lib/batch/), so both give the same answer.
 * Throws (e.g. `ImageDecodeError`) when the image is unusable.
 */
export async function scoreImageBytes(bytes: Uint8Array, opts: ScoreImageOptions): Promise<ScoredImage> {
  const { extractor, model } = opts;
  const t0 = performance.now();
  const pixels = await preprocessImage(bytes, {
    size: extractor.spec.input,
    resize: extractor.spec.resize,
    limitInputPixels: opts.limitInputPixels,
  });
  const t1 = performance.now();
  const features = await opts.extract(pixels);
  const t2 = performance.now();
  const probabilities = predictProba(model.head, features);
  const t3 = performance.now();
  const scores = rankScores(model.head.classes, probabilities);
  const best = scores[0];
  if (best === undefined) throw new TlearnError('EmptyHead', `model ${model.version} has no classes`);
  const outcome = applyThreshold(opts.threshold, best.label, best.probability, model.thresholds);
  return {
    scores,
    confidence: best.probability,
    outcome,
    timingsMs: { decode: t1 - t0, forward: t2 - t1, head: t3 - t2 },
  };
}
