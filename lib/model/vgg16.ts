import * as tf from '@tensorflow/tfjs';
import { ValidationError } from '../errors.ts';
import { featureMapSize, type Pooling } from './spec.ts';

/** One 3x3 'same' convolution + ReLU of VGG16, named as in Keras. */
export interface Vgg16ConvLayer {
  /** Keras layer name, e.g. `block3_conv2`. */
  name: string;
  /** Input channels (3 for the first layer). */
  inChannels: number;
  /** Output channels (filters). */
  filters: number;
}

/** Filters of each of VGG16's five blocks and how many convolutions each has. */
const BLOCKS: ReadonlyArray<{ filters: number; convs: number }> = [
  { filters: 64, convs: 2 },
  { filters: 128, convs: 2 },
  { filters: 256, convs: 3 },
  { filters: 512, convs: 3 },
  { filters: 512, convs: 3 },
];

/** The 13 convolution layers in graph order (= Keras `model.get_weights()` order). */
export const VGG16_CONV_LAYERS: readonly Vgg16ConvLayer[] = (() => {
  const layers: Vgg16ConvLayer[] = [];
  let inChannels = 3;
  BLOCKS.forEach((block, b) => {
    for (let c = 1; c <= block.convs; c++) {
      layers.push({ name: `block${b + 1}_conv${c}`, inChannels, filters: block.filters });
      inChannels = block.filters;
    }
  });
  return layers;
})();

/** Parameters of VGG16 without the top (Keras `VGG16(include_top=False).count_params()`). */
export const VGG16_PARAMS = 14_714_688;

/** Channels of the last feature map (`block5_pool`). */
export const VGG16_FEATURE_CHANNELS = 512;

/** Smallest input the five 2x2 pools leave at least one pixel of. */
export const VGG16_MIN_INPUT = 32;

/** Name and shape of one weight tensor of the graph. */
export interface Vgg16WeightShape {
  /** `<layer>/kernel` or `<layer>/bias` (what tfjs writes in model.json). */
  name: string;
  layer: string;
  role: 'kernel' | 'bias';
  shape: number[];
}

/**
 * Every weight of the graph in canonical order: for each conv layer its kernel
 * `[3, 3, in, out]` (tfjs and TF-ordered Keras layout: rows, cols, in, out) then its bias `[out]`.
 */
export function vgg16WeightShapes(): Vgg16WeightShape[] {
  return VGG16_CONV_LAYERS.flatMap((l) => [
    {
      name: `${l.name}/kernel`,
      layer: l.name,
      role: 'kernel' as const,
      shape: [3, 3, l.inChannels, l.filters],
    },
    { name: `${l.name}/bias`, layer: l.name, role: 'bias' as const, shape: [l.filters] },
  ]);
}

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
  BLOCKS.forEach((block, b) => {
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

/** Shape of the model's output for one image (without the batch axis). */
export function vgg16OutputShape(inputSize: number, pooling: Pooling | null): number[] {
  const s = featureMapSize(inputSize);
  if (pooling === null) return [s, s, VGG16_FEATURE_CHANNELS];
  if (pooling === 'flatten') return [s * s * VGG16_FEATURE_CHANNELS];
  return [VGG16_FEATURE_CHANNELS];
}
