import { type FeatureSpec, featureDims, specToString } from '../../lib/model/spec.ts';
import type { FeatureExtractor } from '../../lib/model/types.ts';

/** A FeatureExtractor stand-in that records its batches. */
export interface FakeExtractor extends FeatureExtractor {
  /** Size of every `extractBatch` call, in order. */
  readonly batches: number[];
  disposed: boolean;
}

/**
 * A fast, deterministic extractor for tests of the code around the network: the vector of an
 * image holds its mean B, G, R (caffe values, as preprocessed) in the first three values, zeros
 * after, with `dims` matching the spec (512 for avg/max pooling). Pass `fail` to make the
 * forward pass throw.
 */
export function fakeExtractor(
  opts: {
    size?: number;
    weights?: string;
    pooling?: FeatureSpec['pooling'];
    precision?: FeatureSpec['precision'];
    fail?: Error;
  } = {},
): FakeExtractor {
  const size = opts.size ?? 32;
  const spec: FeatureSpec = {
    model: 'vgg16',
    weights: opts.weights ?? 'random-7',
    input: [size, size],
    pooling: opts.pooling ?? 'avg',
    preprocessing: 'caffe',
    resize: 'bilinear',
    ...(opts.precision === 'int8' ? { precision: 'int8' as const } : {}),
  };
  const dims = featureDims(spec);
  const batches: number[] = [];
  const fake: FakeExtractor = {
    spec,
    specId: specToString(spec),
    dims,
    backend: 'cpu',
    batches,
    disposed: false,
    async extractBatch(images) {
      batches.push(images.length);
      if (opts.fail) throw opts.fail;
      return images.map((img) => {
        if (img.length !== size * size * 3) throw new Error(`fake extractor: got ${img.length} values`);
        const v = new Float32Array(dims);
        for (let i = 0; i < img.length; i++) v[i % 3] = (v[i % 3] ?? 0) + (img[i] ?? 0) / (size * size);
        return v;
      });
    },
    dispose() {
      fake.disposed = true;
    },
  };
  return fake;
}
