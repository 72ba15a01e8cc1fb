/**
 * The one-file ONNX export of a trained model: caffe preprocessing + VGG16 base +
 * flatten/pool + the logistic head + softmax in one graph, so the model runs anywhere
 * onnxruntime does and gives the API's probabilities.
 */
import { SpecMismatchError, ValidationError } from '../errors.ts';
import { CAFFE_MEAN_BGR } from '../images/preprocess.ts';
import { ProtoMessage } from '../model/onnx/protobuf.ts';
import {
  DOUBLE,
  F,
  FLOAT,
  INT64,
  modelProto,
  node,
  ONNX_BATCH_DIM,
  ONNX_INPUT_NAME,
  ONNX_OUTPUT_NAME,
  valueInfo,
  vgg16GraphParts,
} from '../model/onnx/vgg16-onnx.ts';
import { parseSpec } from '../model/spec.ts';
import type { NamedWeight } from '../model/weights.ts';
import type { ModelDocument } from '../training/model-document.ts';

/** Name of the export's input: float32 `[N, h, w, 3]`, RGB, 0-255, already resized. */
export const EXPORT_INPUT_NAME = 'image';
/** Name of the export's output: float32 `[N, classes]`, in `tlearn.classes` order. */
export const EXPORT_OUTPUT_NAME = 'probabilities';
/** Prefix of every `metadata_props` key the export writes. */
export const EXPORT_METADATA_PREFIX = 'tlearn.';

/** Input of {@link buildModelOnnx}. */
export interface ExportModelInput {
  /** The 26 VGG16 tensors the model's features were computed with. */
  weights: readonly NamedWeight[];
  /** Id of `weights` (`loadWeights().weightsId`); must be the model spec's weights id. */
  weightsId: string;
  /** The trained head (`model.json`). */
  model: ModelDocument;
  dataset?: string;
  version?: string;
}

/** What a consumer must feed the exported model; stored as `tlearn.input` metadata. */
export function inputContract(spec: string): Record<string, unknown> {
  const s = parseSpec(spec);
  return {
    name: EXPORT_INPUT_NAME,
    dtype: 'float32',
    shape: [ONNX_BATCH_DIM, s.input[0], s.input[1], 3],
    layout: 'NHWC',
    channels: 'RGB',
    range: [0, 255],
    resize: `${s.input[0]}x${s.input[1]} with ${s.resize} interpolation, aspect not kept (fit: fill), after EXIF rotation, alpha flattened onto black`,
    preprocessing: 'inside the model (Keras vgg16.preprocess_input, caffe: RGB→BGR, minus ImageNet means)',
    output: { name: EXPORT_OUTPUT_NAME, dtype: 'float32', shape: [ONNX_BATCH_DIM, 'classes'] },
  };
}

function tensor(name: string, type: number, dims: number[], raw: Uint8Array): ProtoMessage {
  return new ProtoMessage()
    .ints(F.tensor.dims, dims)
    .int(F.tensor.dataType, type)
    .string(F.tensor.name, name)
    .bytes(F.tensor.rawData, raw);
}

function float64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    view.setFloat64(i * 8, v, true);
  });
  return out;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    view.setBigInt64(i * 8, BigInt(v), true);
  });
  return out;
}

function float32Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    view.setFloat32(i * 4, v, true);
  });
  return out;
}

/**
 * The head as softmax weights `[K][d]` + `[K]`: a binary head (one row, sigmoid) becomes
 * `[0…0; w]`, `[0, b]`, since softmax([0, z]) = [1 − σ(z), σ(z)], scikit-learn's `predict_proba`.
 */
function softmaxRows(model: ModelDocument): { W: number[][]; b: number[] } {
  if (model.classes.length === 2) {
    const w = model.coef[0] ?? [];
    return { W: [new Array<number>(w.length).fill(0), w], b: [0, model.intercept[0] ?? 0] };
  }
  return { W: model.coef, b: model.intercept };
}

/**
 * Serializes a trained model as one ONNX file (IR 8, opset 17):
 *
 * `image` float32 `[N, h, w, 3]` RGB 0-255 → Gather channels [2, 1, 0] (RGB → BGR) → Sub the
 * ImageNet means (float32, as Keras does) → VGG16 base (`vgg16GraphParts`) → `features` →
 * Cast to float64 → Gemm with the head (float64, like the API's head) → Softmax → Cast to
 * float32 → `probabilities` `[N, K]`.
 *
 * The head runs in float64 so the export agrees with the API (which evaluates the head in
 * JavaScript doubles) to float32 rounding. `metadata_props`: `tlearn.classes` (JSON array),
 * `tlearn.spec`, `tlearn.dataset`, `tlearn.version`, `tlearn.input` (the input contract as
 * JSON), `tlearn.trainedAt`, and `tlearn.thresholds` when the model has them.
 *
 * @throws SpecMismatchError when `weightsId` is not the weights of the model's spec
 * @example
 * const bytes = buildModelOnnx({ weights: loaded.weights, weightsId: loaded.weightsId, model: doc });
 * await writeFile('model.onnx', bytes);
 */
export function buildModelOnnx(input: ExportModelInput): Uint8Array {
  const { model } = input;
  const spec = parseSpec(model.spec);
  if (spec.weights !== input.weightsId) {
    throw new SpecMismatchError(
      `the model was trained on features of weights ${spec.weights}, but the weights at hand are ${input.weightsId}; export it where the base model of its spec is loaded`,
    );
  }
  const [h, w] = spec.input;
  const vgg = vgg16GraphParts(input.weights, { inputSize: [h, w], pooling: spec.pooling });
  const K = model.classes.length;
  const { W, b } = softmaxRows(model);
  if (W.some((row) => row.length !== vgg.dims)) {
    throw new ValidationError(`the head expects ${W[0]?.length} features, the spec gives ${vgg.dims}`);
  }

  const nodes: ProtoMessage[] = [
    node(
      'Gather',
      'rgb_to_bgr',
      [EXPORT_INPUT_NAME, 'preprocess/bgr_index'],
      ['image_bgr'],
      [{ name: 'axis', int: 3 }],
    ),
    node('Sub', 'caffe_mean', ['image_bgr', 'preprocess/mean_bgr'], [ONNX_INPUT_NAME]),
    ...vgg.nodes,
    node('Cast', 'features_f64', [ONNX_OUTPUT_NAME], ['features_f64'], [{ name: 'to', int: DOUBLE }]),
    node(
      'Gemm',
      'head',
      ['features_f64', 'head/coef', 'head/intercept'],
      ['logits'],
      [{ name: 'transB', int: 1 }],
    ),
    node('Softmax', 'softmax', ['logits'], ['probabilities_f64'], [{ name: 'axis', int: 1 }]),
    node(
      'Cast',
      'probabilities_f32',
      ['probabilities_f64'],
      [EXPORT_OUTPUT_NAME],
      [{ name: 'to', int: FLOAT }],
    ),
  ];
  const inits: ProtoMessage[] = [
    tensor('preprocess/bgr_index', INT64, [3], int64Bytes([2, 1, 0])),
    tensor('preprocess/mean_bgr', FLOAT, [3], float32Bytes([...CAFFE_MEAN_BGR])),
    ...vgg.inits,
    tensor('head/coef', DOUBLE, [K, vgg.dims], float64Bytes(W.flat())),
    tensor('head/intercept', DOUBLE, [K], float64Bytes(b)),
  ];

  const graph = new ProtoMessage();
  for (const n of nodes) graph.message(F.graph.node, n);
  graph.string(F.graph.name, `tlearn_${input.dataset ?? 'model'}`);
  for (const i of inits) graph.message(F.graph.initializer, i);
  graph.message(F.graph.input, valueInfo(EXPORT_INPUT_NAME, [ONNX_BATCH_DIM, h, w, 3]));
  graph.message(F.graph.output, valueInfo(EXPORT_OUTPUT_NAME, [ONNX_BATCH_DIM, K]));

  const p = EXPORT_METADATA_PREFIX;
  const metadata: Record<string, string> = {
    [`${p}classes`]: JSON.stringify(model.classes),
    [`${p}spec`]: model.spec,
    [`${p}input`]: JSON.stringify(inputContract(model.spec)),
    [`${p}trainedAt`]: model.trainedAt,
  };
  const dataset = input.dataset ?? model.dataset;
  const version = input.version ?? model.version;
  if (dataset !== undefined) metadata[`${p}dataset`] = dataset;
  if (version !== undefined) metadata[`${p}version`] = version;
  const thresholds = (model as { thresholds?: unknown }).thresholds;
  if (thresholds !== undefined) metadata[`${p}thresholds`] = JSON.stringify(thresholds);
  return modelProto(
    graph,
    `tlearn classifier${dataset ? ` of dataset '${dataset}'` : ''}: VGG16 features + logistic regression, RGB 0-255 in, probabilities out`,
    metadata,
  );
}
