import type { FeatureSpec } from './spec.ts';

/**
 * Inference engines in fallback order: tfjs-node (libtensorflow) → onnxruntime-node (the same graph
 * built as ONNX from the same weights) → tfjs wasm (SIMD) → tfjs cpu.
 */
export type BackendName = 'tensorflow' | 'onnx' | 'wasm' | 'cpu';

/** The tfjs tensor backends (everything but onnx). */
export type TfjsBackendName = Exclude<BackendName, 'onnx'>;

/** The order `loadExtractor` tries engines in when none is forced. */
export const ENGINE_ORDER: readonly BackendName[] = ['tensorflow', 'onnx', 'wasm', 'cpu'];

/**
 * Where base model weights come from.
 * - `{ kind: 'uri', uri }`: a tfjs layers model: a directory path, `file://…/model.json` or `s3://bucket/key/model.json`.
 * - `{ kind: 'random', seed }`: seeded random weights (only when asked for; spec weights = `random-<seed>`).
 */
export type WeightsSource = { kind: 'uri'; uri: string } | { kind: 'random'; seed: number };

/**
 * A loaded VGG16 convolutional base that turns preprocessed images into feature vectors.
 * Created by `loadExtractor()` in `lib/model/extractor.ts`, once per process / container.
 */
export interface FeatureExtractor {
  /** Spec of every vector this extractor returns. */
  readonly spec: FeatureSpec;
  /** `specToString(spec)`, precomputed. */
  readonly specId: string;
  /** Length of each returned vector. */
  readonly dims: number;
  /** Backend actually in use. */
  readonly backend: BackendName;
  /**
   * Runs the forward pass on a batch. Each input is a preprocessed image as returned by
   * `preprocessImage()`: HWC float32, BGR, caffe mean-subtracted, of size spec.input.
   * Returns one Float32Array of length `dims` per input, in order. Leaks no tensors.
   */
  extractBatch(images: readonly Float32Array[]): Promise<Float32Array[]>;
  /** Frees the model's weights. */
  dispose(): void;
}
