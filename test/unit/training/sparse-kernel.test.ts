import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../lib/training/split.ts';
import {
  createGrowableSharedMemory,
  instantiateSparseKernel,
  MAX_UNROLLED_K,
  sparseKernelBytes,
} from '../../../lib/training/wasm-kernel.ts';
import {
  compileKernelWat,
  expandKernelTemplate,
  KERNEL_MODULE,
  KERNEL_WAT,
  kernelModuleSource,
  unrolledRange,
} from '../../../scripts/build-sparse-kernel.ts';

const wat = readFileSync(KERNEL_WAT, 'utf8');

/** A CSR row of `nnz` non-zeros over `d` columns, the weights, and scratch, laid out in one memory. */
function setUp(K: number, nnz: number, d: number, seed: number) {
  const rand = mulberry32(seed);
  const memory = createGrowableSharedMemory(4);
  const buf = memory.buffer as SharedArrayBuffer;
  const wPtr = 0;
  const zPtr = wPtr + d * K * 8;
  const valPtr = zPtr + K * 8;
  const idxPtr = valPtr + nnz * 4;
  const w = new Float64Array(buf, wPtr, d * K);
  const z = new Float64Array(buf, zPtr, K);
  const val = new Float32Array(buf, valPtr, nnz);
  const idx = new Uint16Array(buf, idxPtr, nnz);
  for (let i = 0; i < w.length; i++) w[i] = rand() - 0.5;
  for (let k = 0; k < K; k++) z[k] = rand();
  for (let q = 0; q < nnz; q++) {
    val[q] = 4 * rand();
    idx[q] = Math.floor(rand() * d);
  }
  return { kernel: instantiateSparseKernel(memory, K), w, z, val, idx, wPtr, zPtr, valPtr, idxPtr };
}

describe('the sparse fit kernel', () => {
  it('is what sparse-kernel.wat compiles to, byte for byte', async () => {
    const bytes = await compileKernelWat(wat);

    expect(Buffer.from(sparseKernelBytes()).equals(Buffer.from(bytes))).toBe(true);
    expect(readFileSync(KERNEL_MODULE, 'utf8')).toBe(kernelModuleSource(bytes));
  });

  it('unrolls for the K range the code announces', () => {
    expect(unrolledRange(wat)).toEqual([3, MAX_UNROLLED_K]);
    const plain = expandKernelTemplate(wat);
    expect(plain).toContain(`(func $dotK${MAX_UNROLLED_K} `);
    const code = plain.replace(/;;.*$/gm, '');
    expect(code).not.toMatch(/[{}]/);
  });

  it('sums a row with four interleaved accumulators, as the JavaScript loop does', () => {
    const { kernel, w, val, idx, wPtr, valPtr, idxPtr } = setUp(1, 203, 500, 1);
    const a = [0, 0, 0, 0];
    let q = 0;
    for (; q + 4 <= 203; q += 4)
      for (let j = 0; j < 4; j++)
        a[j] = (a[j] as number) + (val[q + j] as number) * (w[idx[q + j] as number] as number);
    for (; q < 203; q++) a[0] = (a[0] as number) + (val[q] as number) * (w[idx[q] as number] as number);
    const expected = (a[0] as number) + (a[1] as number) + ((a[2] as number) + (a[3] as number));

    expect(kernel.dot1(0, 203, idxPtr, valPtr, wPtr)).toBe(expected);
  });

  it.each([2, 3, 5, MAX_UNROLLED_K, MAX_UNROLLED_K + 1, 70])(
    'gives exactly the plain loop’s dot products and gradient updates for %i outputs',
    (K) => {
      const { kernel, w, z, val, idx, wPtr, zPtr, valPtr, idxPtr } = setUp(K, 97, 300, K);
      const zWant = Float64Array.from(z);
      for (let q = 10; q < 97; q++)
        for (let k = 0; k < K; k++)
          zWant[k] = (zWant[k] as number) + (val[q] as number) * (w[(idx[q] as number) * K + k] as number);
      kernel.dotK(10, 97, idxPtr, valPtr, wPtr, K, zPtr);
      expect(Array.from(z)).toEqual(Array.from(zWant));

      // axpyK: the weights array doubles as the gradient, z as the residuals.
      const gWant = Float64Array.from(w);
      for (let q = 0; q < 50; q++)
        for (let k = 0; k < K; k++) {
          const at = (idx[q] as number) * K + k;
          gWant[at] = (gWant[at] as number) + (z[k] as number) * (val[q] as number);
        }
      kernel.axpyK(0, 50, idxPtr, valPtr, wPtr, K, zPtr);
      expect(Array.from(w)).toEqual(Array.from(gWant));
    },
  );
});
