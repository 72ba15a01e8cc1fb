import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, NpyFormatError } from '../../../lib/features/npy.ts';

// Written by NumPy itself: scripts/fixtures/make-npy.py
const FIXTURES = join(import.meta.dirname, '../../fixtures/npy');
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, name)));

/** arange(n) * 0.25 - 3, the values of the fixtures. */
function fixtureValues(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => i * 0.25 - 3);
}

describe('encodeNpy', () => {
  it('writes the exact bytes np.save writes for a (8192,) float32 vector', () => {
    // prepare
    const want = fixture('f4_8192.npy');

    // act
    const got = encodeNpy(fixtureValues(8192));

    // assess
    const header = Buffer.from(got.subarray(0, 128)).toString('latin1');
    expect(header).toBe(
      `\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (8192,), }${' '.repeat(57)}\n`,
    );
    expect(got.length).toBe(128 + 8192 * 4);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
  });

  it.each<[string, number[], number]>([
    ['f4_2x3.npy', [2, 3], 6],
    ['f4_scalar.npy', [], 1],
    ['f4_empty_13d.npy', [0, ...new Array(12).fill(10)], 0],
  ])('matches NumPy byte for byte for %s', (name, shape, n) => {
    const data = name === 'f4_scalar.npy' ? new Float32Array([1.5]) : fixtureValues(n);
    expect(Buffer.from(encodeNpy(data, shape)).equals(Buffer.from(fixture(name)))).toBe(true);
  });

  it('aligns the data to 64 bytes and ends the header with a newline', () => {
    for (const n of [0, 1, 7, 512, 123_456]) {
      const out = encodeNpy(new Float32Array(n));
      const headerLen = (out[8] ?? 0) + (out[9] ?? 0) * 256;
      expect((10 + headerLen) % 64).toBe(0);
      expect(out[10 + headerLen - 1]).toBe(0x0a);
      expect(out.length).toBe(10 + headerLen + n * 4);
    }
  });

  it('encodes a subarray view without its neighbours', () => {
    const backing = new Float32Array([9, 1, 2, 3, 9]);
    const { data } = decodeNpy(encodeNpy(backing.subarray(1, 4)));
    expect(Array.from(data)).toEqual([1, 2, 3]);
  });

  it('rejects a shape that does not match the data', () => {
    expect(() => encodeNpy(new Float32Array(6), [4, 2])).toThrow(/holds 8 values, data has 6/);
  });
});

describe('decodeNpy', () => {
  it('reads NumPy float32 vectors, matrices and scalars', () => {
    expect(decodeNpy(fixture('f4_8192.npy'))).toEqual({ data: fixtureValues(8192), shape: [8192] });
    expect(decodeNpy(fixture('f4_2x3.npy'))).toEqual({ data: fixtureValues(6), shape: [2, 3] });
    expect(decodeNpy(fixture('f4_scalar.npy'))).toEqual({ data: new Float32Array([1.5]), shape: [] });
  });

  it('reads format version 2.0', () => {
    expect(decodeNpy(fixture('f4_v2.npy'))).toEqual({ data: fixtureValues(4), shape: [4] });
  });

  it('converts float64 to float32', () => {
    const { data, shape } = decodeNpy(fixture('f8_5.npy'));
    expect(data).toBeInstanceOf(Float32Array);
    expect(Array.from(data)).toEqual([-3, -2.75, -2.5, -2.25, -2]);
    expect(shape).toEqual([5]);
  });

  it('reads from an unaligned slice of a larger buffer', () => {
    const file = encodeNpy(new Float32Array([0.5, -1.25, 3]));
    const padded = new Uint8Array(file.length + 3);
    padded.set(file, 3);
    expect(Array.from(decodeNpy(padded.subarray(3)).data)).toEqual([0.5, -1.25, 3]);
  });

  it('round-trips what it encodes', () => {
    const data = Float32Array.from({ length: 512 }, (_, i) => Math.fround(Math.sin(i) * 1e3));
    expect(decodeNpy(encodeNpy(data, [16, 32]))).toEqual({ data, shape: [16, 32] });
  });

  it.each<[string, Uint8Array, RegExp]>([
    ['int32 data', fixture('i4_3.npy'), /unsupported \.npy dtype '<i4'/],
    ['big-endian floats', fixture('f4_big_endian.npy'), /unsupported \.npy dtype '>f4'/],
    ['a Fortran-order matrix', fixture('f4_fortran_2x3.npy'), /Fortran-order/],
    ['a JSON file', new Uint8Array(Buffer.from('{"not": "npy"}')), /missing \\x93NUMPY magic/],
    ['a truncated file', fixture('f4_8192.npy').subarray(0, 1000), /truncated \.npy data/],
    ['a cut header', fixture('f4_8192.npy').subarray(0, 40), /truncated \.npy header/],
  ])('rejects %s with a clear error', (_what, bytes, message) => {
    expect(() => decodeNpy(bytes)).toThrow(NpyFormatError);
    expect(() => decodeNpy(bytes)).toThrow(message);
  });
});
