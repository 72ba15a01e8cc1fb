import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeightsError } from '../../../lib/errors.ts';
import { selectBackend } from '../../../lib/model/backend.ts';
import { parseModelUri, SHARD_BYTES } from '../../../lib/model/io-handlers.ts';
import { VGG16_PARAMS, vgg16WeightShapes } from '../../../lib/model/vgg16.ts';
import {
  loadWeights,
  type NamedWeight,
  randomWeights,
  saveWeights,
  validateWeights,
  weightsIdOf,
  weightsSha256,
} from '../../../lib/model/weights.ts';
import type { Log } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';

function recordingLog(): Log & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} };
}

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

let dir: string;
// One set of seeded weights shared by the tests that only read them (59 MB to make).
let seven: NamedWeight[];

beforeAll(async () => {
  await selectBackend();
  dir = await mkdtemp(join(tmpdir(), 'tlearn-weights-'));
  seven = randomWeights(7);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('randomWeights', () => {
  it('is deterministic for a seed and covers every parameter of the graph', () => {
    const again = randomWeights(7);
    expect(again.map((w) => w.name)).toEqual(vgg16WeightShapes().map((w) => w.name));
    expect(again.reduce((n, w) => n + w.data.length, 0)).toBe(VGG16_PARAMS);
    expect(again.every((w, i) => sameBytes(w.data, seven[i]?.data ?? new Float32Array()))).toBe(true);
  });

  it('gives different weights (and ids) for different seeds', () => {
    const eight = randomWeights(8);
    expect(sameBytes(eight[0]?.data ?? new Float32Array(), seven[0]?.data ?? new Float32Array())).toBe(false);
    expect(weightsIdOf(eight)).not.toBe(weightsIdOf(seven));
  });

  it('draws Glorot-uniform kernels within ±sqrt(6/(fan_in+fan_out)) and zero biases', () => {
    const kernel = seven.find((w) => w.name === 'block5_conv3/kernel')?.data ?? new Float32Array();
    const limit = Math.sqrt(6 / (9 * 512 + 9 * 512));
    const max = kernel.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(max).toBeLessThanOrEqual(limit * (1 + 1e-6)); // float32 rounding of the bound
    expect(max).toBeGreaterThan(limit * 0.99);
    const mean = kernel.reduce((s, v) => s + v, 0) / kernel.length;
    expect(Math.abs(mean)).toBeLessThan(limit * 0.01);
    expect(seven.find((w) => w.name === 'block5_conv3/bias')?.data.every((v) => v === 0)).toBe(true);
  });
});

describe('weightsSha256', () => {
  it('hashes the float32 bytes in canonical layer order (the order of Keras get_weights())', () => {
    const tiny = vgg16WeightShapes().map((w, i) => ({
      name: w.name,
      shape: w.shape,
      data: new Float32Array(w.shape.reduce((a, b) => a * b, 1)).fill(i),
    }));
    const expected = createHash('sha256');
    for (const w of tiny) expected.update(Buffer.from(w.data.buffer));
    expect(weightsSha256(tiny)).toBe(expected.digest('hex'));
    expect(weightsIdOf(tiny)).toBe(weightsSha256(tiny).slice(0, 16));
    expect(weightsIdOf([...tiny].reverse())).not.toBe(weightsIdOf(tiny));
  });
});

describe('validateWeights', () => {
  it('names the layer whose weight is missing', () => {
    const partial = seven.filter((w) => w.name !== 'block4_conv2/bias');
    expect(() => validateWeights(partial)).toThrow(WeightsError);
    expect(() => validateWeights(partial)).toThrow(/block4_conv2 has no bias/);
  });

  it('names the layer whose shape is wrong and both shapes', () => {
    const bad = seven.map((w) =>
      w.name === 'block2_conv1/kernel'
        ? { ...w, shape: [3, 3, 128, 64], data: new Float32Array(3 * 3 * 128 * 64) }
        : w,
    );
    expect(() => validateWeights(bad)).toThrow(
      /block2_conv1: kernel has shape \[3,3,128,64\], VGG16 needs \[3,3,64,128\]/,
    );
  });
});

describe('saveWeights / loadWeights on disk', () => {
  it('round-trips real-looking weights bit for bit as a tfjs layers folder with 4 MiB shards', async () => {
    // Prepare: weights that are not labelled random (their id is their digest).
    const weights = randomWeights(11);
    const out = join(dir, 'real');
    // Act
    const saved = await saveWeights(out, weights);
    const loaded = await loadWeights({ kind: 'uri', uri: out });
    // Assess
    expect(saved.weightsId).toBe(weightsIdOf(weights));
    expect(loaded.weightsId).toBe(saved.weightsId);
    expect(loaded.weights.every((w, i) => sameBytes(w.data, weights[i]?.data ?? new Float32Array()))).toBe(
      true,
    );
    const files = (await readdir(out)).sort();
    expect(files).toContain('model.json');
    expect(files.filter((f) => f.endsWith('.bin'))).toHaveLength(Math.ceil((VGG16_PARAMS * 4) / SHARD_BYTES));
    const json = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.userDefinedMetadata.tlearn.weightsId).toBe(saved.weightsId);
    expect(json.weightsManifest[0].weights[0]).toEqual({
      name: 'block1_conv1/kernel',
      shape: [3, 3, 3, 64],
      dtype: 'float32',
    });
  });

  it('loads the saved folder with plain tf.loadLayersModel too (Keras-style topology)', async () => {
    const out = join(dir, 'real');
    const handler = (await import('../../../lib/model/io-handlers.ts')).fileIOHandler(
      join(out, 'model.json'),
    );
    const model = await tf.loadLayersModel(handler);
    try {
      expect(model.countParams()).toBe(VGG16_PARAMS);
      expect(model.getLayer('block5_pool')).toBeDefined();
    } finally {
      model.dispose();
    }
  });

  it('accepts a directory, a model.json path and a file:// URL alike', async () => {
    const out = join(dir, 'real');
    const a = await loadWeights({ kind: 'uri', uri: join(out, 'model.json') });
    const b = await loadWeights({ kind: 'uri', uri: pathToFileURL(join(out, 'model.json')).href });
    expect(a.weightsId).toBe(b.weightsId);
    expect(parseModelUri(out)).toEqual({ kind: 'file', path: join(out, 'model.json') });
  });

  it('keeps the random label through a save/load round trip and warns loudly', async () => {
    const out = join(dir, 'random7');
    await saveWeights(out, seven, { weightsId: 'random-7' });
    const log = recordingLog();
    const loaded = await loadWeights({ kind: 'uri', uri: out }, { log });
    expect(loaded.weightsId).toBe('random-7');
    expect(log.warnings.join('\n')).toMatch(/RANDOM WEIGHTS.*MEANINGLESS/);
  });

  it('refuses shards whose bytes do not match the weights id in model.json', async () => {
    // Prepare: flip one byte of the first shard.
    const out = join(dir, 'tampered');
    await saveWeights(out, randomWeights(12));
    const shard = join(out, 'group1-shard1of15.bin');
    const bytes = await readFile(shard);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    await writeFile(shard, bytes);
    // Act + assess
    await expect(loadWeights({ kind: 'uri', uri: out })).rejects.toThrow(
      /hash to [0-9a-f]{16} \(corrupt or edited/,
    );
  });

  it('refuses a model.json that labels other weights as random-<seed>', async () => {
    // Prepare: real-looking weights whose metadata is edited to pass them off as seed 7.
    const out = join(dir, 'relabelled');
    await saveWeights(out, randomWeights(14));
    const path = join(out, 'model.json');
    const json = JSON.parse(await readFile(path, 'utf8'));
    json.userDefinedMetadata.tlearn.weightsId = 'random-7';
    await writeFile(path, JSON.stringify(json));
    // Act + assess
    await expect(loadWeights({ kind: 'uri', uri: out })).rejects.toThrow(
      /says it holds random-7 but its weights differ/,
    );
    await expect(saveWeights(join(dir, 'x'), randomWeights(14), { weightsId: 'random-7' })).rejects.toThrow(
      /weights id random-7 does not match/,
    );
  });

  it('says which file is missing when a shard is gone', async () => {
    const out = join(dir, 'missing-shard');
    await saveWeights(out, randomWeights(13));
    await rm(join(out, 'group1-shard3of15.bin'));
    await expect(loadWeights({ kind: 'uri', uri: out })).rejects.toThrow(
      /group1-shard3of15\.bin .*cannot be read/,
    );
  });

  it('says so when there is no model at the path', async () => {
    await expect(loadWeights({ kind: 'uri', uri: join(dir, 'nothing-here') })).rejects.toThrow(
      /cannot read .*nothing-here\/model\.json: ENOENT/,
    );
  });

  it('makes seeded random weights on request, labelled random-<seed>, with a loud warning', async () => {
    const log = recordingLog();
    const loaded = await loadWeights({ kind: 'random', seed: 7 }, { log });
    expect(loaded.weightsId).toBe('random-7');
    expect(
      sameBytes(loaded.weights[3]?.data ?? new Float32Array(), seven[3]?.data ?? new Float32Array()),
    ).toBe(true);
    expect(log.warnings).toHaveLength(1);
  });
});

describe('saveWeights / loadWeights on S3', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu.stop();
  });

  it('round-trips through s3://bucket/prefix/model.json with GetObject and PutObject', async () => {
    const uri = `s3://${emu.bucket}/base-models/test/model.json`;
    const saved = await saveWeights(uri, seven, { s3: emu.clients.s3, weightsId: 'random-7' });
    const loaded = await loadWeights({ kind: 'uri', uri }, { s3: emu.clients.s3 });
    expect(saved.modelJson).toBe(uri);
    expect(loaded.weightsId).toBe('random-7');
    expect(loaded.weights.every((w, i) => sameBytes(w.data, seven[i]?.data ?? new Float32Array()))).toBe(
      true,
    );
    const shard = await emu.clients.s3.send(
      new GetObjectCommand({ Bucket: emu.bucket, Key: 'base-models/test/group1-shard15of15.bin' }),
    );
    expect(shard.ContentLength).toBe(VGG16_PARAMS * 4 - 14 * SHARD_BYTES);
  });

  it('names the missing object when there is no model under the prefix', async () => {
    await expect(
      loadWeights({ kind: 'uri', uri: `s3://${emu.bucket}/base-models/none/` }, { s3: emu.clients.s3 }),
    ).rejects.toThrow(`model s3://${emu.bucket}/base-models/none/model.json does not exist`);
  });

  it('asks for an S3 client instead of guessing one', async () => {
    await expect(loadWeights({ kind: 'uri', uri: 's3://b/k/model.json' })).rejects.toThrow(
      /S3 client is needed/,
    );
  });
});
