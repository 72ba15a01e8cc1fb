import { availableParallelism } from 'node:os';
import type * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { TlearnError, ValidationError, WeightsError } from '../../errors.ts';
import { type Log, silentLog } from '../../util/log.ts';
import { type FeatureSpec, featureDims, POOLINGS, specPrecision, specToString } from '../spec.ts';
import type { BackendName, FeatureExtractor } from '../types.ts';
import { VGG16_CONV_LAYERS, VGG16_MIN_INPUT } from '../vgg16.ts';
import { type NamedWeight, validateWeights } from '../weights.ts';
import { calibrateVgg16 } from './calibration.ts';
import { buildVgg16Int8Onnx } from './vgg16-int8-onnx.ts';
import { buildVgg16Onnx, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from './vgg16-onnx.ts';

/** What this engine reports as `FeatureExtractor.backend`. */
export const ONNX_BACKEND: BackendName = 'onnx';

/** onnxruntime refused the model or failed to run it. */
export class OnnxRuntimeError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('OnnxRuntimeError', message, 500, options);
  }
}

/**
 * Session knobs exposed for benchmarks (`bench/extract-engines.ts`); the defaults are what
 * measured best on a 2-core AVX2 machine.
 */
export interface OnnxSessionTuning {
  /**
   * onnxruntime's arena keeps the largest activations it ever needed (a batch of 8 at 150x150:
   * ~200 MB) for the life of the session. Off, they are freed after each run: the local stack,
   * which holds the session next to the API and the trainer, stays ~200 MB smaller; no cost per
   * image beyond the noise of a loaded 2-core machine (docs/BENCHMARKS.md, "The local stack").
   * @default false
   */
  enableCpuMemArena?: boolean;
  /** @default true (onnxruntime's default; plans activation memory once per input shape) */
  enableMemPattern?: boolean;
  /** VGG16 is a chain, so 'parallel' has nothing to overlap. @default 'sequential' */
  executionMode?: 'sequential' | 'parallel';
  /**
   * Whether idle intra-op threads spin waiting for work (onnxruntime's own default is on).
   * Off here: VGG16's ops take milliseconds, so the wake-up latency spinning saves is noise,
   * while spinning threads burn CPU that other work needs whenever cores are shared (the local
   * stack, CI, a laptop). Measured on 2 cores: equal when idle (~62 ms/image at 150x150),
   * often faster when other processes compete. @default false
   */
  allowSpinning?: boolean;
  /** Fix the batch dimension of the graph instead of a symbolic `N`. @default 'dynamic' */
  batch?: 'dynamic' | number;
}

/** Options of `loadOnnxExtractor`. */
export interface LoadOnnxExtractorOptions {
  /**
   * The 26 VGG16 tensors (`block1_conv1/kernel` [3,3,3,64], `block1_conv1/bias` [64], …), as
   * loaded by `loadWeights` or read from a tfjs model with `weightsFromTfjsModel`.
   */
  weights: readonly NamedWeight[];
  /**
   * Spec of the features. `spec.weights` must be the id of exactly these weights (the caller
   * got both from the same `loadWeights` call); it is not recomputed here. `spec.precision`
   * 'int8' loads the quantized graph (calibrated at load, see `buildOnnxGraph`).
   */
  spec: FeatureSpec;
  /** onnxruntime intra-op threads. @default os.availableParallelism() */
  threads?: number;
  log?: Log;
  /** Run one forward pass at load so the first real request is not slow. @default true */
  warmUp?: boolean;
  tuning?: OnnxSessionTuning;
}

function validate(opts: LoadOnnxExtractorOptions): void {
  const { spec, threads } = opts;
  if (spec.model !== 'vgg16' || spec.preprocessing !== 'caffe') {
    throw new ValidationError(
      `the ONNX engine runs VGG16 on caffe-preprocessed input, not ${specToString(spec)}`,
    );
  }
  const [h, w] = spec.input;
  if (![h, w].every((s) => Number.isInteger(s) && s >= VGG16_MIN_INPUT)) {
    throw new ValidationError(`input size must be whole numbers ≥ ${VGG16_MIN_INPUT} (got ${h}x${w})`);
  }
  if (!POOLINGS.includes(spec.pooling)) {
    throw new ValidationError(
      `pooling must be one of ${POOLINGS.join(', ')} (got '${String(spec.pooling)}')`,
    );
  }
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new ValidationError(`threads must be a whole number ≥ 1 (got ${threads})`);
  }
}

/**
 * Loads VGG16's convolutional base into onnxruntime (CPU) as a FeatureExtractor. Same contract
 * and same numbers (to float32 rounding) as `loadExtractor`'s tfjs graph, at about 1/7 of the
 * CPU time of tfjs' wasm backend (150x150 on a 2-core AVX-512 machine: ~95 ms/image on 1
 * thread, ~62 ms on 2, against ~700 ms for wasm; `bench/extract-engines.ts`). The graph is
 * serialized in process by
 * `buildVgg16Onnx` (nothing is downloaded or written to disk) and optimized by onnxruntime
 * (level 'all': conv+relu fusion, NCHWc layout).
 *
 * With `spec.precision` 'int8' it runs the quantized graph of `vgg16-int8-onnx.ts` instead
 * (calibrated at load, see `buildOnnxGraph`): ~4x less CPU per image at 150x150, features ~2.5 %
 * (relative L2) from fp32's, under their own `…/int8` spec (docs/BENCHMARKS.md, "int8 vs fp32").
 *
 * `extractBatch` runs the whole batch as one `[n, h, w, 3]` tensor. Note that onnxruntime-node
 * runs inference synchronously on the JS thread (its `run` only defers to `setImmediate`), so the
 * event loop is blocked ~60-100 ms per 150x150 image; keep batches small where latency matters.
 *
 * @example
 * const loaded = await loadWeights(source, { log });
 * const extractor = await loadOnnxExtractor({ weights: loaded.weights, log, spec: { model: 'vgg16',
 *   weights: loaded.weightsId, input: [150, 150], pooling: 'flatten', preprocessing: 'caffe', resize: 'bilinear' } });
 */
export async function loadOnnxExtractor(opts: LoadOnnxExtractorOptions): Promise<FeatureExtractor> {
  validate(opts);
  const log = opts.log ?? silentLog;
  const spec: FeatureSpec = { ...opts.spec, input: [opts.spec.input[0], opts.spec.input[1]] };
  const [h, w] = spec.input;
  const threads = opts.threads ?? availableParallelism();
  const tuning = opts.tuning ?? {};
  const started = Date.now();

  const model = await buildOnnxGraph(opts.weights, spec, {
    batch: tuning.batch ?? 'dynamic',
    threads,
    log,
  });
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      // The graph is a chain: inter-op threads would only idle.
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: tuning.executionMode ?? 'sequential',
      enableCpuMemArena: tuning.enableCpuMemArena ?? false,
      enableMemPattern: tuning.enableMemPattern ?? true,
      logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: tuning.allowSpinning === true ? '1' : '0' } } },
    });
  } catch (err) {
    throw new OnnxRuntimeError(
      `onnxruntime could not load the VGG16 graph (${h}x${w}, ${spec.pooling}, ${specPrecision(spec)})`,
      {
        cause: err,
      },
    );
  }

  const dims = featureDims(spec);
  const pixels = h * w * 3;
  const fixedBatch = typeof tuning.batch === 'number' ? tuning.batch : undefined;
  let disposed = false;

  async function runBatch(batch: Float32Array, n: number): Promise<Float32Array> {
    const input = new ort.Tensor('float32', batch, [n, h, w, 3]);
    let out: ort.Tensor | undefined;
    try {
      const result = await session.run({ [ONNX_INPUT_NAME]: input });
      out = result[ONNX_OUTPUT_NAME];
      if (out === undefined || !(out.data instanceof Float32Array) || out.data.length !== n * dims) {
        throw new OnnxRuntimeError(
          `the VGG16 graph returned ${out === undefined ? 'no' : `a [${out.dims}]`} '${ONNX_OUTPUT_NAME}' tensor, expected [${n}, ${dims}]`,
        );
      }
      return out.data;
    } catch (err) {
      if (err instanceof TlearnError) throw err;
      throw new OnnxRuntimeError(`onnxruntime failed on a batch of ${n}`, { cause: err });
    } finally {
      input.dispose();
    }
  }

  const extractor: FeatureExtractor = {
    spec,
    specId: specToString(spec),
    dims,
    backend: ONNX_BACKEND,
    async extractBatch(images) {
      if (disposed) throw new ValidationError('this feature extractor was disposed');
      if (images.length === 0) return [];
      images.forEach((img, i) => {
        if (img.length !== pixels) {
          throw new ValidationError(
            `image ${i} has ${img.length} values; a ${h}x${w}x3 input needs ${pixels} (preprocess it with this extractor's spec)`,
          );
        }
      });
      // A graph with a fixed batch size (benchmarks only) is fed in chunks of that size, padded.
      const chunk = fixedBatch ?? images.length;
      const vectors: Float32Array[] = [];
      for (let start = 0; start < images.length; start += chunk) {
        const part = images.slice(start, start + chunk);
        const batch = new Float32Array(chunk * pixels);
        part.forEach((img, i) => {
          batch.set(img, i * pixels);
        });
        const flat = await runBatch(batch, chunk);
        // slice() copies: each vector owns its buffer (safe to hand to a .npy writer, and the
        // big output buffer can be collected).
        for (let i = 0; i < part.length; i++) vectors.push(flat.slice(i * dims, (i + 1) * dims));
      }
      return vectors;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      session
        .release()
        .catch((err: unknown) => log.warn('releasing the onnxruntime session failed', { err: String(err) }));
    },
  };

  try {
    if (opts.warmUp ?? true) await extractor.extractBatch([new Float32Array(pixels)]);
  } catch (err) {
    extractor.dispose();
    throw err;
  }
  log.info('feature extractor ready', {
    spec: extractor.specId,
    dims,
    backend: 'onnx',
    precision: specPrecision(spec),
    threads,
    ms: Date.now() - started,
  });
  return extractor;
}

/**
 * The serialized VGG16 graph of a spec: fp32 as is, or int8 after calibrating its activation
 * ranges on the fp32 graph (`calibrateVgg16`: 8 generated images, 1.2-1.5 s at 150x150 on 2 cores,
 * once per load). Calibration is deterministic, so one spec always gives one int8 graph.
 */
export async function buildOnnxGraph(
  weights: readonly NamedWeight[],
  spec: FeatureSpec,
  opts: { batch?: 'dynamic' | number; threads?: number; log?: Log } = {},
): Promise<Uint8Array> {
  const graph = { inputSize: [spec.input[0], spec.input[1]] as [number, number], pooling: spec.pooling };
  if (specPrecision(spec) === 'fp32')
    return buildVgg16Onnx(weights, { ...graph, batch: opts.batch ?? 'dynamic' });
  const started = Date.now();
  const ranges = await calibrateVgg16(weights, graph, { threads: opts.threads ?? availableParallelism() });
  (opts.log ?? silentLog).info('int8 activation ranges calibrated', { ms: Date.now() - started });
  return buildVgg16Int8Onnx(weights, { ...graph, batch: opts.batch ?? 'dynamic' }, ranges);
}

/**
 * The 26 VGG16 weight tensors of a loaded tfjs VGG16 (`buildVgg16` + weights, or a layers model
 * with Keras layer names), named and ordered as `loadOnnxExtractor` wants them: for each conv
 * layer `layer.getWeights()` = [kernel, bias]. Lets the tfjs extractor hand the very weights it
 * loaded to the ONNX engine, so both report the same spec. Creates no tensors (reads the layers'
 * variables); the values are copies, so disposing the model afterwards is safe.
 * Throws a WeightsError naming the layer when the model is not a VGG16 base.
 *
 * @example const onnx = await loadOnnxExtractor({ weights: weightsFromTfjsModel(model), spec });
 */
export function weightsFromTfjsModel(model: tf.LayersModel): NamedWeight[] {
  const named: NamedWeight[] = [];
  for (const conv of VGG16_CONV_LAYERS) {
    let layer: tf.layers.Layer;
    try {
      layer = model.getLayer(conv.name);
    } catch (err) {
      throw new WeightsError(`the tfjs model has no layer ${conv.name}`, { cause: err });
    }
    const values = layer.getWeights();
    if (values.length !== 2) {
      throw new WeightsError(`layer ${conv.name} has ${values.length} weights, expected kernel and bias`);
    }
    values.forEach((t, i) => {
      // A copy: on the cpu backend dataSync() returns the tensor's own storage.
      const data = Float32Array.from(t.dataSync());
      named.push({ name: `${conv.name}/${i === 0 ? 'kernel' : 'bias'}`, shape: [...t.shape], data });
    });
  }
  // Checks that every layer had exactly a kernel and a bias of VGG16's shapes.
  return validateWeights(named);
}
