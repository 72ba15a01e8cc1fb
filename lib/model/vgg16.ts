/**
 * VGG16's convolutional base as plain data: its layers, weight shapes and output shape. Both
 * engines build their graph from it (lib/model/tfjs/vgg16-graph.ts, lib/model/onnx/vgg16-onnx.ts);
 * it imports no tensor library, so the onnx engine never loads tfjs.
 */
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
export const VGG16_BLOCKS: ReadonlyArray<{ filters: number; convs: number }> = [
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
  VGG16_BLOCKS.forEach((block, b) => {
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

/** Shape of the model's output for one image (without the batch axis). */
export function vgg16OutputShape(inputSize: number, pooling: Pooling | null): number[] {
  const s = featureMapSize(inputSize);
  if (pooling === null) return [s, s, VGG16_FEATURE_CHANNELS];
  if (pooling === 'flatten') return [s * s * VGG16_FEATURE_CHANNELS];
  return [VGG16_FEATURE_CHANNELS];
}
