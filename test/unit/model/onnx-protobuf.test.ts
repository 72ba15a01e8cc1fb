import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ValidationError, WeightsError } from '../../../lib/errors.ts';
import { encodeVarint, ProtoMessage } from '../../../lib/model/onnx/protobuf.ts';
import {
  buildVgg16Onnx,
  kerasKernelToOnnx,
  ONNX_INPUT_NAME,
  ONNX_OUTPUT_NAME,
} from '../../../lib/model/onnx/vgg16-onnx.ts';
import { randomWeights } from '../../../lib/model/weights.ts';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('protobuf writer', () => {
  it('encodes varints like the protobuf reference (1, 150, 300, 2^32, -1)', () => {
    expect(hex(encodeVarint(1))).toBe('01');
    expect(hex(encodeVarint(150))).toBe('9601');
    expect(hex(encodeVarint(300))).toBe('ac02');
    // 2^32 does not fit 32-bit bitwise arithmetic: five 7-bit groups.
    expect(hex(encodeVarint(2 ** 32))).toBe('8080808010');
    // Negative int64 = 10-byte two's complement.
    expect(hex(encodeVarint(-1))).toBe('ffffffffffffffffff01');
    expect(hex(encodeVarint(-2n))).toBe('feffffffffffffffff01');
  });

  it('writes the encoding guide examples: int, string and nested message fields', () => {
    // https://protobuf.dev/programming-guides/encoding/: Test1 {a = 150}, Test2 {b = "testing"}, Test3 {c = Test1}.
    expect(hex(new ProtoMessage().int(1, 150).finish())).toBe('089601');
    expect(hex(new ProtoMessage().string(2, 'testing').finish())).toBe('120774657374696e67');
    const inner = new ProtoMessage().int(1, 150);
    expect(hex(new ProtoMessage().message(3, inner).finish())).toBe('1a03089601');
  });

  it('writes floats as little-endian fixed32 and packed floats as one length-delimited run', () => {
    expect(hex(new ProtoMessage().float(2, 1.5).finish())).toBe('150000c03f');
    const packed = new ProtoMessage().packedFloats(4, new Float32Array([1, -2])).finish();
    expect(hex(packed)).toBe('2208' + '0000803f' + '000000c0');
  });

  it('writes repeated int64 unpacked (one tag per value) and tracks its byte length', () => {
    const m = new ProtoMessage().ints(8, [3, 300]);
    expect(hex(m.finish())).toBe('4003' + '40ac02');
    expect(m.byteLength).toBe(5);
  });

  it('rejects field numbers outside 1..2^29-1 and non-integer varints', () => {
    expect(() => new ProtoMessage().int(0, 1)).toThrow(RangeError);
    expect(() => encodeVarint(1.5)).toThrow(RangeError);
  });
});

describe('kerasKernelToOnnx', () => {
  it('moves every value of [kh, kw, in, out] to [out, in, kh, kw]', () => {
    // Prepare: a kernel whose values encode their own Keras index.
    const [kh, kw, cin, cout] = [3, 2, 5, 37]; // 37 > one 32-wide tile, odd sizes on purpose
    const keras = Float32Array.from({ length: kh * kw * cin * cout }, (_, i) => i);
    // Act
    const onnx = kerasKernelToOnnx(keras, [kh, kw, cin, cout]);
    // Assess
    for (let o = 0; o < cout; o++)
      for (let i = 0; i < cin; i++)
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++) {
            const want = ((y * kw + x) * cin + i) * cout + o;
            expect(onnx[((o * cin + i) * kh + y) * kw + x]).toBe(want);
          }
  });
});

describe('buildVgg16Onnx', () => {
  const weights = randomWeights(3);

  it('makes a model onnxruntime loads, with the input and output names and shapes promised', async () => {
    // Act
    const bytes = buildVgg16Onnx(weights, { inputSize: [32, 48], pooling: 'flatten' });
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    // Assess
    try {
      expect(session.inputNames).toEqual([ONNX_INPUT_NAME]);
      expect(session.outputNames).toEqual([ONNX_OUTPUT_NAME]);
      expect(session.inputMetadata[0]).toMatchObject({ type: 'float32', shape: ['N', 32, 48, 3] });
      expect(session.outputMetadata[0]).toMatchObject({ type: 'float32', shape: ['N', 512] });
      // 14,714,688 float32 parameters + a few kB of graph.
      expect(bytes.byteLength).toBeGreaterThan(14_714_688 * 4);
      expect(bytes.byteLength).toBeLessThan(14_714_688 * 4 + 100_000);
    } finally {
      await session.release();
    }
  });

  it('declares a fixed batch and the pooled width when asked', async () => {
    const bytes = buildVgg16Onnx(weights, { inputSize: [48, 48], pooling: 'max', batch: 2 });
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    try {
      expect(session.inputMetadata[0]).toMatchObject({ shape: [2, 48, 48, 3] });
      expect(session.outputMetadata[0]).toMatchObject({ shape: [2, 512] });
    } finally {
      await session.release();
    }
  });

  it('names the layer whose weight is missing or misshapen', () => {
    const missing = weights.filter((w) => w.name !== 'block4_conv2/bias');
    expect(() => buildVgg16Onnx(missing, { inputSize: [32, 32], pooling: 'avg' })).toThrow(
      /block4_conv2 has no bias/,
    );
    const misshapen = weights.map((w) =>
      w.name === 'block1_conv1/kernel' ? { ...w, shape: [3, 3, 64, 3] } : w,
    );
    expect(() => buildVgg16Onnx(misshapen, { inputSize: [32, 32], pooling: 'avg' })).toThrow(WeightsError);
  });

  it('refuses inputs smaller than 32 pixels and unknown poolings', () => {
    expect(() => buildVgg16Onnx(weights, { inputSize: [31, 64], pooling: 'avg' })).toThrow(ValidationError);
    expect(() =>
      buildVgg16Onnx(weights, { inputSize: [32, 32], pooling: 'sum' as unknown as 'avg' }),
    ).toThrow(ValidationError);
  });
});
