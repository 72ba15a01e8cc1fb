import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpecMismatchError, ValidationError } from '../../../lib/errors.ts';
import { readOnnxMetadata } from '../../../lib/export/onnx-metadata.ts';
import {
  buildModelExport,
  buildModelOnnx,
  EXPORT_INPUT_NAME,
  EXPORT_OUTPUT_NAME,
} from '../../../lib/export/onnx-model.ts';
import { CAFFE_MEAN_BGR } from '../../../lib/images/preprocess.ts';
import { loadExtractor } from '../../../lib/model/extractor.ts';
import { calibrateVgg16, calibrationImages } from '../../../lib/model/onnx/calibration.ts';
import { loadOnnxExtractor } from '../../../lib/model/onnx/onnx-extractor.ts';
import {
  buildVgg16Int8Onnx,
  quantizeBias,
  quantizeWeightsPerChannel,
  uint8Params,
} from '../../../lib/model/onnx/vgg16-int8-onnx.ts';
import { type FeatureSpec, parseSpec, specPrecision, specToString } from '../../../lib/model/spec.ts';
import type { FeatureExtractor } from '../../../lib/model/types.ts';
import { type NamedWeight, randomWeights } from '../../../lib/model/weights.ts';
import { predictProba } from '../../../lib/training/head.ts';
import type { ModelDocument } from '../../../lib/training/model-document.ts';

const SIZE = 64;
const SEED = 3;

/** Seeded random weights with small non-zero biases (so a lost int32 bias would show). */
function testWeights(seed: number): NamedWeight[] {
  let state = seed + 1;
  return randomWeights(seed).map((w) => {
    if (w.shape.length !== 1) return w;
    const data = Float32Array.from(w.data, () => {
      state = (state * 16807) % 2147483647;
      return (state / 2147483647 - 0.5) * 0.02;
    });
    return { ...w, data };
  });
}

function spec(precision?: 'int8'): FeatureSpec {
  return {
    model: 'vgg16',
    weights: `random-${SEED}`,
    input: [SIZE, SIZE],
    pooling: 'flatten',
    preprocessing: 'caffe',
    resize: 'bilinear',
    ...(precision ? { precision } : {}),
  };
}

/** ‖a − b‖ / ‖a‖. */
function relativeL2(reference: Float32Array, other: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < reference.length; i++) {
    num += ((reference[i] as number) - (other[i] as number)) ** 2;
    den += (reference[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

describe('the int8 feature spec', () => {
  it('ends in /int8 and parses back to the same spec', () => {
    const text = specToString(spec('int8'));
    expect(text).toBe(`vgg16/random-${SEED}/64x64/flatten/caffe/bilinear/int8`);
    expect(parseSpec(text)).toEqual(spec('int8'));
    expect(specPrecision(parseSpec(text))).toBe('int8');
  });

  it('leaves fp32 spec strings as they were, so existing features stay current', () => {
    const text = specToString(spec());
    expect(text).toBe(`vgg16/random-${SEED}/64x64/flatten/caffe/bilinear`);
    expect(parseSpec(text)).toEqual(spec());
    expect(specPrecision(parseSpec(text))).toBe('fp32');
    expect(specToString({ ...spec(), precision: 'fp32' })).toBe(text);
  });

  it('refuses other suffixes', () => {
    for (const bad of ['/int4', '/fp32', '/int8/int8', 'int8']) {
      expect(() => parseSpec(`${specToString(spec())}${bad}`)).toThrow(ValidationError);
    }
  });
});

describe('quantization helpers', () => {
  it('quantizes weights per output channel, symmetrically, within half a step', () => {
    // Channel 0 spans ±1, channel 1 ±0.01, channel 2 is all zeros.
    const w = Float32Array.of(1, -0.5, 0.25, 0.01, -0.01, 0.003, 0, 0, 0);
    const { q, scales } = quantizeWeightsPerChannel(w, 3);
    expect([...q.slice(0, 3)]).toEqual([127, -64, 32]);
    expect([...q.slice(3, 6)]).toEqual([127, -127, 38]);
    expect([...q.slice(6)]).toEqual([0, 0, 0]);
    expect(scales[0]).toBeCloseTo(1 / 127, 7);
    expect(scales[1]).toBeCloseTo(0.01 / 127, 9);
    for (let i = 0; i < 6; i++) {
      const s = scales[Math.floor(i / 3)] as number;
      expect(Math.abs((q[i] as number) * s - (w[i] as number))).toBeLessThanOrEqual(s / 2 + 1e-9);
    }
  });

  it('covers a range with uint8 and keeps zero exact', () => {
    expect(uint8Params(0, 255)).toEqual({ scale: 1, zeroPoint: 0 });
    const p = uint8Params(-123.68, 151.061);
    expect(p.zeroPoint).toBe(115);
    expect(p.scale).toBeCloseTo((151.061 + 123.68) / 255, 9);
    expect(uint8Params(0, 0)).toEqual({ scale: 1, zeroPoint: 0 });
    expect(() => uint8Params(2, 1)).toThrow(ValidationError);
  });

  it('quantizes a bias at input scale × weight scale', () => {
    const { q, scales } = quantizeBias(Float32Array.of(0.5, -0.25), 0.5, Float32Array.of(0.01, 0.1));
    expect([...scales]).toEqual([Math.fround(0.005), Math.fround(0.05)]);
    expect([...q]).toEqual([100, -5]);
  });
});

describe('the int8 engine', () => {
  let weights: NamedWeight[];
  let fp32: FeatureExtractor;
  let int8: FeatureExtractor;
  let dir: string;

  beforeAll(async () => {
    weights = testWeights(SEED);
    dir = await mkdtemp(join(tmpdir(), 'tlearn-int8-'));
    fp32 = await loadOnnxExtractor({ weights, spec: spec(), threads: 1 });
    int8 = await loadOnnxExtractor({ weights, spec: spec('int8'), threads: 1 });
  }, 120_000);

  afterAll(async () => {
    fp32?.dispose();
    int8?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports the int8 spec', () => {
    expect(int8.specId).toBe(`${specToString(spec())}/int8`);
    expect(int8.dims).toBe(fp32.dims);
    expect(int8.backend).toBe('onnx');
  });

  it('gives features within 10 % (relative L2) of fp32 on images it was not calibrated on', async () => {
    // Prepare: other seeds than the calibration's.
    const held = calibrationImages(SIZE, 6, 77);

    // Act
    const [a, b] = [await fp32.extractBatch(held), await int8.extractBatch(held)];

    // Assess: a few percent is typical (docs/BENCHMARKS.md, "int8 vs fp32"); 10 % is the bound.
    for (let i = 0; i < held.length; i++) {
      const ref = a[i] as Float32Array;
      expect(ref.some((v) => v > 0)).toBe(true);
      expect(relativeL2(ref, b[i] as Float32Array)).toBeLessThan(0.1);
    }
  });

  it('is deterministic: the same weights give the same calibration and the same features', async () => {
    const opts = { inputSize: [SIZE, SIZE] as [number, number], pooling: 'flatten' as const };
    expect(await calibrateVgg16(weights, opts)).toEqual(await calibrateVgg16(weights, opts, { threads: 2 }));
    const image = calibrationImages(SIZE, 1, 5);
    const again = await loadOnnxExtractor({ weights, spec: spec('int8'), threads: 1, warmUp: false });
    try {
      expect(await again.extractBatch(image)).toEqual(await int8.extractBatch(image));
    } finally {
      again.dispose();
    }
  });

  it('is fused by onnxruntime into 13 QLinearConv (the int8 kernels)', async () => {
    // Prepare
    const opts = { inputSize: [SIZE, SIZE] as [number, number], pooling: 'avg' as const };
    const bytes = buildVgg16Int8Onnx(weights, opts, await calibrateVgg16(weights, opts));
    const optimized = join(dir, 'optimized.onnx');

    // Act: onnxruntime writes the graph it runs after its optimizations.
    const session = await ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: 'all',
      optimizedModelFilePath: optimized,
      logSeverityLevel: 3,
    });
    await session.release();

    // Assess
    const text = (await readFile(optimized)).toString('latin1');
    expect(text.match(/QLinearConv/g)?.length).toBe(13);
    expect(text).not.toMatch(/\bConv\b/);
  });

  it('refuses a tfjs backend, which has no int8 graph', async () => {
    await expect(
      loadExtractor({
        weights: { kind: 'random', seed: SEED },
        inputSize: SIZE,
        pooling: 'avg',
        backend: 'wasm',
        precision: 'int8',
      }),
    ).rejects.toThrow(/onnx engine only/);
  });

  describe('ONNX export of a model trained on int8 features', () => {
    function modelDocument(d: number, specText: string): ModelDocument {
      const coef = [Array.from({ length: d }, (_, i) => Math.sin(i * 0.7) * 0.05)];
      return {
        format: 'tlearn-head',
        formatVersion: 1,
        classes: ['no', 'yes'],
        coef,
        intercept: [0.1],
        spec: specText,
        trainedAt: '2026-12-07T12:00:00.000Z',
        options: { C: 1, maxIter: 100, tol: 1e-4, testSize: 0.2, seed: 42, refitOnAll: false },
        metrics: { accuracy: 1, logLoss: 0.1, nTrain: 8, nTest: 2, converged: true, nIter: 10 },
        randomWeights: true,
      };
    }

    it('embeds the int8 base and predicts what the head predicts on int8 features', async () => {
      // Prepare: an image in the export's input form (RGB 0-255) and in the extractor's (caffe).
      const caffe = calibrationImages(SIZE, 1, 99)[0] as Float32Array;
      const rgb = new Float32Array(caffe.length);
      for (let i = 0; i < caffe.length; i += 3) {
        for (let c = 0; c < 3; c++) {
          rgb[i + (2 - c)] = (caffe[i + c] as number) + (CAFFE_MEAN_BGR[c] as number);
        }
      }
      const model = modelDocument(int8.dims, int8.specId);

      // Act
      const bytes = await buildModelExport({ weights, weightsId: `random-${SEED}`, model });
      const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
      const out = await session.run({
        [EXPORT_INPUT_NAME]: new ort.Tensor('float32', rgb, [1, SIZE, SIZE, 3]),
      });
      await session.release();

      // Assess
      expect(readOnnxMetadata(bytes)['tlearn.spec']).toBe(int8.specId);
      expect(Buffer.from(bytes).toString('latin1')).toContain('QuantizeLinear');
      const [feature] = await int8.extractBatch([caffe]);
      const expected = predictProba(model, feature as Float32Array);
      const got = [...((out[EXPORT_OUTPUT_NAME]?.data ?? []) as Float32Array)];
      expect(got[0]).toBeCloseTo(expected[0] as number, 4);
      expect(got[1]).toBeCloseTo(expected[1] as number, 4);
    });

    it("runs in the console's browser runtime (onnxruntime-web, wasm) with the same probabilities", async () => {
      // Prepare
      const ortWeb = await import('onnxruntime-web/wasm');
      ortWeb.env.wasm.numThreads = 1;
      const model = modelDocument(int8.dims, int8.specId);
      const bytes = await buildModelExport({ weights, weightsId: `random-${SEED}`, model });
      const rgb = Float32Array.from({ length: SIZE * SIZE * 3 }, (_, i) => (Math.sin(i * 0.01) + 1) * 127);
      const run = async (runtime: typeof ort | typeof ortWeb) => {
        const session = await runtime.InferenceSession.create(bytes);
        const tensor = new runtime.Tensor('float32', rgb, [1, SIZE, SIZE, 3]);
        const out = await session.run({ [EXPORT_INPUT_NAME]: tensor as never });
        await session.release();
        return [...((out[EXPORT_OUTPUT_NAME]?.data ?? []) as Float32Array)];
      };

      // Act
      const [web, node] = [await run(ortWeb), await run(ort)];

      // Assess
      expect(web).toHaveLength(2);
      web.forEach((p, i) => {
        expect(p).toBeCloseTo(node[i] as number, 5);
      });
    }, 60_000);

    it('needs the activation ranges when built directly, and the right weights', async () => {
      const model = modelDocument(int8.dims, int8.specId);
      expect(() => buildModelOnnx({ weights, weightsId: `random-${SEED}`, model })).toThrow(
        /activation ranges/,
      );
      await expect(buildModelExport({ weights, weightsId: 'random-4', model })).rejects.toThrow(
        SpecMismatchError,
      );
    });
  });
});
