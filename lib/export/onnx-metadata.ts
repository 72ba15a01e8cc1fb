import { ValidationError } from '../errors.ts';
import { F } from '../model/onnx/onnx-fields.ts';

function readVarint(bytes: Uint8Array, start: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  let pos = start;
  for (;;) {
    const b = bytes[pos];
    if (b === undefined) throw new ValidationError('not an ONNX model: truncated varint');
    pos++;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return { value, next: pos };
    scale *= 128;
    if (scale > 2 ** 63) throw new ValidationError('not an ONNX model: varint too long');
  }
}

/** The length-delimited fields of one message level, as `[field, start, end]` (other wire types skipped). */
function* fields(bytes: Uint8Array, start: number, end: number): Generator<[number, number, number]> {
  let pos = start;
  while (pos < end) {
    const tag = readVarint(bytes, pos);
    pos = tag.next;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    if (wire === 0) pos = readVarint(bytes, pos).next;
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = readVarint(bytes, pos);
      const from = len.next;
      pos = from + len.value;
      if (pos > end) throw new ValidationError('not an ONNX model: a field runs past the end');
      yield [field, from, pos];
    } else throw new ValidationError(`not an ONNX model: wire type ${wire}`);
  }
}

/**
 * The `metadata_props` of a serialized ONNX ModelProto (key → value), read without parsing the
 * graph: enough to show what an exported file is (`tlearn export` prints its classes and version).
 */
export function readOnnxMetadata(bytes: Uint8Array): Record<string, string> {
  const text = new TextDecoder();
  const out: Record<string, string> = {};
  for (const [field, from, to] of fields(bytes, 0, bytes.length)) {
    if (field !== F.model.metadataProps) continue;
    let key = '';
    let value = '';
    for (const [f, a, b] of fields(bytes, from, to)) {
      if (f === F.stringEntry.key) key = text.decode(bytes.subarray(a, b));
      if (f === F.stringEntry.value) value = text.decode(bytes.subarray(a, b));
    }
    out[key] = value;
  }
  return out;
}
