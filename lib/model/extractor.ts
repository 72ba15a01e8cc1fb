import type { S3Client } from '@aws-sdk/client-s3';
import { describeError, ValidationError } from '../errors.ts';
import { type Log, silentLog } from '../util/log.ts';
import { BackendUnavailableError, selectBackend } from './backend.ts';
import {
  DEFAULT_RESIZE,
  type FeatureSpec,
  POOLINGS,
  type Pooling,
  PRECISIONS,
  type Precision,
  type ResizeKernel,
} from './spec.ts';
import type { BackendName, FeatureExtractor, TfjsBackendName, WeightsSource } from './types.ts';
import { VGG16_MIN_INPUT } from './vgg16.ts';
import { loadWeights } from './weights.ts';

/** Largest input size accepted (as TLEARN_INPUT_SIZE). */
export const MAX_INPUT_SIZE = 1024;

export { DEFAULT_RESIZE } from './spec.ts';

/** Options of `loadExtractor`. */
export interface LoadExtractorOptions {
  weights: WeightsSource;
  /** Square input size in pixels (32..1024); 150 in the original recipe. */
  inputSize: number;
  pooling: Pooling;
  /** Force a backend (TLEARN_BACKEND); default: the first that loads. */
  backend?: BackendName;
  /** Needed for `s3://` weights. */
  s3?: S3Client;
  log?: Log;
  /** Run one forward pass at load so the first real request is not slow. @default true */
  warmUp?: boolean;
  /**
   * Resize kernel the images were prepared with, recorded in the spec (the extractor itself
   * does not resize). @default DEFAULT_RESIZE
   */
  resize?: ResizeKernel;
  /**
   * `int8` runs the quantized graph (onnxruntime only; its spec ends in `/int8`): about 3-4x
   * less CPU per image, features within a few percent of fp32 (docs/ARCHITECTURE.md, "The int8
   * engine"). @default 'fp32'
   */
  precision?: Precision;
}

function validate(opts: LoadExtractorOptions): void {
  const { inputSize, pooling, weights } = opts;
  if (!Number.isInteger(inputSize) || inputSize < VGG16_MIN_INPUT || inputSize > MAX_INPUT_SIZE) {
    throw new ValidationError(
      `input size must be a whole number from ${VGG16_MIN_INPUT} to ${MAX_INPUT_SIZE} (got ${inputSize})`,
    );
  }
  if (!POOLINGS.includes(pooling)) {
    throw new ValidationError(`pooling must be one of ${POOLINGS.join(', ')} (got '${String(pooling)}')`);
  }
  const precision = opts.precision ?? 'fp32';
  if (!PRECISIONS.includes(precision)) {
    throw new ValidationError(
      `precision must be one of ${PRECISIONS.join(', ')} (got '${String(precision)}')`,
    );
  }
  if (precision === 'int8' && opts.backend !== undefined && opts.backend !== 'onnx') {
    throw new ValidationError(
      `precision int8 runs on the onnx engine only, not '${opts.backend}' (unset TLEARN_BACKEND or set it to onnx)`,
    );
  }
  if (weights.kind === 'uri' && weights.uri.trim() === '') throw new ValidationError('weights URI is empty');
  if (weights.kind === 'uri' && weights.uri.startsWith('s3://') && opts.s3 === undefined) {
    throw new ValidationError(`weights at ${weights.uri} need an S3 client (pass s3)`);
  }
}

/**
 * Loads VGG16's convolutional base as a FeatureExtractor: validates the options, selects the
 * tensor backend, builds the graph for `inputSize` and `pooling`, loads and checks the weights
 * (every layer's shape), then runs one warm-up forward pass.
 *
 * @example
 * const extractor = await loadExtractor({ weights: { kind: 'uri', uri: cfg.baseModelUri },
 *   inputSize: 150, pooling: 'flatten', s3, log });
 * const [vector] = await extractor.extractBatch([await preprocessImage(bytes, extractor.spec)]);
 */
export async function loadExtractor(opts: LoadExtractorOptions): Promise<FeatureExtractor> {
  validate(opts);
  const log = opts.log ?? silentLog;
  const { inputSize, pooling } = opts;
  const started = Date.now();
  // Engine order (ENGINE_ORDER): tfjs-node where it loads (the Lambda image), else onnxruntime-node
  // (~8x faster than wasm on CPU, same weights and graph), else tfjs wasm, else tfjs cpu.
  // int8 exists only as an onnxruntime graph: no tfjs engine, and no fallback to fp32 either (its
  // features would carry another spec than the one asked for).
  const int8 = opts.precision === 'int8';
  let tfjsBackend: TfjsBackendName | undefined;
  if (int8) {
    tfjsBackend = undefined;
  } else if (opts.backend === undefined) {
    tfjsBackend = await selectBackend('tensorflow', silentLog).catch(() => undefined);
  } else if (opts.backend !== 'onnx') {
    tfjsBackend = await selectBackend(opts.backend, log);
  }
  const loaded = await loadWeights(opts.weights, { log, ...(opts.s3 ? { s3: opts.s3 } : {}) });
  const spec: FeatureSpec = {
    model: 'vgg16',
    weights: loaded.weightsId,
    input: [inputSize, inputSize],
    pooling,
    preprocessing: 'caffe',
    resize: opts.resize ?? DEFAULT_RESIZE,
    ...(int8 ? { precision: 'int8' as const } : {}),
  };
  if (tfjsBackend === undefined) {
    try {
      // Loaded lazily: onnxruntime-node is an optional dependency.
      const { loadOnnxExtractor } = await import('./onnx/onnx-extractor.ts');
      const extractor = await loadOnnxExtractor({
        weights: loaded.weights,
        spec,
        log,
        warmUp: opts.warmUp ?? true,
      });
      return ready(extractor, log, started);
    } catch (err) {
      if (opts.backend === 'onnx' || int8) {
        throw new BackendUnavailableError(
          `${int8 ? 'precision int8 needs the onnx engine' : "backend 'onnx' was asked for (TLEARN_BACKEND)"} but onnxruntime-node is not usable here: ${describeError(err)}`,
          { cause: err },
        );
      }
      log.warn('onnxruntime-node is not usable; falling back to tfjs', { error: describeError(err) });
      tfjsBackend = await selectBackend(undefined, log);
    }
  }
  // Loaded lazily too: tfjs (~80 MB resident) only when a tfjs engine runs.
  const { loadTfjsExtractor } = await import('./tfjs/tfjs-extractor.ts');
  const extractor = await loadTfjsExtractor({
    weights: loaded.weights,
    spec,
    backend: tfjsBackend,
    warmUp: opts.warmUp ?? true,
  });
  return ready(extractor, log, started);
}

/** Logs a loaded extractor (its spec, engine and load time) and hands it on. */
function ready(extractor: FeatureExtractor, log: Log, started: number): FeatureExtractor {
  log.info('feature extractor ready', {
    spec: extractor.specId,
    dims: extractor.dims,
    backend: extractor.backend,
    ms: Date.now() - started,
  });
  return extractor;
}
