/**
 * Calibration of the int8 engine's activation ranges (docs/ARCHITECTURE.md, "The int8 engine"):
 * the fp32 graph runs on a fixed set of generated images and records, for every conv layer, a
 * high percentile of its ReLU output. Everything is deterministic (seeded images, exact
 * histograms), so the same weights and graph options always give the same int8 graph, and the
 * `…/int8` spec stays a function of the weights alone.
 */
import * as ort from 'onnxruntime-node';
import { ValidationError } from '../../errors.ts';
import { mulberry32 } from '../../util/random.ts';
import { VGG16_CONV_LAYERS } from '../vgg16.ts';
import type { NamedWeight } from '../weights.ts';
import { ProtoMessage } from './protobuf.ts';
import type { ActivationRanges } from './vgg16-int8-onnx.ts';
import {
  type BuildVgg16OnnxOptions,
  F,
  modelProto,
  ONNX_INPUT_NAME,
  valueInfo,
  vgg16GraphParts,
} from './vgg16-onnx.ts';

/** ImageNet BGR means of caffe preprocessing (as lib/images/preprocess.ts subtracts them). */
const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68] as const;

/**
 * How many generated images calibrate the ranges, and their seed. Measured (150x150, seeded
 * weights, worst relative L2 feature error on held-out images): 8 images 6.1 %, 4 images 11 %.
 * Calibrating at the spec's own input size matters too: 8 images at 100x100 for a 150x150 graph
 * halved the cost (0.6 s instead of 1.2-1.5 s) but raised the worst error to 7.9 %.
 */
export const CALIBRATION_IMAGES = 8;
export const CALIBRATION_SEED = 20_261_207;

/**
 * Fraction of each layer's values (zeros included) below the range's top; 1 = min-max, the
 * largest value seen (onnxruntime's default calibration). Measured on held-out images with the
 * seeded weights (relative L2 error of the features): min-max 2.0-6.1 %, 0.99999 2.0-8.5 %,
 * 0.9999 1.9-14 %: clipping the rare large activations costs more than the coarser steps do.
 * `test/unit/model/int8.test.ts` bounds the error.
 */
export const CALIBRATION_PERCENTILE = 1;

/**
 * `count` deterministic images of `size`x`size`, caffe-preprocessed (HWC, BGR, mean-subtracted)
 * like `preprocessImage` output: smooth colour gradients, a few filled discs and rectangles,
 * stripes and per-pixel noise, so that the network sees edges, flat areas and texture at every
 * scale, the way photos show them.
 */
export function calibrationImages(
  size: number,
  count = CALIBRATION_IMAGES,
  seed = CALIBRATION_SEED,
): Float32Array[] {
  if (!Number.isInteger(size) || size < 1 || !Number.isInteger(count) || count < 1) {
    throw new ValidationError(`calibration needs a whole size and count ≥ 1 (got ${size}, ${count})`);
  }
  const images: Float32Array[] = [];
  for (let k = 0; k < count; k++) {
    const rnd = mulberry32(seed + k * 7919);
    const rgb = new Float32Array(size * size * 3);
    const corner = () => [rnd() * 255, rnd() * 255, rnd() * 255];
    const [a, b, c] = [corner(), corner(), corner()] as [number[], number[], number[]];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const u = x / size;
        const v = y / size;
        for (let ch = 0; ch < 3; ch++) {
          rgb[(y * size + x) * 3 + ch] =
            (a[ch] as number) * (1 - u) * (1 - v) + (b[ch] as number) * u + (c[ch] as number) * v * (1 - u);
        }
      }
    }
    const shapes = 3 + Math.floor(rnd() * 5);
    for (let s = 0; s < shapes; s++) {
      const colour = corner();
      const cx = rnd() * size;
      const cy = rnd() * size;
      const r = size * (0.05 + rnd() * 0.3);
      const kind = Math.floor(rnd() * 3);
      const period = Math.max(2, Math.round(size * (0.02 + rnd() * 0.1)));
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const inside =
            kind === 0
              ? (x - cx) ** 2 + (y - cy) ** 2 <= r * r
              : kind === 1
                ? Math.abs(x - cx) <= r && Math.abs(y - cy) <= r * 0.6
                : Math.abs(x - cx) <= r && Math.floor((x + y) / period) % 2 === 0;
          if (inside) for (let ch = 0; ch < 3; ch++) rgb[(y * size + x) * 3 + ch] = colour[ch] as number;
        }
      }
    }
    const noise = rnd() * 40;
    const out = new Float32Array(size * size * 3);
    for (let i = 0; i < size * size; i++) {
      const n = (rnd() - 0.5) * noise;
      for (let ch = 0; ch < 3; ch++) {
        const value = Math.min(255, Math.max(0, Math.round((rgb[i * 3 + ch] as number) + n)));
        // RGB → BGR, minus the mean: what rgbToCaffe does to decoded pixels.
        out[i * 3 + (2 - ch)] = value - (CAFFE_MEAN_BGR[2 - ch] as number);
      }
    }
    images.push(out);
  }
  return images;
}

/**
 * A histogram of non-negative float32 values for percentiles, binned by their bit pattern: the
 * exponent and the top 6 mantissa bits (64 bins per octave, so a percentile is within ~1.6 %).
 * Integer ops only: it takes in the ~6 million activations of a 150x150 image in a few ms.
 */
class FloatHistogram {
  /** Bits dropped from a float32's pattern: 23 mantissa bits - 6 kept. */
  private static readonly SHIFT = 17;
  private readonly bins = new Float64Array(2 ** (31 - FloatHistogram.SHIFT));
  private total = 0;
  max = 0;

  add(values: Float32Array): void {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    const { SHIFT } = FloatHistogram;
    const bins = this.bins;
    let top = 0;
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i] as number;
      // Negative values (sign bit set) land in bin 0 with the zeros: ReLU outputs have none.
      const k = b >= 0x8000_0000 ? 0 : b >>> SHIFT;
      bins[k] = (bins[k] as number) + 1;
      if (b < 0x8000_0000 && b > top) top = b;
    }
    const view = new Float32Array(Uint32Array.of(top).buffer)[0] as number;
    if (view > this.max) this.max = view;
    this.total += values.length;
  }

  /** The value below which `p` of all values (zeros included) lie: the upper edge of its bin. */
  percentile(p: number): number {
    if (p >= 1 || this.total === 0) return this.max;
    const target = p * this.total;
    let seen = 0;
    for (let b = 0; b < this.bins.length; b++) {
      seen += this.bins[b] as number;
      if (seen >= target) {
        const edge = new Float32Array(Uint32Array.of((b + 1) << FloatHistogram.SHIFT).buffer)[0] as number;
        return Math.min(this.max, edge);
      }
    }
    return this.max;
  }
}

/** The fp32 graph with each conv layer's ReLU output as an extra graph output. */
function calibrationGraph(weights: readonly NamedWeight[], opts: BuildVgg16OnnxOptions): Uint8Array {
  const { nodes, inits } = vgg16GraphParts(weights, { ...opts, batch: 1 });
  const [h, w] = opts.inputSize;
  const graph = new ProtoMessage();
  for (const n of nodes) graph.message(F.graph.node, n);
  graph.string(F.graph.name, 'vgg16_calibration');
  for (const i of inits) graph.message(F.graph.initializer, i);
  graph.message(F.graph.input, valueInfo(ONNX_INPUT_NAME, [1, h, w, 3]));
  let [sh, sw] = [h, w];
  let block = 'block1';
  for (const layer of VGG16_CONV_LAYERS) {
    const b = layer.name.slice(0, layer.name.indexOf('_'));
    if (b !== block) {
      [sh, sw, block] = [Math.floor(sh / 2), Math.floor(sw / 2), b];
    }
    graph.message(F.graph.output, valueInfo(layer.name, [1, layer.filters, sh, sw]));
  }
  return modelProto(graph, 'VGG16 base with every ReLU output, for int8 calibration');
}

/** Options of `calibrateVgg16`. */
export interface CalibrateOptions {
  /** Preprocessed images to calibrate on. @default calibrationImages(inputSize[0]) (square inputs) */
  images?: readonly Float32Array[];
  /** @default CALIBRATION_PERCENTILE */
  percentile?: number;
  /** onnxruntime intra-op threads. @default 1 */
  threads?: number;
}

/**
 * Runs the fp32 VGG16 base on the calibration images (one at a time, so memory stays at one
 * image's activations) and returns the int8 graph's activation ranges: the input's fixed caffe
 * range [0 - max mean, 255 - min mean], and per conv layer the `percentile` of its ReLU output.
 *
 * @example
 * const ranges = await calibrateVgg16(weights, { inputSize: [150, 150], pooling: 'flatten' });
 */
export async function calibrateVgg16(
  weights: readonly NamedWeight[],
  opts: BuildVgg16OnnxOptions,
  calibration: CalibrateOptions = {},
): Promise<ActivationRanges> {
  const [h, w] = opts.inputSize;
  if (calibration.images === undefined && h !== w) {
    throw new ValidationError(`the generated calibration images are square; pass images for ${h}x${w}`);
  }
  const images = calibration.images ?? calibrationImages(h);
  const p = calibration.percentile ?? CALIBRATION_PERCENTILE;
  if (!(p > 0 && p <= 1)) throw new ValidationError(`percentile must be in (0, 1] (got ${p})`);
  const session = await ort.InferenceSession.create(calibrationGraph(weights, opts), {
    executionProviders: ['cpu'],
    intraOpNumThreads: calibration.threads ?? 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: false,
    logSeverityLevel: 3,
  });
  const histograms = new Map(VGG16_CONV_LAYERS.map((l) => [l.name, new FloatHistogram()]));
  try {
    for (const image of images) {
      if (image.length !== h * w * 3) {
        throw new ValidationError(
          `a calibration image has ${image.length} values; ${h}x${w}x3 needs ${h * w * 3}`,
        );
      }
      const input = new ort.Tensor('float32', image, [1, h, w, 3]);
      const out = await session.run({ [ONNX_INPUT_NAME]: input });
      for (const [name, hist] of histograms) {
        const t = out[name];
        if (t === undefined || !(t.data instanceof Float32Array)) throw new Error(`calibration lost ${name}`);
        hist.add(t.data);
        t.dispose();
      }
      input.dispose();
    }
  } finally {
    await session.release();
  }
  const relu: Record<string, number> = {};
  for (const [name, hist] of histograms) relu[name] = hist.percentile(p);
  return {
    input: [-Math.max(...CAFFE_MEAN_BGR), 255 - Math.min(...CAFFE_MEAN_BGR)],
    relu,
  };
}
