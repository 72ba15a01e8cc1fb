/**
 * The sparse inner loops of the fit as a small WebAssembly module: per row of a CSR matrix, a dot
 * product with the weights and an "axpy" into the gradient. WebAssembly runs these gathers/scatters
 * ~2.5× faster than typed-array JavaScript (no bounds checks, no deoptimization), with the same
 * IEEE float64 arithmetic in the same order, so results do not change.
 *
 * The source is WebAssembly text, sparse-kernel.wat; `npm run build:kernel` compiles it with wabt
 * (a dev dependency) into sparse-kernel-wasm.ts, which is committed, and a unit test checks the two
 * match byte for byte. So production loads a fixed binary and never compiles text.
 *
 * Memory is one shared `WebAssembly.Memory`, so worker threads instantiate the same module on the
 * same memory and read the matrix without copying it. Pointers are byte offsets:
 * `idx` u16 column indices, `val` f32 values, weights / gradients / scratch f64.
 *
 * Exports (p..end is a range of non-zeros, i.e. one row):
 * - `dot1(p, end, idxPtr, valPtr, wPtr) → f64`: Σ val[q]·w[idx[q]], four interleaved accumulators
 *   summed as (a0 + a1) + (a2 + a3), exactly like `lossGradBlock`'s JavaScript loop;
 * - `axpy1(p, end, idxPtr, valPtr, gPtr, r)`: g[idx[q]] += r·val[q];
 * - `dotK(p, end, idxPtr, valPtr, wPtr, K, zPtr)`: z[k] += val[q]·w[idx[q]·K + k] for k < K;
 * - `axpyK(p, end, idxPtr, valPtr, gPtr, K, rPtr)`: g[idx[q]·K + k] += r[k]·val[q]
 *   (both run a version unrolled for K when 3 ≤ K ≤ {@link MAX_UNROLLED_K}, else a loop over K).
 */
import { SPARSE_KERNEL_WASM_BASE64 } from './sparse-kernel-wasm.ts';

/** Outputs up to which `dotK`/`axpyK` are unrolled with the K accumulators in locals (`@each K 3..32` in the .wat). */
export const MAX_UNROLLED_K = 32;

/**
 * Bytes of the module (one module for every K); it imports its memory as `env.mem` (shared, up to
 * 4 GiB). The K argument is kept for callers of the per-K generator this replaced; it is ignored.
 */
export function sparseKernelBytes(_K = 0): Uint8Array {
  return new Uint8Array(Buffer.from(SPARSE_KERNEL_WASM_BASE64, 'base64'));
}

/** The functions of an instance (see the module comment). */
export interface SparseKernel {
  dot1(p: number, end: number, idxPtr: number, valPtr: number, wPtr: number): number;
  axpy1(p: number, end: number, idxPtr: number, valPtr: number, gPtr: number, r: number): void;
  dotK(p: number, end: number, idxPtr: number, valPtr: number, wPtr: number, K: number, zPtr: number): void;
  axpyK(p: number, end: number, idxPtr: number, valPtr: number, gPtr: number, K: number, rPtr: number): void;
}

/** A WebAssembly memory (the parts used here). */
export interface WasmMemory {
  readonly buffer: ArrayBufferLike;
}

/** A compiled WebAssembly module (opaque; it can be posted to worker threads). */
export type WasmModule = object;

// TypeScript's libs declare the WebAssembly JS API only together with the DOM; these are the
// few constructors used here.
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
  Memory: new (descriptor: {
    initial: number;
    maximum: number;
    shared: boolean;
  }) => WasmMemory & { grow(delta: number): number };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: WasmModule | undefined;

/**
 * The compiled module for K outputs: the same module for every K (it dispatches on its K
 * argument), compiled once per process (~33 KB).
 */
export function sparseKernelModule(_K: number): WasmModule {
  compiled ??= new wasm.Module(sparseKernelBytes());
  return compiled;
}

/** WebAssembly pages (64 KiB) a shared memory may have: 4 GiB. */
export const MAX_PAGES = 65536;

/**
 * A shared WebAssembly memory of `pages` 64 KiB pages that can grow in place up to 4 GiB (the
 * address space is reserved, pages are committed as they are used). Throws if it cannot be had.
 */
export function createGrowableSharedMemory(pages: number): WasmMemory & { grow(delta: number): number } {
  return new wasm.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
}

/** Instantiates the kernel for K outputs on a shared memory. */
export function instantiateSparseKernel(memory: WasmMemory, K: number): SparseKernel {
  const instance = new wasm.Instance(sparseKernelModule(K), { env: { mem: memory } });
  return instance.exports as SparseKernel;
}
