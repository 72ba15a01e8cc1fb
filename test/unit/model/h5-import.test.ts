import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import h5wasm from 'h5wasm/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeightsError } from '../../../lib/errors.ts';
import { selectBackend } from '../../../lib/model/backend.ts';
import { defaultBaseModelDir, importKerasH5, readKerasVgg16Weights } from '../../../lib/model/h5-import.ts';
import { VGG16_CONV_LAYERS } from '../../../lib/model/vgg16.ts';
import { loadWeights, weightsSha256 } from '../../../lib/model/weights.ts';
import { type WrittenWeight, writeKerasVgg16H5 } from '../../helpers/model/keras-h5.ts';

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

let dir: string;
let h5: string;
let written: WrittenWeight[];

beforeAll(async () => {
  await selectBackend();
  dir = await mkdtemp(join(tmpdir(), 'tlearn-h5-'));
  h5 = join(dir, 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5');
  written = await writeKerasVgg16H5(h5, { seed: 1 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the test file', () => {
  it('has the Keras layout: byte-string attributes, weightless pools, kernel:0 datasets in sub-groups', async () => {
    await h5wasm.ready;
    const f = new h5wasm.File(h5, 'r');
    try {
      const names = f.attrs.layer_names?.value as string[];
      expect(names.slice(0, 4)).toEqual(['input_1', 'block1_conv1', 'block1_conv2', 'block1_pool']);
      expect(names).toHaveLength(19);
      expect(f.attrs.layer_names?.dtype).toMatch(/^A\d+$/);
      expect(f.attrs.backend?.value).toBe('tensorflow');
      expect(f.attrs.keras_version?.value).toBe('2.2.4');
      const g = f.get('block3_conv2') as InstanceType<typeof h5wasm.Group>;
      expect(g.attrs.weight_names?.value).toEqual(['block3_conv2/kernel:0', 'block3_conv2/bias:0']);
      expect(
        (f.get('block3_conv2/block3_conv2/kernel:0') as InstanceType<typeof h5wasm.Dataset>).shape,
      ).toEqual([3, 3, 256, 256]);
    } finally {
      f.close();
    }
  });
});

describe('readKerasVgg16Weights', () => {
  it('reads every tensor bit for bit, kernel layout unchanged ([3,3,in,out])', async () => {
    // Act
    const { weights, info } = await readKerasVgg16Weights(h5);
    // Assess
    expect(info).toMatchObject({ backend: 'tensorflow', kerasVersion: '2.2.4' });
    expect(weights).toHaveLength(26);
    weights.forEach((w, i) => {
      const src = written[i];
      expect(w.name).toBe(`${src?.layer}/${src?.role}`);
      expect(w.shape).toEqual(src?.shape);
      expect(bytesOf(w.data).equals(bytesOf(src?.data ?? new Float32Array()))).toBe(true);
    });
  });

  it('reads the Keras 1 naming (block1_conv1_W_1:0, block1_conv1_b_1:0) through weight_names', async () => {
    const file = join(dir, 'keras1.h5');
    const src = await writeKerasVgg16H5(file, { seed: 2, naming: 'keras1' });
    const { weights } = await readKerasVgg16Weights(file);
    for (const i of [0, 1, 12, 25]) {
      expect(
        bytesOf(weights[i]?.data ?? new Float32Array()).equals(bytesOf(src[i]?.data ?? new Float32Array())),
      ).toBe(true);
    }
    await rm(file);
  });

  it('names a missing layer', async () => {
    const file = join(dir, 'missing.h5');
    await writeKerasVgg16H5(file, { omitLayer: 'block4_conv2' });
    const err = await readKerasVgg16Weights(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightsError);
    expect((err as Error).message).toMatch(/lacks VGG16 layer block4_conv2 /);
    await rm(file);
  });

  it('names the layer with a wrong shape (a channels-first kernel)', async () => {
    const file = join(dir, 'wrong-shape.h5');
    await writeKerasVgg16H5(file, { kernelShape: { layer: 'block2_conv2', shape: [128, 128, 3, 3] } });
    const err = await readKerasVgg16Weights(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightsError);
    expect((err as Error).message).toBe(
      "layer block2_conv2: kernel 'block2_conv2/kernel:0' has shape [128,128,3,3], VGG16 needs [3,3,128,128]",
    );
    await rm(file);
  });

  it('says a file that is not HDF5 is not HDF5', async () => {
    const file = join(dir, 'not.h5');
    await writeFile(file, '<html>404</html>');
    await expect(readKerasVgg16Weights(file)).rejects.toThrow(/not\.h5 is not an HDF5 file/);
  });

  it('says a missing file cannot be read', async () => {
    await expect(readKerasVgg16Weights(join(dir, 'nope.h5'))).rejects.toThrow(
      /cannot read .*nope\.h5: ENOENT/,
    );
  });
});

describe('importKerasH5', () => {
  it('writes a tfjs layers folder whose weights equal the file and whose id is their sha256 prefix', async () => {
    // Prepare
    const out = join(dir, 'imported');
    // Act
    const result = await importKerasH5(h5, { out });
    const loaded = await loadWeights({ kind: 'uri', uri: out });
    // Assess
    const expectedSha = weightsSha256(written.map((w) => ({ name: '', shape: w.shape, data: w.data })));
    expect(result.sha256).toBe(expectedSha);
    expect(result.weightsId).toBe(expectedSha.slice(0, 16));
    expect(result.out).toBe(out);
    expect(loaded.weightsId).toBe(result.weightsId);
    const json = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
    expect(json.userDefinedMetadata.tlearn).toEqual({
      weightsId: result.weightsId,
      sha256: expectedSha,
      model: 'vgg16',
    });
    // Every layer compared in full, bit for bit.
    expect(loaded.weights.map((w) => w.name)).toEqual(written.map((w) => `${w.layer}/${w.role}`));
    loaded.weights.forEach((w, i) => {
      expect(bytesOf(w.data).equals(bytesOf(written[i]?.data ?? new Float32Array()))).toBe(true);
    });
    expect(VGG16_CONV_LAYERS.length * 2).toBe(loaded.weights.length);
  });

  it('defaults to ./.tlearn/base-models/vgg16-<weightsId>/', () => {
    expect(defaultBaseModelDir('0123456789abcdef', '/srv/app')).toBe(
      '/srv/app/.tlearn/base-models/vgg16-0123456789abcdef',
    );
  });
});
