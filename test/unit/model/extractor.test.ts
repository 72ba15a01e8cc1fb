import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../lib/errors.ts';
import { loadExtractor } from '../../../lib/model/extractor.ts';
import { parseSpec } from '../../../lib/model/spec.ts';
import type { BackendName, FeatureExtractor } from '../../../lib/model/types.ts';
import { randomWeights, saveWeights } from '../../../lib/model/weights.ts';
import { tfjsNodeAvailability } from '../../helpers/engines.ts';

// tfjs-node loads first where it is installed (the Lambda image); engine expectations follow it.
const tfjsNode = await tfjsNodeAvailability();

const SIZE = 32;

/** A deterministic stand-in for a preprocessed (BGR, mean-subtracted) image. */
function image(seed: number, size = SIZE): Float32Array {
  return Float32Array.from({ length: size * size * 3 }, (_, i) => Math.sin(i * 0.13 + seed) * 120);
}

function equalBytes(a: Float32Array | undefined, b: Float32Array | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

let dir: string;
let flat: FeatureExtractor;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tlearn-extractor-'));
  // The tfjs graph is what these tests check (onnxruntime is checked in onnx-extractor.test.ts).
  flat = await loadExtractor({
    weights: { kind: 'random', seed: 5 },
    inputSize: SIZE,
    pooling: 'flatten',
    backend: 'wasm',
  });
});
afterAll(async () => {
  flat.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('loadExtractor', () => {
  it('describes its output with a spec that names the random weights', () => {
    expect(flat.spec).toEqual({
      model: 'vgg16',
      weights: 'random-5',
      input: [SIZE, SIZE],
      pooling: 'flatten',
      preprocessing: 'caffe',
      resize: 'bilinear',
    });
    expect(flat.specId).toBe('vgg16/random-5/32x32/flatten/caffe/bilinear');
    expect(parseSpec(flat.specId)).toEqual(flat.spec);
    expect(flat.dims).toBe(512);
    expect(flat.backend).toBe('wasm');
  });

  it('returns one vector of dims values per image, in input order, and leaks no tensors', async () => {
    // Prepare
    const images = [image(1), image(2), image(3)];
    const before = tf.memory().numTensors;
    // Act
    const batch = await flat.extractBatch(images);
    const single = await flat.extractBatch([image(2)]);
    // Assess
    expect(tf.memory().numTensors).toBe(before);
    expect(batch).toHaveLength(3);
    for (const v of batch) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v.length).toBe(512);
      expect(v.buffer.byteLength).toBe(512 * 4); // own buffers, safe to hand to a .npy writer
    }
    const maxDiff = (batch[1] ?? new Float32Array()).reduce(
      (m, v, i) => Math.max(m, Math.abs(v - (single[0]?.[i] ?? 0))),
      0,
    );
    expect(maxDiff).toBeLessThan(1e-5);
    expect(equalBytes(batch[0], batch[2])).toBe(false);
    expect(batch[0]?.some((v) => v > 0)).toBe(true);
  });

  it('returns an empty list for an empty batch', async () => {
    expect(await flat.extractBatch([])).toEqual([]);
  });

  it('refuses an image of the wrong size and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const err = await flat.extractBatch([image(1), new Float32Array(10)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(/image 1 has 10 values; a 32x32x3 input needs 3072/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is deterministic: the same seed gives bit-identical features', async () => {
    const again = await loadExtractor({
      backend: 'wasm',
      weights: { kind: 'random', seed: 5 },
      inputSize: SIZE,
      pooling: 'flatten',
      warmUp: false,
    });
    try {
      const [a] = await flat.extractBatch([image(4)]);
      const [b] = await again.extractBatch([image(4)]);
      expect(equalBytes(a, b)).toBe(true);
      expect(again.specId).toBe(flat.specId);
    } finally {
      again.dispose();
    }
  });

  it('gives a different spec and different features for another seed', async () => {
    const other = await loadExtractor({
      backend: 'wasm',
      weights: { kind: 'random', seed: 6 },
      inputSize: SIZE,
      pooling: 'flatten',
      warmUp: false,
    });
    try {
      const [a] = await flat.extractBatch([image(4)]);
      const [b] = await other.extractBatch([image(4)]);
      expect(other.spec.weights).toBe('random-6');
      expect(other.specId).not.toBe(flat.specId);
      expect(equalBytes(a, b)).toBe(false);
    } finally {
      other.dispose();
    }
  });

  it('gives identical features from saved and reloaded random weights', async () => {
    // Prepare
    const out = join(dir, 'random5');
    await saveWeights(out, randomWeights(5), { weightsId: 'random-5' });
    // Act
    const reloaded = await loadExtractor({
      backend: 'wasm',
      weights: { kind: 'uri', uri: out },
      inputSize: SIZE,
      pooling: 'flatten',
    });
    try {
      const [a] = await flat.extractBatch([image(9)]);
      const [b] = await reloaded.extractBatch([image(9)]);
      // Assess
      expect(equalBytes(a, b)).toBe(true);
      expect(reloaded.specId).toBe(flat.specId);
    } finally {
      reloaded.dispose();
    }
  });

  it.each([
    ['avg', 512],
    ['max', 512],
  ] as const)(
    'at input 32 with %s pooling returns %i values per image (flatten: see spec test)',
    async (pooling, dims) => {
      const ex = await loadExtractor({
        backend: 'wasm',
        weights: { kind: 'random', seed: 5 },
        inputSize: SIZE,
        pooling,
        warmUp: false,
      });
      try {
        const [v] = await ex.extractBatch([image(1)]);
        expect(ex.dims).toBe(dims);
        expect(v?.length).toBe(dims);
      } finally {
        ex.dispose();
      }
    },
  );

  it('at input 64 returns 2048 values for flatten, and avg/max are the mean/max of that feature map', async () => {
    // Prepare: one extractor per pooling, loaded one after the other (59 MB of weights each).
    const img = image(3, 64);
    const out: Record<string, Float32Array | undefined> = {};
    const dims: Record<string, number> = {};
    for (const pooling of ['flatten', 'avg', 'max'] as const) {
      const ex = await loadExtractor({
        backend: 'wasm',
        weights: { kind: 'random', seed: 5 },
        inputSize: 64,
        pooling,
        warmUp: false,
      });
      try {
        [out[pooling]] = await ex.extractBatch([img]);
        dims[pooling] = ex.dims;
      } finally {
        ex.dispose();
      }
    }
    // Assess
    expect(dims).toEqual({ flatten: 2048, avg: 512, max: 512 });
    expect([out.flatten?.length, out.avg?.length, out.max?.length]).toEqual([2048, 512, 512]);
    // flatten is [2, 2, 512] row-major: channel c sits at positions c, 512 + c, 1024 + c, 1536 + c.
    for (const c of [0, 17, 300, 511]) {
      const cells = [0, 1, 2, 3].map((p) => out.flatten?.[p * 512 + c] ?? Number.NaN);
      expect(out.avg?.[c]).toBeCloseTo(cells.reduce((s, v) => s + v, 0) / 4, 4);
      expect(out.max?.[c]).toBeCloseTo(Math.max(...cells), 5);
    }
  });

  it('validates its options before loading anything', async () => {
    const base = { weights: { kind: 'random', seed: 1 } as const, pooling: 'avg' as const };
    await expect(
      loadExtractor({
        backend: 'wasm',
        ...base,
        inputSize: 16,
      }),
    ).rejects.toThrow(/input size must be a whole number from 32/);
    await expect(
      loadExtractor({
        backend: 'wasm',
        ...base,
        inputSize: 33.5,
      }),
    ).rejects.toThrow(ValidationError);
    await expect(
      loadExtractor({
        backend: 'wasm',
        ...base,
        inputSize: 32,
        pooling: 'sum' as unknown as 'avg',
      }),
    ).rejects.toThrow(/pooling must be one of flatten, avg, max/);
    await expect(
      loadExtractor({
        backend: 'wasm',
        weights: { kind: 'uri', uri: 's3://b/k/model.json' },
        inputSize: 32,
        pooling: 'avg',
      }),
    ).rejects.toThrow(/need an S3 client/);
  });

  it('frees its weights on dispose', async () => {
    const ex = await loadExtractor({
      weights: { kind: 'random', seed: 2 },
      inputSize: SIZE,
      pooling: 'max',
      warmUp: false,
      backend: 'wasm',
    });
    const before = tf.memory().numTensors;
    ex.dispose();
    expect(before - tf.memory().numTensors).toBe(26);
    await expect(ex.extractBatch([image(1)])).rejects.toThrow(/disposed/);
  });

  /**
   * Features of one 64x64 image (flatten keeps a 2x2 map, where the element order matters) from an
   * engine and from wasm, and the largest difference relative to the largest wasm value.
   */
  async function againstWasm(backend: BackendName | undefined) {
    const opts = {
      weights: { kind: 'random', seed: 5 } as const,
      inputSize: 64,
      pooling: 'flatten' as const,
    };
    const engine = await loadExtractor(backend ? { ...opts, backend } : opts);
    const wasm = await loadExtractor({ ...opts, backend: 'wasm' });
    try {
      const [a] = await engine.extractBatch([image(3, 64)]);
      const [b] = await wasm.extractBatch([image(3, 64)]);
      const scale = Math.max(...Array.from(b ?? [], Math.abs));
      let worst = 0;
      for (let i = 0; i < (b?.length ?? 0); i++)
        worst = Math.max(worst, Math.abs((a?.[i] ?? 0) - (b?.[i] ?? 0)));
      return {
        backend: engine.backend,
        sameSpec: engine.specId === wasm.specId,
        scale,
        relative: worst / scale,
      };
    } finally {
      engine.dispose();
      wasm.dispose();
    }
  }

  it('picks the first engine that loads (tfjs-node, else onnxruntime), giving the wasm features within 1e-4', async () => {
    const r = await againstWasm(undefined);

    expect(r.backend).toBe(tfjsNode.available ? 'tensorflow' : 'onnx');
    expect(r.sameSpec).toBe(true);
    expect(r.scale).toBeGreaterThan(0);
    expect(r.relative).toBeLessThan(1e-4);
  });

  // The Lambda image's engine; skipped (with the reason printed) where tfjs-node does not load.
  it.runIf(tfjsNode.available)(
    'extracts on tfjs-node when forced, the wasm features within 1e-4',
    async () => {
      const r = await againstWasm('tensorflow');

      expect(r.backend).toBe('tensorflow');
      expect(r.scale).toBeGreaterThan(0);
      expect(r.relative).toBeLessThan(1e-4);
    },
  );

  it('uses onnxruntime when it is forced (TLEARN_BACKEND=onnx)', async () => {
    const ex = await loadExtractor({
      weights: { kind: 'random', seed: 5 },
      inputSize: 32,
      pooling: 'avg',
      backend: 'onnx',
    });
    try {
      expect(ex.backend).toBe('onnx');
      expect((await ex.extractBatch([image(1)]))[0]).toHaveLength(512);
    } finally {
      ex.dispose();
    }
  });
});
