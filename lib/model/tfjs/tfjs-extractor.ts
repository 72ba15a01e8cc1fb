/**
 * The tfjs engines' feature extractor (tfjs-node, wasm, cpu): VGG16 as a tfjs layers model.
 * `loadExtractor` (lib/model/extractor.ts) imports this module only once it has chosen a tfjs
 * backend, so a process that runs the onnx engine never loads tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { ValidationError } from '../../errors.ts';
import { type FeatureSpec, featureDims, specToString } from '../spec.ts';
import type { FeatureExtractor, TfjsBackendName } from '../types.ts';
import type { NamedWeight } from '../weights.ts';
import { buildVgg16, setVgg16Weights } from './vgg16-graph.ts';

/** Options of `loadTfjsExtractor`. */
export interface LoadTfjsExtractorOptions {
  /** Validated weights in canonical order (`loadWeights`). */
  weights: readonly NamedWeight[];
  /** The features' spec; its input size and pooling shape the graph. */
  spec: FeatureSpec;
  /** The tfjs backend already selected (`selectBackend`, lib/model/backend.ts). */
  backend: TfjsBackendName;
  /** Run one forward pass at load so the first real request is not slow. */
  warmUp: boolean;
}

/**
 * Builds the tfjs VGG16 graph for `spec`, puts the weights in (a WeightsError names a layer whose
 * shape does not fit) and optionally runs one warm-up pass. Every tensor of a batch is released
 * before `extractBatch` returns; `dispose` frees the model's variables.
 */
export async function loadTfjsExtractor(opts: LoadTfjsExtractorOptions): Promise<FeatureExtractor> {
  const { spec, backend } = opts;
  const [inputSize] = spec.input;
  const model = buildVgg16({ inputSize, pooling: spec.pooling });
  try {
    setVgg16Weights(model, opts.weights);
  } catch (err) {
    model.dispose();
    throw err;
  }
  const dims = featureDims(spec);
  const pixels = inputSize * inputSize * 3;
  let disposed = false;

  const extractor: FeatureExtractor = {
    spec,
    specId: specToString(spec),
    dims,
    backend,
    async extractBatch(images) {
      if (disposed) throw new ValidationError('this feature extractor was disposed');
      if (images.length === 0) return [];
      const batch = new Float32Array(images.length * pixels);
      images.forEach((img, i) => {
        if (img.length !== pixels) {
          throw new ValidationError(
            `image ${i} has ${img.length} values; a ${inputSize}x${inputSize}x3 input needs ${pixels} (preprocess it with this extractor's spec)`,
          );
        }
        batch.set(img, i * pixels);
      });
      const out = tf.tidy(
        () => model.predict(tf.tensor4d(batch, [images.length, inputSize, inputSize, 3])) as tf.Tensor,
      );
      try {
        const flat = (await out.data()) as Float32Array;
        return images.map((_, i) => flat.slice(i * dims, (i + 1) * dims));
      } finally {
        out.dispose();
      }
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      model.dispose();
    },
  };

  if (opts.warmUp) await extractor.extractBatch([new Float32Array(pixels)]);
  return extractor;
}
