/**
 * VGG16's convolutional base as a tfjs layers model, and how weights go into it. Only the tfjs
 * engines (lib/model/tfjs/tfjs-extractor.ts) and saving a tfjs model.json (its topology,
 * lib/model/weights.ts) load this module: importing it loads @tensorflow/tfjs (~80 MB resident),
 * which the onnx engine does without.
 */
import * as tf from '@tensorflow/tfjs';
import { ValidationError, WeightsError } from '../../errors.ts';
import type { Pooling } from '../spec.ts';
import { VGG16_BLOCKS, VGG16_CONV_LAYERS, VGG16_MIN_INPUT, VGG16_PARAMS } from '../vgg16.ts';
import { type NamedWeight, sameShape } from '../weights.ts';

/** Options of `buildVgg16`. */
export interface BuildVgg16Options {
  /** Square input size in pixels (≥ 32), or null for any size (like Keras' `(None, None, 3)`). */
  inputSize: number | null;
  /**
   * Head after `block5_pool`: `flatten` (h*w*512), `avg` / `max` (global pooling, 512), or null
   * for the raw feature map (Keras `pooling=None`).
   */
  pooling: Pooling | null;
}

const HEAD_LAYER: Record<Pooling, string> = {
  flatten: 'flatten',
  avg: 'global_average_pooling2d',
  max: 'global_max_pooling2d',
};

/**
 * Builds VGG16's convolutional base (Keras `applications.VGG16(include_top=False)`) in code:
 * 13 conv 3x3 'same' + ReLU and 5 max-pool 2x2/2 'valid' layers named `block1_conv1` …
 * `block5_pool`, input `[h, w, 3]` (BGR, caffe-preprocessed), plus the optional pooling head.
 *
 * Kernels start as zeros (cheap and deterministic): load real or seeded weights with
 * `setVgg16Weights` before use.
 *
 * @example const model = buildVgg16({ inputSize: 150, pooling: 'flatten' }); // output [null, 8192]
 */
export function buildVgg16(opts: BuildVgg16Options): tf.LayersModel {
  const { inputSize, pooling } = opts;
  if (inputSize !== null && (!Number.isInteger(inputSize) || inputSize < VGG16_MIN_INPUT)) {
    throw new ValidationError(
      `VGG16 input size must be a whole number ≥ ${VGG16_MIN_INPUT} (got ${inputSize})`,
    );
  }
  if (pooling === 'flatten' && inputSize === null) {
    throw new ValidationError("pooling 'flatten' needs a fixed input size");
  }
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1', dtype: 'float32' });
  let x: tf.SymbolicTensor = input;
  let layer = 0;
  VGG16_BLOCKS.forEach((block, b) => {
    for (let c = 1; c <= block.convs; c++) {
      const spec = VGG16_CONV_LAYERS[layer++];
      if (spec === undefined) throw new Error('VGG16 layer table out of step with its blocks');
      x = tf.layers
        .conv2d({
          name: spec.name,
          filters: spec.filters,
          kernelSize: 3,
          strides: 1,
          padding: 'same',
          activation: 'relu',
          useBias: true,
          kernelInitializer: 'zeros',
          biasInitializer: 'zeros',
        })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers
      .maxPooling2d({ name: `block${b + 1}_pool`, poolSize: 2, strides: 2, padding: 'valid' })
      .apply(x) as tf.SymbolicTensor;
  });
  if (pooling !== null) {
    const name = HEAD_LAYER[pooling];
    const head =
      pooling === 'flatten'
        ? tf.layers.flatten({ name })
        : pooling === 'avg'
          ? tf.layers.globalAveragePooling2d({ name })
          : tf.layers.globalMaxPooling2d({ name });
    x = head.apply(x) as tf.SymbolicTensor;
  }
  return tf.model({ inputs: input, outputs: x, name: 'vgg16' });
}

/**
 * Puts validated weights into a graph built by `buildVgg16`, checking each layer's shape first
 * (a WeightsError names the layer). Leaves no tensors behind but the model's own variables.
 */
export function setVgg16Weights(model: tf.LayersModel, weights: readonly NamedWeight[]): void {
  const byName = new Map(weights.map((w) => [w.name, w]));
  for (const spec of VGG16_CONV_LAYERS) {
    let layer: tf.layers.Layer;
    try {
      layer = model.getLayer(spec.name);
    } catch (err) {
      throw new WeightsError(`the model has no layer ${spec.name}`, { cause: err });
    }
    const kernel = byName.get(`${spec.name}/kernel`);
    const bias = byName.get(`${spec.name}/bias`);
    if (kernel === undefined || bias === undefined)
      throw new WeightsError(`no weights for layer ${spec.name}`);
    const [kVar, bVar] = layer.weights;
    if (kVar === undefined || bVar === undefined || layer.weights.length !== 2) {
      throw new WeightsError(
        `layer ${spec.name} has ${layer.weights.length} weights, expected kernel and bias`,
      );
    }
    if (!sameShape(kVar.shape, kernel.shape) || !sameShape(bVar.shape, bias.shape)) {
      throw new WeightsError(
        `layer ${spec.name}: graph has kernel [${kVar.shape}] bias [${bVar.shape}], ` +
          `weights have kernel [${kernel.shape}] bias [${bias.shape}]`,
      );
    }
    // setWeights shares the new tensors' data with the layer's variables (ref-counted), so the
    // tensors made here can be released by tidy right away.
    tf.tidy(() => layer.setWeights([tf.tensor(kernel.data, kernel.shape), tf.tensor(bias.data, bias.shape)]));
  }
}

/** `generatedBy` of a model.json this tfjs writes. */
export const TFJS_GENERATED_BY = `TensorFlow.js tfjs-layers v${tf.version_layers}`;

let topologyCache: object | undefined;
/**
 * Keras-style topology of the bare base (input `(None, None, 3)`, no pooling head), so the saved
 * directory also loads with plain `tf.loadLayersModel`. Built once (allocates zero kernels briefly).
 */
export function vgg16BaseTopology(): object {
  if (topologyCache === undefined) {
    const model = buildVgg16({ inputSize: null, pooling: null });
    try {
      if (model.countParams() !== VGG16_PARAMS) throw new Error('VGG16 graph has the wrong parameter count');
      topologyCache = model.toJSON(null, false) as object;
    } finally {
      model.dispose();
    }
  }
  return structuredClone(topologyCache);
}
