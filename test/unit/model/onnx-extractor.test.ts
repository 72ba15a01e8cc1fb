import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../lib/errors.ts';
import { selectBackend } from '../../../lib/model/backend.ts';
import { loadOnnxExtractor, weightsFromTfjsModel } from '../../../lib/model/onnx/onnx-extractor.ts';
import type { FeatureSpec, Pooling } from '../../../lib/model/spec.ts';
import { buildVgg16, setVgg16Weights } from '../../../lib/model/tfjs/vgg16-graph.ts';
import type { FeatureExtractor } from '../../../lib/model/types.ts';
import { type NamedWeight, randomWeights } from '../../../lib/model/weights.ts';

/**
 * The project's seeded random weights, with small non-zero biases: `randomWeights` leaves biases
 * at zero (like Keras), which would let a dropped or misplaced bias go unnoticed.
 */
function testWeights(seed: number): NamedWeight[] {
  let state = seed;
  return randomWeights(seed).map((w) => {
    if (w.shape.length !== 1) return w;
    const data = Float32Array.from(w.data, () => {
      state = (state * 16807) % 2147483647; // Park–Miller, deterministic
      return (state / 2147483647 - 0.5) * 0.2;
    });
    return { ...w, data };
  });
}

/** Deterministic stand-ins for preprocessed (BGR, mean-subtracted) images. */
function images(count: number, h: number, w: number, seed = 0): Float32Array[] {
  return Array.from({ length: count }, (_, k) =>
    Float32Array.from({ length: h * w * 3 }, (_, i) => Math.sin(i * 0.37 + (k + seed) * 1.7) * 110),
  );
}

function spec(input: [number, number], pooling: Pooling): FeatureSpec {
  return { model: 'vgg16', weights: 'test-9', input, pooling, preprocessing: 'caffe', resize: 'bilinear' };
}

/** Largest element-wise difference, relative to the largest magnitude of the reference. */
function relativeDiff(actual: Float32Array | undefined, expected: Float32Array | undefined): number {
  if (actual === undefined || expected === undefined || actual.length !== expected.length) return Infinity;
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i] as number));
    diff = Math.max(diff, Math.abs((expected[i] as number) - (actual[i] as number)));
  }
  return diff / scale;
}

/** Runs a tfjs model on a batch and returns one vector per image (tfjs' own flatten order). */
function tfjsPredict(model: tf.LayersModel, batch: Float32Array[], h: number, w: number): Float32Array[] {
  const flat = tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(batch.flatMap((b) => Array.from(b))), [batch.length, h, w, 3]);
    return (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
  });
  const per = flat.length / batch.length;
  return batch.map((_, i) => flat.slice(i * per, (i + 1) * per));
}

const SEED = 9;
const weights = testWeights(SEED);
const extractors: FeatureExtractor[] = [];

async function onnx(input: [number, number], pooling: Pooling): Promise<FeatureExtractor> {
  const e = await loadOnnxExtractor({ weights, spec: spec(input, pooling), threads: 1 });
  extractors.push(e);
  return e;
}

beforeAll(async () => {
  // The tfjs reference runs on whatever backend the project picks here (wasm without tfjs-node).
  await selectBackend();
});
afterAll(() => {
  for (const e of extractors) e.dispose();
});

describe('loadOnnxExtractor', () => {
  it.each<Pooling>(['flatten', 'avg', 'max'])(
    'matches the tfjs VGG16 graph with %s pooling to 1e-4 of the largest value',
    async (pooling) => {
      // Prepare: 64x64 leaves a 2x2 map, so flatten order and global pooling both matter.
      const model = buildVgg16({ inputSize: 64, pooling });
      setVgg16Weights(model, weights);
      const batch = images(2, 64, 64);
      const expected = tfjsPredict(model, batch, 64, 64);
      model.dispose();
      const extractor = await onnx([64, 64], pooling);
      // Act
      const actual = await extractor.extractBatch(batch);
      // Assess
      expect(extractor.dims).toBe(pooling === 'flatten' ? 2048 : 512);
      expect(actual).toHaveLength(2);
      for (let i = 0; i < 2; i++) {
        expect(actual[i]?.length).toBe(extractor.dims);
        expect(relativeDiff(actual[i], expected[i])).toBeLessThanOrEqual(1e-4);
        // Not a trivial all-zero match: most units fire.
        expect(expected[i]?.filter((v) => v > 0).length).toBeGreaterThan(extractor.dims / 2);
      }
    },
  );

  it("flattens a non-square map in Keras' (h, w, c) order and floors odd sizes like 'valid' pooling", async () => {
    // Prepare: 96x80 → a 3x2x512 map (80 → 40 → 20 → 10 → 5 → 2 floors); the tfjs graph without
    // a head returns the NHWC map, whose memory order is exactly Keras' Flatten order.
    const [h, w] = [96, 80];
    const model = buildVgg16({ inputSize: null, pooling: null });
    setVgg16Weights(model, weights);
    const batch = images(1, h, w, 5);
    const [expected] = tfjsPredict(model, batch, h, w);
    model.dispose();
    const extractor = await onnx([h, w], 'flatten');
    // Act
    const [actual] = await extractor.extractBatch(batch);
    // Assess
    expect(extractor.dims).toBe(3 * 2 * 512);
    expect(relativeDiff(actual, expected)).toBeLessThanOrEqual(1e-4);
    // The same values in ONNX's native (c, h, w) order are far off: the check above would catch
    // a missing NCHW → NHWC transpose before Flatten.
    const chw = new Float32Array(3 * 2 * 512);
    for (let y = 0; y < 3; y++)
      for (let x = 0; x < 2; x++)
        for (let c = 0; c < 512; c++) chw[(c * 3 + y) * 2 + x] = expected?.[(y * 2 + x) * 512 + c] ?? 0;
    expect(relativeDiff(chw, expected)).toBeGreaterThan(0.1);
  });

  it('returns for a batch of three what it returns for each image alone, in order', async () => {
    // Prepare
    const extractor = await onnx([32, 48], 'flatten');
    const batch = images(3, 32, 48, 11);
    // Act
    const together = await extractor.extractBatch(batch);
    const alone = [];
    for (const image of batch) alone.push(...(await extractor.extractBatch([image])));
    // Assess
    expect(together).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      expect(together[i]?.buffer.byteLength).toBe(512 * 4); // own buffer, ready for a .npy writer
      expect(relativeDiff(together[i], alone[i])).toBeLessThanOrEqual(1e-5);
    }
    expect(relativeDiff(together[0], together[1])).toBeGreaterThan(1e-3);
  });

  it('reports its spec, dims and the onnx engine, and rejects images of the wrong size', async () => {
    const extractor = await onnx([48, 48], 'avg');
    expect(extractor.specId).toBe('vgg16/test-9/48x48/avg/caffe/bilinear');
    expect(extractor.dims).toBe(512);
    expect(String(extractor.backend)).toBe('onnx');
    expect(await extractor.extractBatch([])).toEqual([]);
    await expect(extractor.extractBatch(images(1, 32, 32))).rejects.toThrow(ValidationError);
  });

  it('refuses to run once disposed', async () => {
    const extractor = await loadOnnxExtractor({
      weights,
      spec: spec([32, 32], 'max'),
      threads: 1,
      warmUp: false,
    });
    extractor.dispose();
    await expect(extractor.extractBatch(images(1, 32, 32))).rejects.toThrow(/disposed/);
  });

  it('does not grow memory over repeated calls', async () => {
    // Prepare: a real gc; onnxruntime lets go of fed buffers in finalizers that run a tick
    // after a collection, hence a few rounds of gc + setImmediate before each reading.
    setFlagsFromString('--expose-gc');
    const collect = runInNewContext('gc') as () => void;
    const settle = async () => {
      for (let i = 0; i < 3; i++) {
        collect();
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const extractor = await onnx([64, 64], 'avg');
    const batch = images(4, 64, 64, 3);
    for (let i = 0; i < 3; i++) await extractor.extractBatch(batch); // arena and plans settle
    await settle();
    const before = process.memoryUsage();
    // Act: 25 calls; keeping any input batch (192 KiB), raw output (8 KiB) or returned vectors
    // (8 KiB) per call alive would add ≥ 200 KiB of ArrayBuffers, a native leak of activations MBs.
    for (let i = 0; i < 25; i++) await extractor.extractBatch(batch);
    await settle();
    const after = process.memoryUsage();
    // Assess
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(128 * 1024);
    expect(after.rss - before.rss).toBeLessThan(40 * 2 ** 20);
  });
});

describe('weightsFromTfjsModel', () => {
  it('hands over the weights of a loaded tfjs VGG16 unchanged, in canonical order', () => {
    // Prepare
    const model = buildVgg16({ inputSize: 32, pooling: 'avg' });
    setVgg16Weights(model, weights);
    // Act
    const out = weightsFromTfjsModel(model);
    model.dispose();
    // Assess
    expect(out.map((w) => w.name)).toEqual(weights.map((w) => w.name));
    out.forEach((w, i) => {
      const want = weights[i];
      expect(w.shape).toEqual(want?.shape);
      // Buffer.equals, not toEqual: a deep diff of 59 MB element by element takes minutes.
      const same =
        want !== undefined &&
        Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength).equals(
          Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength),
        );
      expect(same, w.name).toBe(true);
    });
  });

  it('names the missing layer when the model is not a VGG16 base', () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const other = tf.model({
      inputs: input,
      outputs: tf.layers
        .conv2d({ name: 'block1_conv1', filters: 64, kernelSize: 3 })
        .apply(input) as tf.SymbolicTensor,
    });
    expect(() => weightsFromTfjsModel(other)).toThrow(/no layer block1_conv2/);
    other.dispose();
  });
});
