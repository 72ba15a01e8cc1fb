/**
 * NumPy `.npy` codec for feature vectors (docs/ARCHITECTURE.md "S3 layout": features are `.npy`
 * v1.0 float32, loadable with `numpy.load`).
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 *
 * ```
 * \x93NUMPY  major minor  HEADER_LEN (u16 LE in v1, u32 LE in v2/v3)  header dict  spaces  \n  data
 * ```
 * The header is padded so magic + length + header is a multiple of 64 bytes (what NumPy writes
 * since 1.17; older readers accept any padding), so the data is 64-byte aligned.
 */
import { ValidationError } from '../errors.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;
const GROWTH_AXIS_MAX_DIGITS = 21;

/** A malformed or unsupported `.npy` file. */
export class NpyFormatError extends ValidationError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'NpyFormat' });
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function shapeLiteral(shape: readonly number[]): string {
  // Python tuple syntax: () for scalars, (n,) for one dimension, (a, b) otherwise.
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/**
 * Encodes a float32 array as `.npy` v1.0 (`'<f4'`, C order). `shape` defaults to 1-D; its product
 * must equal `data.length`. The bytes are what `np.save(f, np.asarray(data, '<f4').reshape(shape))`
 * writes.
 *
 * @example await writeFile('1.jpg.npy', encodeNpy(features))
 */
export function encodeNpy(data: Float32Array, shape: readonly number[] = [data.length]): Uint8Array {
  if (shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new NpyFormatError(`invalid shape [${shape.join(', ')}]`);
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== data.length)
    throw new NpyFormatError(`shape [${shape.join(', ')}] holds ${size} values, data has ${data.length}`);
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeLiteral(shape)}, }`;
  // NumPy (>= 1.23) reserves room for the first dimension to grow to 21 digits, so a file can be
  // appended to in place; reproduced so the bytes match np.save exactly.
  const growth = shape.length > 0 ? GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length : 0;
  // 10 = magic (6) + version (2) + header length (2); +1 for the final '\n'.
  const unpadded = 10 + dict.length + growth + 1;
  const total = Math.ceil(unpadded / ALIGN) * ALIGN;
  const header = `${dict}${' '.repeat(total - 10 - dict.length - 1)}\n`;
  const out = new Uint8Array(total + data.length * 4);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  const view = new DataView(out.buffer);
  view.setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  if (LITTLE_ENDIAN_HOST) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.length * 4), total);
  } else {
    for (let i = 0; i < data.length; i++) view.setFloat32(total + i * 4, data[i] ?? 0, true);
  }
  return out;
}

/** A decoded `.npy` array: values as float32, shape as written. */
export interface NpyArray {
  data: Float32Array;
  shape: number[];
}

const DESCR_RE = /'descr'\s*:\s*'([^']*)'/;
const FORTRAN_RE = /'fortran_order'\s*:\s*(True|False)/;
const SHAPE_RE = /'shape'\s*:\s*\(([^)]*)\)/;

/**
 * Decodes a `.npy` file (versions 1.0, 2.0 and 3.0) holding little-endian float32 (`<f4`) or float64
 * (`<f8`, converted to float32). Anything else (other dtypes, big-endian, Fortran order with more
 * than one dimension, truncated data) throws NpyFormatError saying what was found.
 *
 * @example const { data, shape } = decodeNpy(await readFile('1.jpg.npy'))
 */
export function decodeNpy(buf: Uint8Array): NpyArray {
  if (buf.length < 10 || !MAGIC.every((b, i) => buf[i] === b))
    throw new NpyFormatError('not a .npy file (missing \\x93NUMPY magic)');
  const major = buf[6] ?? 0;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let headerStart: number;
  let headerLen: number;
  if (major === 1) {
    headerStart = 10;
    headerLen = view.getUint16(8, true);
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new NpyFormatError('truncated .npy header');
    headerStart = 12;
    headerLen = view.getUint32(8, true);
  } else {
    throw new NpyFormatError(`unsupported .npy version ${major}.${buf[7] ?? 0} (1.0, 2.0 and 3.0 are read)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > buf.length) throw new NpyFormatError('truncated .npy header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    buf.subarray(headerStart, dataStart),
  );
  const descr = DESCR_RE.exec(header)?.[1];
  const fortran = FORTRAN_RE.exec(header)?.[1];
  const shapeText = SHAPE_RE.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new NpyFormatError(`malformed .npy header: ${JSON.stringify(header.trim().slice(0, 200))}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => Number(s));
  if (shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new NpyFormatError(`malformed .npy shape (${shapeText})`);
  if (fortran === 'True' && shape.filter((d) => d > 1).length > 1)
    throw new NpyFormatError('Fortran-order .npy arrays with more than one dimension are not supported');
  const size = shape.reduce((a, b) => a * b, 1);
  let itemSize: 4 | 8;
  if (descr === '<f4') itemSize = 4;
  else if (descr === '<f8') itemSize = 8;
  else throw new NpyFormatError(`unsupported .npy dtype '${descr}' (expected '<f4' or '<f8')`);
  const needed = size * itemSize;
  if (buf.length - dataStart < needed)
    throw new NpyFormatError(
      `truncated .npy data: shape (${shape.join(', ')}) needs ${needed} bytes, file has ${buf.length - dataStart}`,
    );
  const data = new Float32Array(size);
  if (itemSize === 4 && LITTLE_ENDIAN_HOST) {
    // Copy: the source may be unaligned (a slice of a pooled Buffer) and must not be aliased.
    new Uint8Array(data.buffer).set(buf.subarray(dataStart, dataStart + needed));
  } else {
    for (let i = 0; i < size; i++) {
      data[i] =
        itemSize === 4 ? view.getFloat32(dataStart + i * 4, true) : view.getFloat64(dataStart + i * 8, true);
    }
  }
  return { data, shape };
}
