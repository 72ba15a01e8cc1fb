import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../lib/model/backend.ts';
import { featureDims } from '../../../lib/model/spec.ts';
import { buildVgg16, setVgg16Weights } from '../../../lib/model/tfjs/vgg16-graph.ts';
import {
  VGG16_CONV_LAYERS,
  VGG16_PARAMS,
  vgg16OutputShape,
  vgg16WeightShapes,
} from '../../../lib/model/vgg16.ts';
import { type NamedWeight, randomWeights } from '../../../lib/model/weights.ts';

beforeAll(async () => {
  await selectBackend();
});

/** Plain-loop 3x3 'same' convolution + ReLU, HWC input, kernel [ky][kx][in][out] (the reference). */
function convReluRef(
  input: Float32Array,
  size: number,
  cin: number,
  kernel: Float32Array,
  bias: Float32Array,
  cout: number,
): Float32Array {
  const out = new Float32Array(size * size * cout);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let o = 0; o < cout; o++) {
        let acc = bias[o] ?? 0;
        for (let ky = 0; ky < 3; ky++) {
          const iy = y + ky - 1;
          if (iy < 0 || iy >= size) continue;
          for (let kx = 0; kx < 3; kx++) {
            const ix = x + kx - 1;
            if (ix < 0 || ix >= size) continue;
            for (let c = 0; c < cin; c++) {
              acc +=
                (input[(iy * size + ix) * cin + c] ?? 0) *
                (kernel[((ky * 3 + kx) * cin + c) * cout + o] ?? 0);
            }
          }
        }
        out[(y * size + x) * cout + o] = Math.max(0, acc);
      }
    }
  }
  return out;
}

function maxPoolRef(input: Float32Array, size: number, ch: number): Float32Array {
  const half = Math.floor(size / 2);
  const out = new Float32Array(half * half * ch);
  for (let y = 0; y < half; y++)
    for (let x = 0; x < half; x++)
      for (let c = 0; c < ch; c++) {
        let m = Number.NEGATIVE_INFINITY;
        for (let dy = 0; dy < 2; dy++)
          for (let dx = 0; dx < 2; dx++)
            m = Math.max(m, input[((2 * y + dy) * size + 2 * x + dx) * ch + c] ?? m);
        out[(y * half + x) * ch + c] = m;
      }
  return out;
}

/** Runs the graph up to `layer` on one HWC image and returns the values. */
function runTo(model: tf.LayersModel, layer: string, image: Float32Array, size: number): Float32Array {
  const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output as tf.SymbolicTensor });
  return tf.tidy(
    () => (sub.predict(tf.tensor4d(image, [1, size, size, 3])) as tf.Tensor).dataSync() as Float32Array,
  );
}

function weight(weights: NamedWeight[], name: string): Float32Array {
  const w = weights.find((x) => x.name === name);
  if (!w) throw new Error(`no ${name}`);
  return w.data;
}

describe('buildVgg16', () => {
  it('has the 14,714,688 parameters of Keras VGG16 without the top', () => {
    const model = buildVgg16({ inputSize: 32, pooling: null });
    try {
      expect(model.countParams()).toBe(VGG16_PARAMS);
    } finally {
      model.dispose();
    }
  });

  it('names and shapes every layer as Keras does, from block1_conv1 to block5_pool', () => {
    const model = buildVgg16({ inputSize: 64, pooling: null });
    try {
      const names = model.layers.map((l) => l.name);
      expect(names).toEqual([
        'input_1',
        'block1_conv1',
        'block1_conv2',
        'block1_pool',
        'block2_conv1',
        'block2_conv2',
        'block2_pool',
        'block3_conv1',
        'block3_conv2',
        'block3_conv3',
        'block3_pool',
        'block4_conv1',
        'block4_conv2',
        'block4_conv3',
        'block4_pool',
        'block5_conv1',
        'block5_conv2',
        'block5_conv3',
        'block5_pool',
      ]);
      expect(model.getLayer('block1_conv1').getConfig()).toMatchObject({
        kernelSize: [3, 3],
        padding: 'same',
        activation: 'relu',
        filters: 64,
      });
      expect(model.getLayer('block3_pool').getConfig()).toMatchObject({
        poolSize: [2, 2],
        strides: [2, 2],
        padding: 'valid',
      });
      expect(model.getLayer('block4_conv1').outputShape).toEqual([null, 8, 8, 512]);
      expect(model.outputs[0]?.shape).toEqual([null, 2, 2, 512]);
      for (const w of vgg16WeightShapes()) {
        const layer = model.getLayer(w.layer);
        expect(layer.weights[w.role === 'kernel' ? 0 : 1]?.shape).toEqual(w.shape);
      }
      expect(VGG16_CONV_LAYERS).toHaveLength(13);
    } finally {
      model.dispose();
    }
  });

  it.each([
    [32, 'flatten', [512]],
    [32, 'avg', [512]],
    [32, 'max', [512]],
    [64, 'flatten', [2048]],
    [64, 'avg', [512]],
    [150, 'flatten', [8192]],
  ] as const)('gives input %i with %s pooling an output of %j per image', (size, pooling, shape) => {
    const model = buildVgg16({ inputSize: size, pooling });
    try {
      expect(model.outputs[0]?.shape).toEqual([null, ...shape]);
      expect(vgg16OutputShape(size, pooling)).toEqual([...shape]);
      expect(featureDims({ input: [size, size], pooling })).toBe(shape[0]);
    } finally {
      model.dispose();
    }
  });

  it('refuses an input smaller than 32 pixels', () => {
    expect(() => buildVgg16({ inputSize: 16, pooling: 'avg' })).toThrow(/≥ 32/);
  });

  it('computes block1 (conv+relu, conv+relu, max-pool) exactly like a plain-loop reference', () => {
    // Prepare: seeded weights (asymmetric kernels, so a transposed or flipped kernel differs).
    const size = 32;
    const weights = randomWeights(3);
    const biasDelta = Float32Array.from({ length: 64 }, (_, i) => (i % 5) * 0.01 - 0.02);
    const bias1 = weight(weights, 'block1_conv1/bias');
    bias1.set(biasDelta);
    const model = buildVgg16({ inputSize: size, pooling: null });
    setVgg16Weights(model, weights);
    const image = Float32Array.from({ length: size * size * 3 }, (_, i) => Math.sin(i * 0.37) * 100);
    try {
      // Act
      const conv1 = runTo(model, 'block1_conv1', image, size);
      const pool = runTo(model, 'block1_pool', image, size);
      // Assess
      const refConv1 = convReluRef(image, size, 3, weight(weights, 'block1_conv1/kernel'), bias1, 64);
      const refConv2 = convReluRef(
        refConv1,
        size,
        64,
        weight(weights, 'block1_conv2/kernel'),
        weight(weights, 'block1_conv2/bias'),
        64,
      );
      const refPool = maxPoolRef(refConv2, size, 64);
      expect(conv1.length).toBe(refConv1.length);
      expect(pool.length).toBe(refPool.length);
      const maxErr = (a: Float32Array, b: Float32Array) =>
        a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] ?? Number.NaN)) / (1 + Math.abs(v))), 0);
      expect(maxErr(conv1, refConv1)).toBeLessThan(1e-4);
      expect(maxErr(pool, refPool)).toBeLessThan(1e-4);
      expect(refPool.some((v) => v > 0)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('applies the kernel as [row, col, in, out]: a single top-right tap copies the pixel down-left of it', () => {
    // Prepare: block1_conv1 output channel 0 = input(y-1, x+1, channel 0) - 50, ReLU'd;
    // block1_conv2 = identity on channel 0; then 2x2 max-pool. Hand-computable.
    const size = 32;
    const weights = randomWeights(0).map((w) => ({ ...w, data: new Float32Array(w.data.length) }));
    weight(weights, 'block1_conv1/kernel')[((0 * 3 + 2) * 3 + 0) * 64 + 0] = 1;
    weight(weights, 'block1_conv1/bias')[0] = -50;
    weight(weights, 'block1_conv2/kernel')[((1 * 3 + 1) * 64 + 0) * 64 + 0] = 1;
    const image = new Float32Array(size * size * 3);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) image[(y * size + x) * 3] = y * 100 + x;
    const model = buildVgg16({ inputSize: size, pooling: null });
    setVgg16Weights(model, weights);
    try {
      // Act
      const pool = runTo(model, 'block1_pool', image, size);
      // Assess: by hand, conv(y, x) = max(0, (y-1)*100 + (x+1) - 50) inside the image, else max(0, -50) = 0.
      const conv = (y: number, x: number) =>
        y - 1 < 0 || x + 1 >= size ? 0 : Math.max(0, (y - 1) * 100 + x + 1 - 50);
      expect(conv(1, 5)).toBe(0);
      expect(conv(2, 0)).toBe(51);
      for (const [py, px] of [
        [0, 0],
        [0, 15],
        [1, 0],
        [1, 3],
        [7, 9],
        [15, 14],
        [15, 15],
      ] as const) {
        const expected = Math.max(
          conv(2 * py, 2 * px),
          conv(2 * py, 2 * px + 1),
          conv(2 * py + 1, 2 * px),
          conv(2 * py + 1, 2 * px + 1),
        );
        expect(pool[(py * 16 + px) * 64]).toBe(expected);
      }
      expect(pool[(1 * 16 + 3) * 64]).toBe(158); // max at (y=3, x=7): 2*100 + 8 - 50
      expect(pool[(15 * 16 + 14) * 64]).toBe(2980); // max at (y=31, x=29): 30*100 + 30 - 50
      expect(pool[(15 * 16 + 15) * 64]).toBe(2981); // (y=31, x=30); x=31 reads the zero padding
      expect(pool[(0 * 16 + 0) * 64]).toBe(0); // rows 0-1 stay under the -50 bias
    } finally {
      model.dispose();
    }
  });
});
