import h5wasm from 'h5wasm/node';
import { VGG16_CONV_LAYERS } from '../../../lib/model/vgg16.ts';

/** One weight as written into the test file. */
export interface WrittenWeight {
  layer: string;
  role: 'kernel' | 'bias';
  shape: number[];
  data: Float32Array;
}

/** Options of `writeKerasVgg16H5`. */
export interface KerasH5Options {
  /** Seed of the pseudo-random values. @default 1 */
  seed?: number;
  /** `keras2`: `block1_conv1/kernel:0`; `keras1`: `block1_conv1_W_1:0` (both as Keras wrote them). */
  naming?: 'keras2' | 'keras1';
  /** Leave this conv layer out entirely (not in layer_names, no group). */
  omitLayer?: string;
  /** Write this layer's kernel with another shape. */
  kernelShape?: { layer: string; shape: number[] };
}

/** xorshift32: deliberately not the PRNG of lib/model/weights.ts, so the test data is independent. */
function xorshift(seed: number): () => number {
  let x = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296 - 0.5;
  };
}

/** Fixed-length byte strings, as h5py stores a list of `bytes` (numpy dtype `S<n>`). */
function bytesDtype(values: readonly string[]): string {
  return `A${Math.max(1, ...values.map((v) => Buffer.byteLength(v)))}`;
}

/**
 * Writes an HDF5 file in the exact layout of Keras' `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`
 * (`save_weights_to_hdf5_group`): root attributes `layer_names`, `backend`, `keras_version` as
 * byte strings; one group per layer, weightless ones (input, pools) with an empty
 * `weight_names`; conv groups list kernel then bias, each a float32 dataset at
 * `<layer>/<weight name>`. Values are deterministic pseudo-random floats. Returns what it wrote.
 */
export async function writeKerasVgg16H5(path: string, opts: KerasH5Options = {}): Promise<WrittenWeight[]> {
  await h5wasm.ready;
  const next = xorshift(opts.seed ?? 1);
  const naming = opts.naming ?? 'keras2';
  const layerNames = ['input_1'];
  for (const l of VGG16_CONV_LAYERS) {
    if (l.name !== opts.omitLayer) layerNames.push(l.name);
    if (l.name.endsWith('conv2') && /^block[12]_/.test(l.name))
      layerNames.push(l.name.replace(/_conv\d$/, '_pool'));
    if (l.name.endsWith('conv3')) layerNames.push(l.name.replace(/_conv\d$/, '_pool'));
  }
  const written: WrittenWeight[] = [];
  const f = new h5wasm.File(path, 'w');
  try {
    f.create_attribute('layer_names', layerNames, [layerNames.length], bytesDtype(layerNames));
    f.create_attribute('backend', 'tensorflow', null, bytesDtype(['tensorflow']));
    f.create_attribute('keras_version', '2.2.4', null, bytesDtype(['2.2.4']));
    for (const name of layerNames) {
      const group = f.create_group(name);
      const conv = VGG16_CONV_LAYERS.find((l) => l.name === name);
      if (conv === undefined) {
        group.create_attribute('weight_names', new Float64Array(0), [0], '<f8');
        continue;
      }
      const kernelShape =
        opts.kernelShape?.layer === name ? opts.kernelShape.shape : [3, 3, conv.inChannels, conv.filters];
      const weights = [
        {
          role: 'kernel' as const,
          shape: kernelShape,
          wn: naming === 'keras2' ? `${name}/kernel:0` : `${name}_W_1:0`,
        },
        {
          role: 'bias' as const,
          shape: [conv.filters],
          wn: naming === 'keras2' ? `${name}/bias:0` : `${name}_b_1:0`,
        },
      ];
      const names = weights.map((w) => w.wn);
      group.create_attribute('weight_names', names, [names.length], bytesDtype(names));
      for (const w of weights) {
        const size = w.shape.reduce((a, b) => a * b, 1);
        const data = new Float32Array(size);
        for (let i = 0; i < size; i++) data[i] = next();
        // 'block1_conv1/kernel:0' is a dataset inside a sub-group, as h5py creates it.
        const slash = w.wn.lastIndexOf('/');
        const sub = w.wn.slice(0, Math.max(0, slash));
        const existing = slash < 0 ? group : group.get(sub);
        const parent = existing instanceof h5wasm.Group ? existing : group.create_group(sub);
        const leaf = w.wn.slice(slash + 1);
        parent.create_dataset({ name: leaf, data, shape: w.shape, dtype: '<f4' });
        written.push({ layer: name, role: w.role, shape: w.shape, data });
      }
    }
  } finally {
    f.close();
  }
  return written;
}
