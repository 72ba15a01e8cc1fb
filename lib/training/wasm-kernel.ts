/**
 * The sparse inner loops of the fit as a tiny WebAssembly module, emitted byte by byte here (no
 * toolchain, nothing downloaded): per row of a CSR matrix, a dot product with the weights and an
 * "axpy" into the gradient. WebAssembly runs these gathers/scatters ~2.5× faster than typed-array
 * JavaScript (no bounds checks, no deoptimization), with the same IEEE float64 arithmetic in the
 * same order, so results do not change.
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
 *   (both unrolled for the K the module was made for, see {@link sparseKernelBytes}).
 */

// LEB128 encodings and vectors of the binary format.
function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, bytes: number[]): number[] {
  return [id, ...uleb(bytes.length), ...bytes];
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...uleb(bytes.length), ...bytes];
}

const I32 = 0x7f;
const F64 = 0x7c;
const OP = {
  get: 0x20,
  set: 0x21,
  tee: 0x22,
  i32const: 0x41,
  i32add: 0x6a,
  i32mul: 0x6c,
  i32shl: 0x74,
  i32gtu: 0x4b,
  i32geu: 0x4f,
  f64add: 0xa0,
  f64mul: 0xa2,
  promote: 0xbb,
  load16u: 0x2f,
  f32load: 0x2a,
  f64load: 0x2b,
  f64store: 0x39,
  block: 0x02,
  loop: 0x03,
  brIf: 0x0d,
  br: 0x0c,
  end: 0x0b,
  void: 0x40,
} as const;

/** A function body under construction: locals are numbered after the parameters. */
class Body {
  readonly b: number[] = [];
  get(i: number): this {
    this.b.push(OP.get, ...uleb(i));
    return this;
  }
  set(i: number): this {
    this.b.push(OP.set, ...uleb(i));
    return this;
  }
  tee(i: number): this {
    this.b.push(OP.tee, ...uleb(i));
    return this;
  }
  i32(n: number): this {
    this.b.push(OP.i32const, ...sleb(n));
    return this;
  }
  op(...codes: number[]): this {
    this.b.push(...codes);
    return this;
  }
  /** Memory access with alignment exponent and constant offset. */
  mem(code: number, align: number, offset: number): this {
    this.b.push(code, ...uleb(align), ...uleb(offset));
    return this;
  }
  /** local[i] += by (i32). */
  inc(i: number, by: number): this {
    return this.get(i).i32(by).op(OP.i32add).set(i);
  }
  /** Encodes the body with its local declarations: `[count, type]` groups. */
  encode(locals: [number, number][]): number[] {
    const decl = vec(locals.map(([n, t]) => [...uleb(n), t]));
    const body = [...decl, ...this.b, OP.end];
    return [...uleb(body.length), ...body];
  }
}

// dot1(p 0, end 1, idxPtr 2, valPtr 3, wPtr 4) → f64; locals ip 5, vp 6, a0..a3 7..10
function dot1(): number[] {
  const f = new Body();
  f.get(2).get(0).i32(1).op(OP.i32shl, OP.i32add).set(5);
  f.get(3).get(0).i32(2).op(OP.i32shl, OP.i32add).set(6);
  // Four at a time while p + 4 <= end.
  f.op(OP.block, OP.void, OP.loop, OP.void);
  f.get(0).i32(4).op(OP.i32add).get(1).op(OP.i32gtu, OP.brIf, 1);
  for (let k = 0; k < 4; k++) {
    f.get(7 + k);
    f.get(6)
      .mem(OP.f32load, 2, 4 * k)
      .op(OP.promote);
    f.get(4)
      .get(5)
      .mem(OP.load16u, 1, 2 * k)
      .i32(3)
      .op(OP.i32shl, OP.i32add)
      .mem(OP.f64load, 3, 0);
    f.op(OP.f64mul, OP.f64add).set(7 + k);
  }
  f.inc(0, 4).inc(5, 8).inc(6, 16);
  f.op(OP.br, 0, OP.end, OP.end);
  // The rest into a0.
  f.op(OP.block, OP.void, OP.loop, OP.void);
  f.get(0).get(1).op(OP.i32geu, OP.brIf, 1);
  f.get(7);
  f.get(6).mem(OP.f32load, 2, 0).op(OP.promote);
  f.get(4).get(5).mem(OP.load16u, 1, 0).i32(3).op(OP.i32shl, OP.i32add).mem(OP.f64load, 3, 0);
  f.op(OP.f64mul, OP.f64add).set(7);
  f.inc(0, 1).inc(5, 2).inc(6, 4);
  f.op(OP.br, 0, OP.end, OP.end);
  f.get(7).get(8).op(OP.f64add).get(9).get(10).op(OP.f64add, OP.f64add);
  return f.encode([
    [2, I32],
    [4, F64],
  ]);
}

// axpy1(p 0, end 1, idxPtr 2, valPtr 3, gPtr 4, r 5: f64); locals ip 6, vp 7, addr 8
function axpy1(): number[] {
  const f = new Body();
  f.get(2).get(0).i32(1).op(OP.i32shl, OP.i32add).set(6);
  f.get(3).get(0).i32(2).op(OP.i32shl, OP.i32add).set(7);
  f.op(OP.block, OP.void, OP.loop, OP.void);
  f.get(0).get(1).op(OP.i32geu, OP.brIf, 1);
  f.get(4).get(6).mem(OP.load16u, 1, 0).i32(3).op(OP.i32shl, OP.i32add).tee(8);
  f.get(8).mem(OP.f64load, 3, 0);
  f.get(5).get(7).mem(OP.f32load, 2, 0).op(OP.promote, OP.f64mul, OP.f64add);
  f.mem(OP.f64store, 3, 0);
  f.inc(0, 1).inc(6, 2).inc(7, 4);
  f.op(OP.br, 0, OP.end, OP.end);
  return f.encode([[3, I32]]);
}

// dotK(p 0, end 1, idxPtr 2, valPtr 3, wPtr 4, K 5, zPtr 6); locals ip 7, vp 8, base 9, k 10, v 11: f64
// axpyK has the same shape with gPtr at 4 and rPtr at 6: g[idx·K + k] += r[k]·v.
function rowK(isAxpy: boolean): number[] {
  const f = new Body();
  f.get(2).get(0).i32(1).op(OP.i32shl, OP.i32add).set(7);
  f.get(3).get(0).i32(2).op(OP.i32shl, OP.i32add).set(8);
  f.op(OP.block, OP.void, OP.loop, OP.void);
  f.get(0).get(1).op(OP.i32geu, OP.brIf, 1);
  f.get(8).mem(OP.f32load, 2, 0).op(OP.promote).set(11);
  // base = ptr4 + idx·K·8
  f.get(4).get(7).mem(OP.load16u, 1, 0).get(5).op(OP.i32mul).i32(3).op(OP.i32shl, OP.i32add).set(9);
  f.i32(0).set(10);
  f.op(OP.block, OP.void, OP.loop, OP.void);
  f.get(10).get(5).op(OP.i32geu, OP.brIf, 1);
  if (isAxpy) {
    // g[base + 8k] += r[k]·v
    f.get(9).get(10).i32(3).op(OP.i32shl, OP.i32add).tee(12);
    f.get(12).mem(OP.f64load, 3, 0);
    f.get(6).get(10).i32(3).op(OP.i32shl, OP.i32add).mem(OP.f64load, 3, 0).get(11).op(OP.f64mul, OP.f64add);
    f.mem(OP.f64store, 3, 0);
  } else {
    // z[k] += v·w[base + 8k]
    f.get(6).get(10).i32(3).op(OP.i32shl, OP.i32add).tee(12);
    f.get(12).mem(OP.f64load, 3, 0);
    f.get(11).get(9).get(10).i32(3).op(OP.i32shl, OP.i32add).mem(OP.f64load, 3, 0).op(OP.f64mul, OP.f64add);
    f.mem(OP.f64store, 3, 0);
  }
  f.inc(10, 1);
  f.op(OP.br, 0, OP.end, OP.end);
  f.inc(0, 1).inc(7, 2).inc(8, 4);
  f.op(OP.br, 0, OP.end, OP.end);
  return f.encode([
    [4, I32],
    [1, F64],
    [1, I32],
  ]);
}

/** Outputs up to which `dotK`/`axpyK` are unrolled with the K accumulators in locals. */
export const MAX_UNROLLED_K = 32;

// Unrolled for a fixed K: the K running sums (dotK) or residuals (axpyK) live in locals instead
// of memory, and the K weights of a feature are read at constant offsets. Same operations in
// the same order as the loop version. Params as rowK; locals ip 7, vp 8, base 9, v 10: f64,
// acc 11..11+K-1: f64.
function rowKUnrolled(K: number, isAxpy: boolean): number[] {
  const f = new Body();
  const acc = (k: number) => 11 + k;
  f.get(2).get(0).i32(1).op(OP.i32shl, OP.i32add).set(7);
  f.get(3).get(0).i32(2).op(OP.i32shl, OP.i32add).set(8);
  for (let k = 0; k < K; k++)
    f.get(6)
      .mem(OP.f64load, 3, 8 * k)
      .set(acc(k));
  f.op(OP.block, OP.void, OP.loop, OP.void);
  f.get(0).get(1).op(OP.i32geu, OP.brIf, 1);
  f.get(8).mem(OP.f32load, 2, 0).op(OP.promote).set(10);
  f.get(4)
    .get(7)
    .mem(OP.load16u, 1, 0)
    .i32(K * 8)
    .op(OP.i32mul, OP.i32add)
    .set(9);
  for (let k = 0; k < K; k++) {
    if (isAxpy) {
      // g[base + 8k] = g[base + 8k] + r_k·v
      f.get(9);
      f.get(9).mem(OP.f64load, 3, 8 * k);
      f.get(acc(k)).get(10).op(OP.f64mul, OP.f64add);
      f.mem(OP.f64store, 3, 8 * k);
    } else {
      // z_k = z_k + v·w[base + 8k]
      f.get(acc(k))
        .get(10)
        .get(9)
        .mem(OP.f64load, 3, 8 * k)
        .op(OP.f64mul, OP.f64add)
        .set(acc(k));
    }
  }
  f.inc(0, 1).inc(7, 2).inc(8, 4);
  f.op(OP.br, 0, OP.end, OP.end);
  if (!isAxpy)
    for (let k = 0; k < K; k++)
      f.get(6)
        .get(acc(k))
        .mem(OP.f64store, 3, 8 * k);
  return f.encode([
    [3, I32],
    [1 + K, F64],
  ]);
}

/**
 * Bytes of the module; it imports its memory as `env.mem` (shared, up to 4 GiB). With
 * 3 ≤ K ≤ MAX_UNROLLED_K, `dotK`/`axpyK` are specialized for that K (the K argument is then
 * ignored); otherwise they loop over any K.
 */
export function sparseKernelBytes(K = 0): Uint8Array {
  const t5 = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32]]), ...vec([[F64]])];
  const t6 = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [F64]]), ...vec([])];
  const t7 = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32], [I32]]), ...vec([])];
  const types = section(1, vec([t5, t6, t7]));
  // Memory import: limits flag 0x03 = shared with a maximum.
  const imports = section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]]));
  const funcs = section(3, vec([[0], [1], [2], [2]]));
  const exports = section(
    7,
    vec([
      [...name('dot1'), 0x00, 0],
      [...name('axpy1'), 0x00, 1],
      [...name('dotK'), 0x00, 2],
      [...name('axpyK'), 0x00, 3],
    ]),
  );
  const unrolled = K >= 3 && K <= MAX_UNROLLED_K;
  const code = section(
    10,
    vec([
      dot1(),
      axpy1(),
      unrolled ? rowKUnrolled(K, false) : rowK(false),
      unrolled ? rowKUnrolled(K, true) : rowK(true),
    ]),
  );
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...types,
    ...imports,
    ...funcs,
    ...exports,
    ...code,
  ]);
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

const compiled = new Map<number, WasmModule>();

/** The compiled module for K outputs (compiled once per K and process; a few KB at most). */
export function sparseKernelModule(K: number): WasmModule {
  const key = K >= 3 && K <= MAX_UNROLLED_K ? K : 0;
  let m = compiled.get(key);
  if (!m) {
    m = new wasm.Module(sparseKernelBytes(key));
    compiled.set(key, m);
  }
  return m;
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
