/**
 * VGG16's convolutional base as a quantized ONNX graph in QDQ form (docs/ARCHITECTURE.md,
 * "The int8 engine"): int8 weights per output channel (symmetric), uint8 activations per tensor
 * (calibrated ranges, see `calibration.ts`), written as QuantizeLinear / DequantizeLinear pairs
 * around float ops. onnxruntime's CPU execution provider fuses every `DQ → Conv → Q` group into
 * one QLinearConv (u8 activations × s8 weights: the AVX-512 VNNI / AVX2 int8 kernels), and runs
 * MaxPool on uint8 directly. The format is the one onnxruntime's own quantization tool writes
 * (`onnxruntime/python/tools/quantization`, QuantFormat.QDQ with per_channel=True), so any ONNX
 * runtime reads it, and runtimes without int8 kernels still compute the same numbers in float.
 */
import { ValidationError } from '../../errors.ts';
import { VGG16_CONV_LAYERS } from '../vgg16.ts';
import { type NamedWeight, validateWeights } from '../weights.ts';
import { ProtoMessage } from './protobuf.ts';
import {
  type BuildVgg16OnnxOptions,
  CONV_ATTRIBUTES,
  checkOptions,
  F,
  initializer,
  kerasKernelToOnnx,
  modelProto,
  node,
  ONNX_BATCH_DIM,
  ONNX_INPUT_NAME,
  ONNX_OUTPUT_NAME,
  POOL_ATTRIBUTES,
  pushFeatureOutput,
  valueInfo,
} from './vgg16-onnx.ts';

/** `TensorProto.DataType` values of the quantized tensors. */
const UINT8 = 2;
const INT8 = 3;
const INT32 = 6;

/** Largest magnitude of an int8 weight (symmetric: -127..127, the -128 code unused). */
const INT8_MAX = 127;
/** Codes of a uint8 activation. */
const UINT8_MAX = 255;

/**
 * The calibrated range of every quantized activation: the network input (caffe-preprocessed, so
 * it has a negative part) and each conv layer's ReLU output (≥ 0, so only its top matters).
 */
export interface ActivationRanges {
  /** [min, max] of the NCHW input values. */
  input: [number, number];
  /** Upper end of each conv layer's ReLU output, by Keras layer name (`block1_conv1` …). */
  relu: Record<string, number>;
}

/** Per-tensor affine uint8 parameters: real = scale * (q - zeroPoint). */
export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

/**
 * uint8 parameters covering [min, max] (widened to include 0, so zero is exact, as the ONNX
 * quantizer does). A range of width 0 gets scale 1 (every value quantizes to the zero point).
 */
export function uint8Params(min: number, max: number): QuantParams {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) {
    throw new ValidationError(`a quantization range needs finite min ≤ max (got [${min}, ${max}])`);
  }
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  if (hi - lo === 0) return { scale: 1, zeroPoint: 0 };
  const scale = (hi - lo) / UINT8_MAX;
  const zeroPoint = Math.min(UINT8_MAX, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/**
 * Symmetric per-output-channel int8 quantization of an ONNX conv weight `[out, in, kh, kw]`:
 * scale[c] = max|w[c]| / 127, q = round(w / scale[c]). An all-zero channel gets scale 1.
 */
export function quantizeWeightsPerChannel(
  weight: Float32Array,
  outChannels: number,
): { q: Int8Array; scales: Float32Array } {
  if (outChannels < 1 || weight.length % outChannels !== 0) {
    throw new ValidationError(`${weight.length} weights do not split into ${outChannels} channels`);
  }
  const per = weight.length / outChannels;
  const q = new Int8Array(weight.length);
  const scales = new Float32Array(outChannels);
  for (let c = 0; c < outChannels; c++) {
    let max = 0;
    for (let i = c * per; i < (c + 1) * per; i++) max = Math.max(max, Math.abs(weight[i] as number));
    // Stored as float32: quantize with the very value the runtime will multiply by.
    const scale = Math.fround(max === 0 ? 1 : max / INT8_MAX);
    scales[c] = scale;
    for (let i = c * per; i < (c + 1) * per; i++) {
      q[i] = Math.max(-INT8_MAX, Math.min(INT8_MAX, Math.round((weight[i] as number) / scale)));
    }
  }
  return { q, scales };
}

/**
 * int32 bias for a quantized conv, as QLinearConv wants it: scale[c] = inputScale * weightScale[c],
 * zero point 0, values clamped to the int32 range.
 */
export function quantizeBias(
  bias: Float32Array,
  inputScale: number,
  weightScales: Float32Array,
): { q: Int32Array; scales: Float32Array } {
  const q = new Int32Array(bias.length);
  const scales = new Float32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const scale = Math.fround(inputScale * (weightScales[c] as number));
    scales[c] = scale;
    const v = Math.round((bias[c] as number) / scale);
    q[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, v));
  }
  return { q, scales };
}

function rawTensor(name: string, dims: number[], dataType: number, bytes: Uint8Array): ProtoMessage {
  return new ProtoMessage()
    .ints(F.tensor.dims, dims)
    .int(F.tensor.dataType, dataType)
    .string(F.tensor.name, name)
    .bytes(F.tensor.rawData, bytes);
}

const bytesOf = (a: Int8Array | Uint8Array | Int32Array): Uint8Array =>
  // int32 raw_data is little-endian; Node runs on little-endian hosts only (see protobuf.ts).
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Scalar float scale + scalar uint8 zero point initializers named `{prefix}/scale`, `/zero_point`. */
function scalarQuantInits(prefix: string, p: QuantParams): ProtoMessage[] {
  return [
    initializer(`${prefix}/scale`, [], Float32Array.of(p.scale)),
    rawTensor(`${prefix}/zero_point`, [], UINT8, Uint8Array.of(p.zeroPoint)),
  ];
}

/** `QuantizeLinear` then `DequantizeLinear` of `x` with the scalar params at `prefix`. */
function qdq(prefix: string, x: string, q: string, dq: string): ProtoMessage[] {
  const params = [`${prefix}/scale`, `${prefix}/zero_point`];
  return [
    node('QuantizeLinear', `${q}/quantize`, [x, ...params], [q]),
    node('DequantizeLinear', `${dq}/dequantize`, [q, ...params], [dq]),
  ];
}

function checkRanges(ranges: ActivationRanges): void {
  const [lo, hi] = ranges.input;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi)) {
    throw new ValidationError(`the input range must be finite min ≤ max (got [${lo}, ${hi}])`);
  }
  for (const layer of VGG16_CONV_LAYERS) {
    const top = ranges.relu[layer.name];
    if (top === undefined || !Number.isFinite(top) || top < 0) {
      throw new ValidationError(`the calibration has no valid range for ${layer.name} (got ${top})`);
    }
  }
}

/** `block3` of `block3_conv2`. */
const blockOf = (layerName: string): string => layerName.slice(0, layerName.indexOf('_'));

/**
 * The nodes and initializers of the int8 VGG16 base, from `input` (NHWC float32, BGR,
 * caffe-preprocessed) to `features` (`[N, dims]` float32): the quantized counterpart of
 * `vgg16GraphParts`, for `buildVgg16Int8Onnx` and the one-file export.
 *
 * Per conv layer: `DQ(x_u8) , DQ(W_s8, axis 0) , DQ(b_s32, axis 0) → Conv → Q(u8, zero point 0)`.
 * No Relu node: a uint8 QuantizeLinear with zero point 0 saturates negatives to 0, which is the
 * ReLU (onnxruntime's quantizer drops it the same way). Pools run on the uint8 tensor.
 */
export function vgg16Int8GraphParts(
  weights: readonly NamedWeight[],
  opts: BuildVgg16OnnxOptions,
  ranges: ActivationRanges,
): { nodes: ProtoMessage[]; inits: ProtoMessage[]; dims: number } {
  checkOptions(opts);
  checkRanges(ranges);
  const ordered = validateWeights(weights);
  const byName = new Map(ordered.map((w) => [w.name, w]));
  const [h, w] = opts.inputSize;
  const nodes: ProtoMessage[] = [];
  const inits: ProtoMessage[] = [];

  nodes.push(
    node('Transpose', 'to_nchw', [ONNX_INPUT_NAME], ['input_nchw'], [{ name: 'perm', ints: [0, 3, 1, 2] }]),
  );
  let inParams = uint8Params(ranges.input[0], ranges.input[1]);
  inits.push(...scalarQuantInits('input_nchw', inParams));
  nodes.push(...qdq('input_nchw', 'input_nchw', 'input_nchw/q', 'input_nchw/dq'));
  let x = 'input_nchw/dq';

  VGG16_CONV_LAYERS.forEach((layer, index) => {
    const kernel = byName.get(`${layer.name}/kernel`);
    const bias = byName.get(`${layer.name}/bias`);
    if (kernel === undefined || bias === undefined) throw new Error(`validated weights lack ${layer.name}`);
    const wq = quantizeWeightsPerChannel(kerasKernelToOnnx(kernel.data, kernel.shape), layer.filters);
    const bq = quantizeBias(bias.data, inParams.scale, wq.scales);
    const k = `${layer.name}/kernel`;
    const b = `${layer.name}/bias`;
    inits.push(
      rawTensor(`${k}/q`, [layer.filters, layer.inChannels, 3, 3], INT8, bytesOf(wq.q)),
      initializer(`${k}/scale`, [layer.filters], wq.scales),
      rawTensor(`${k}/zero_point`, [layer.filters], INT8, new Uint8Array(layer.filters)),
      rawTensor(`${b}/q`, [layer.filters], INT32, bytesOf(bq.q)),
      initializer(`${b}/scale`, [layer.filters], bq.scales),
      rawTensor(`${b}/zero_point`, [layer.filters], INT32, new Uint8Array(layer.filters * 4)),
    );
    const perChannel = [{ name: 'axis', int: 0 }];
    nodes.push(
      node(
        'DequantizeLinear',
        `${k}/dequantize`,
        [`${k}/q`, `${k}/scale`, `${k}/zero_point`],
        [k],
        perChannel,
      ),
      node(
        'DequantizeLinear',
        `${b}/dequantize`,
        [`${b}/q`, `${b}/scale`, `${b}/zero_point`],
        [b],
        perChannel,
      ),
      node('Conv', layer.name, [x, k, b], [`${layer.name}/conv`], CONV_ATTRIBUTES),
    );
    const outParams = uint8Params(0, ranges.relu[layer.name] ?? 0);
    inits.push(...scalarQuantInits(layer.name, outParams));
    const params = [`${layer.name}/scale`, `${layer.name}/zero_point`];
    let q = `${layer.name}/q`;
    nodes.push(node('QuantizeLinear', `${layer.name}/quantize`, [`${layer.name}/conv`, ...params], [q]));
    const next = VGG16_CONV_LAYERS[index + 1];
    if (next === undefined || blockOf(next.name) !== blockOf(layer.name)) {
      const pool = `${blockOf(layer.name)}_pool`;
      // Max commutes with a monotonic quantization: pooling the uint8 codes is exact.
      nodes.push(node('MaxPool', pool, [q], [`${pool}/q`], POOL_ATTRIBUTES));
      q = `${pool}/q`;
    }
    const dq = `${q.slice(0, -2)}/dq`;
    nodes.push(node('DequantizeLinear', `${dq}/dequantize`, [q, ...params], [dq]));
    x = dq;
    inParams = outParams;
  });

  const dims = pushFeatureOutput(nodes, x, opts.pooling, h, w);
  return { nodes, inits, dims };
}

/**
 * Serializes the int8 VGG16 base (see `vgg16Int8GraphParts`) as an ONNX model with the same
 * input and output as `buildVgg16Onnx`'s fp32 graph; ~15 MB (a quarter of fp32).
 *
 * @example
 * const ranges = await calibrateVgg16(weights, { inputSize: [150, 150], pooling: 'flatten' });
 * const bytes = buildVgg16Int8Onnx(weights, { inputSize: [150, 150], pooling: 'flatten' }, ranges);
 */
export function buildVgg16Int8Onnx(
  weights: readonly NamedWeight[],
  opts: BuildVgg16OnnxOptions,
  ranges: ActivationRanges,
): Uint8Array {
  const { nodes, inits, dims } = vgg16Int8GraphParts(weights, opts, ranges);
  const [h, w] = opts.inputSize;
  const batch: number | string =
    opts.batch === undefined || opts.batch === 'dynamic' ? ONNX_BATCH_DIM : opts.batch;
  const graph = new ProtoMessage();
  for (const n of nodes) graph.message(F.graph.node, n);
  graph.string(F.graph.name, `vgg16_int8_${opts.pooling}_${h}x${w}`);
  for (const i of inits) graph.message(F.graph.initializer, i);
  graph.message(F.graph.input, valueInfo(ONNX_INPUT_NAME, [batch, h, w, 3]));
  graph.message(F.graph.output, valueInfo(ONNX_OUTPUT_NAME, [batch, dims]));
  return modelProto(graph, 'VGG16 convolutional base, int8 (QDQ, per-channel weights) for tlearn');
}
