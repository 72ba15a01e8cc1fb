/**
 * A minimal protocol-buffers *writer*: just what serializing an ONNX model needs (varints,
 * length-delimited bytes / strings / nested messages, fixed32 floats, packed floats).
 * No reader and no schema: callers write field numbers themselves (see `vgg16-onnx.ts`).
 *
 * A message is kept as a list of byte chunks and only concatenated once by `finish()`, so the
 * ~59 MB of VGG16 weights nested three levels deep (tensor → graph → model) are copied once,
 * not once per level.
 */

/** Protobuf wire types (https://protobuf.dev/programming-guides/encoding/#structure). */
export const WireType = {
  VARINT: 0,
  FIXED64: 1,
  LENGTH_DELIMITED: 2,
  FIXED32: 5,
} as const;

const TWO_POW_32 = 2 ** 32;

/**
 * Encodes an integer as a base-128 varint. Negative values are written as 10-byte two's
 * complement 64-bit values, as protobuf does for `int32`/`int64` fields.
 */
export function encodeVarint(value: number | bigint): Uint8Array {
  if (typeof value === 'number' && (!Number.isSafeInteger(value) || value < 0)) {
    if (!Number.isInteger(value)) throw new RangeError(`varint needs an integer, got ${value}`);
    return encodeVarint(BigInt(value));
  }
  if (typeof value === 'bigint') {
    let v = BigInt.asUintN(64, value);
    if (v !== value && value >= 0n) throw new RangeError(`varint ${value} does not fit in 64 bits`);
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    return Uint8Array.from(out);
  }
  // Fast path for non-negative safe integers (every tag, length and dimension we write).
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    // `% 128` rather than `& 0x7f`: bitwise ops truncate to 32 bits, lengths may exceed that.
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

function tag(field: number, wire: number): Uint8Array {
  if (!Number.isInteger(field) || field < 1 || field >= 2 ** 29) {
    throw new RangeError(`protobuf field number must be 1..2^29-1, got ${field}`);
  }
  return encodeVarint(field * 8 + wire);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Little-endian IEEE-754 bytes of a float32 array. On little-endian hosts (every platform Node
 * runs Lambda on) this is a view of the same memory, not a copy.
 */
export function float32LeBytes(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true);
  return out;
}

const utf8 = new TextEncoder();

/**
 * A protobuf message under construction. Methods append one field and return `this`, so a
 * message reads like its schema:
 *
 * @example
 * const opset = new ProtoMessage().string(1, '').int(2, 17); // OperatorSetIdProto
 * const bytes = new ProtoMessage().int(1, 8).message(8, opset).finish();
 */
export class ProtoMessage {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  /** Encoded size in bytes so far. */
  get byteLength(): number {
    return this.length;
  }

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.byteLength;
  }

  /** A varint field (`int32`, `int64`, `uint64`, `bool`, enums). */
  int(field: number, value: number | bigint): this {
    this.push(tag(field, WireType.VARINT));
    this.push(encodeVarint(value));
    return this;
  }

  /**
   * A `repeated int64` field written *unpacked* (one tag per value), as proto2 declares ONNX's
   * `dims` and `ints` (no `[packed = true]`); parsers accept both forms, writers should use this one.
   */
  ints(field: number, values: Iterable<number | bigint>): this {
    for (const v of values) this.int(field, v);
    return this;
  }

  /** A `float` field (fixed32, little-endian). */
  float(field: number, value: number): this {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.push(tag(field, WireType.FIXED32));
    this.push(bytes);
    return this;
  }

  /** A length-delimited `bytes` field. The bytes are referenced, not copied, until `finish()`. */
  bytes(field: number, value: Uint8Array): this {
    this.push(tag(field, WireType.LENGTH_DELIMITED));
    this.push(encodeVarint(value.byteLength));
    this.push(value);
    return this;
  }

  /** A `string` field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** A `repeated float` field with `[packed = true]`: one length-delimited run of float32 LE. */
  packedFloats(field: number, values: Float32Array): this {
    return this.bytes(field, float32LeBytes(values));
  }

  /** A nested message field. The nested message's chunks are shared, not copied. */
  message(field: number, value: ProtoMessage): this {
    this.push(tag(field, WireType.LENGTH_DELIMITED));
    this.push(encodeVarint(value.length));
    for (const c of value.chunks) this.chunks.push(c);
    this.length += value.length;
    return this;
  }

  /** The serialized message as one contiguous buffer (the only full copy). */
  finish(): Uint8Array {
    if (this.length >= TWO_POW_32 / 2) {
      // protobuf's own parsers refuse messages of 2 GiB or more.
      throw new RangeError(`protobuf message of ${this.length} bytes exceeds the 2 GiB limit`);
    }
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.byteLength;
    }
    return out;
  }
}
