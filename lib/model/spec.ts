import { ValidationError } from '../errors.ts';

/** How the VGG16 feature map is reduced to a vector. */
export type Pooling = 'flatten' | 'avg' | 'max';
export const POOLINGS: readonly Pooling[] = ['flatten', 'avg', 'max'];

/**
 * Arithmetic of the forward pass: `fp32` (the reference) or `int8` (quantized weights and
 * activations, onnxruntime only; docs/ARCHITECTURE.md, "The int8 engine"). int8 features differ
 * from fp32 ones by a few percent, so the spec names the precision and the two never mix.
 */
export type Precision = 'fp32' | 'int8';
export const PRECISIONS: readonly Precision[] = ['fp32', 'int8'];

/** Resize interpolation used before the network (named in the spec so features never mix). */
export type ResizeKernel = 'bilinear' | 'nearest';

/**
 * Identity of a feature: two features are comparable only when their specs are equal.
 * `weights` is the first 16 hex chars of the sha256 of the weights (see `lib/model/weights.ts`),
 * or `random-<seed>` for seeded random weights (never mixed with real ones).
 */
export interface FeatureSpec {
  model: 'vgg16';
  weights: string;
  /** [height, width] of the network input. */
  input: [number, number];
  pooling: Pooling;
  preprocessing: 'caffe';
  resize: ResizeKernel;
  /**
   * Absent means fp32 (every spec written before int8 existed). Only `int8` appears in the
   * string form, as a `/int8` suffix, so fp32 spec strings are unchanged.
   */
  precision?: Precision;
}

/** The precision of a spec (absent = fp32). */
export function specPrecision(spec: Pick<FeatureSpec, 'precision'>): Precision {
  return spec.precision ?? 'fp32';
}

/** Resize kernel recorded in the spec when nobody says otherwise (extractor and trainer agree on it). */
export const DEFAULT_RESIZE: ResizeKernel = 'bilinear';

/** Default input size of the original recipe. */
export const DEFAULT_INPUT_SIZE = 150;

/** Spatial size after VGG16's five 2x2/2 max-pools (Keras 'valid' pooling floors). */
export function featureMapSize(inputSize: number): number {
  let s = inputSize;
  for (let i = 0; i < 5; i++) s = Math.floor(s / 2);
  return s;
}

/** Length of the feature vector for a spec: h*w*512 for flatten, 512 for avg/max. */
export function featureDims(spec: Pick<FeatureSpec, 'input' | 'pooling'>): number {
  if (spec.pooling !== 'flatten') return 512;
  return featureMapSize(spec.input[0]) * featureMapSize(spec.input[1]) * 512;
}

/**
 * Canonical short string of a spec, stored in S3 metadata (`feature-spec`), models and reports.
 * An int8 spec ends in `/int8`; an fp32 one has no suffix.
 * @example specToString(spec) === 'vgg16/3f2a9c0d11e4b7a1/150x150/flatten/caffe/bilinear'
 * @example specToString({ ...spec, precision: 'int8' }) === 'vgg16/3f2a9c0d11e4b7a1/150x150/flatten/caffe/bilinear/int8'
 */
export function specToString(spec: FeatureSpec): string {
  return [
    spec.model,
    spec.weights,
    `${spec.input[0]}x${spec.input[1]}`,
    spec.pooling,
    spec.preprocessing,
    spec.resize,
    ...(specPrecision(spec) === 'int8' ? ['int8'] : []),
  ].join('/');
}

const SPEC_RE =
  /^vgg16\/([a-z0-9-]{1,64})\/(\d{2,4})x(\d{2,4})\/(flatten|avg|max)\/caffe\/(bilinear|nearest)(\/int8)?$/;

/** Parses the string form back; throws ValidationError on anything else. */
export function parseSpec(text: string): FeatureSpec {
  const m = SPEC_RE.exec(text);
  if (!m) throw new ValidationError(`not a feature spec: '${text}'`);
  const [, weights, h, w, pooling, resize, int8] = m as unknown as [
    string,
    string,
    string,
    string,
    Pooling,
    ResizeKernel,
    string | undefined,
  ];
  const input: [number, number] = [Number(h), Number(w)];
  if (input[0] < 32 || input[1] < 32)
    throw new ValidationError(`input size must be at least 32x32: '${text}'`);
  return {
    model: 'vgg16',
    weights,
    input,
    pooling,
    preprocessing: 'caffe',
    resize,
    ...(int8 === undefined ? {} : { precision: 'int8' as const }),
  };
}

/** Whether weights in a spec are seeded random ones (to be labelled loudly wherever shown). */
export function isRandomWeights(spec: FeatureSpec | string): boolean {
  const s = typeof spec === 'string' ? parseSpec(spec) : spec;
  return s.weights.startsWith('random-');
}
