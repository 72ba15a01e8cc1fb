/**
 * ONNX protobuf field numbers (onnx.proto3) used by the writer (vgg16-onnx.ts, export/) and the
 * metadata reader (export/onnx-metadata.ts). Its own module, free of Node imports, so the browser
 * bundle of the console's "Run in this browser" can read an export's metadata too.
 */
/**
 * Field numbers of onnx/onnx.proto (proto2, package `onnx`) used below. Checked against the
 * upstream file; only the fields this writer emits are listed.
 */
export const F = {
  model: {
    irVersion: 1,
    producerName: 2,
    producerVersion: 3,
    docString: 6,
    graph: 7,
    opsetImport: 8,
    metadataProps: 14,
  },
  stringEntry: { key: 1, value: 2 },
  opset: { domain: 1, version: 2 },
  graph: { node: 1, name: 2, initializer: 5, input: 11, output: 12 },
  node: { input: 1, output: 2, name: 3, opType: 4, attribute: 5 },
  attribute: { name: 1, i: 3, ints: 8, type: 20 },
  tensor: { dims: 1, dataType: 2, name: 8, rawData: 9 },
  valueInfo: { name: 1, type: 2 },
  type: { tensorType: 1 },
  typeTensor: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dimension: { dimValue: 1, dimParam: 2 },
} as const;
