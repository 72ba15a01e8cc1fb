import { ValidationError } from '../errors.ts';
import type { Matrix } from './types.ts';
import { createGrowableSharedMemory, MAX_PAGES, type WasmMemory } from './wasm-kernel.ts';

/**
 * The trainer's feature matrix, holding only the non-zeros of each row (ReLU features are mostly
 * zeros; see README "Scale and limits" for the measured density) in shared WebAssembly memory,
 * where the fit's kernel and its worker threads read them without a copy.
 *
 * Layout: each row is one record `[values f32 × nnz][column indices u16 × nnz]` (padded to 4
 * bytes) appended to a *shard*, a growable shared `WebAssembly.Memory` of at most
 * {@link DEFAULT_SHARD_BYTES}; a new shard starts when one is full, so the matrix is not bounded
 * by WebAssembly's 4 GiB. 6 bytes per non-zero + 9 bytes per row.
 *
 * API for other code (all O(non-zeros of the rows touched), none copies the non-zeros):
 * - {@link CompactMatrix.selectRows} — a view of some rows, in a given order (a K-fold's train
 *   part, the rows of one label); `fitLogisticRegression(X.selectRows(idx), …)` or its `rows` option;
 * - {@link CompactMatrix.forEachNonZero} — the non-zeros of one row, in column order;
 * - {@link CompactMatrix.rowDot}, {@link CompactMatrix.rowNorm} — for cosine similarity;
 * - {@link CompactMatrix.dotDense} — one row against a dense vector (predictions);
 * - {@link CompactMatrix.rowToDense} — one row as a dense Float32Array.
 *
 * Built by {@link CompactMatrixBuilder} (straight from decoded rows) or {@link compactFromDense}.
 */
export class CompactMatrix {
  /** Use {@link CompactMatrixBuilder}, {@link compactFromDense} or {@link CompactMatrix.selectRows}. */
  private constructor(
    /** Columns. */
    readonly d: number,
    /** Shards; a row lives in `shards[rowShard[i]]`. */
    readonly shards: readonly CompactShard[],
    /** Shard of each row. */
    readonly rowShard: Uint8Array,
    /** Byte offset of each row's record inside its shard. */
    readonly rowOff: Uint32Array,
    /** Non-zeros of each row. */
    readonly rowNnz: Int32Array,
  ) {}

  /** @internal used by the builder and by selectRows. */
  static of(
    d: number,
    shards: readonly CompactShard[],
    rowShard: Uint8Array,
    rowOff: Uint32Array,
    rowNnz: Int32Array,
  ): CompactMatrix {
    return new CompactMatrix(d, shards, rowShard, rowOff, rowNnz);
  }

  /** Rows. */
  get n(): number {
    return this.rowNnz.length;
  }

  /** Non-zeros over all rows. */
  get nnz(): number {
    let s = 0;
    for (let i = 0; i < this.rowNnz.length; i++) s += this.rowNnz[i] as number;
    return s;
  }

  /** Bytes the shards hold (records of every row they ever received, plus fit scratch). */
  get bytes(): number {
    return this.shards.reduce((s, sh) => s + sh.pages * PAGE, 0);
  }

  /**
   * A matrix of the rows `indices` of this one, in that order (repeats allowed). Shares the
   * non-zeros: costs 9 bytes per selected row.
   */
  selectRows(indices: ArrayLike<number>): CompactMatrix {
    const m = indices.length;
    const rs = new Uint8Array(new SharedArrayBuffer(Math.max(1, m)), 0, m);
    const ro = new Uint32Array(new SharedArrayBuffer(Math.max(4, m * 4)), 0, m);
    const rn = new Int32Array(new SharedArrayBuffer(Math.max(4, m * 4)), 0, m);
    for (let r = 0; r < m; r++) {
      const i = indices[r] as number;
      if (!(i >= 0 && i < this.n && Number.isInteger(i)))
        throw new ValidationError(`row index ${i} is outside the matrix (0..${this.n - 1})`);
      rs[r] = this.rowShard[i] as number;
      ro[r] = this.rowOff[i] as number;
      rn[r] = this.rowNnz[i] as number;
    }
    return new CompactMatrix(this.d, this.shards, rs, ro, rn);
  }

  /** Calls `fn(column, value)` for each non-zero of row `i`, in increasing column order. */
  forEachNonZero(i: number, fn: (column: number, value: number) => void): void {
    const { f32, u16, nz, vi, ii } = this.record(i);
    for (let p = 0; p < nz; p++) fn(u16[ii + p] as number, f32[vi + p] as number);
  }

  /** Σ row_i[j]·v[j] over the non-zeros of row i, in column order (v has d entries). */
  dotDense(i: number, v: ArrayLike<number>): number {
    const { f32, u16, nz, vi, ii } = this.record(i);
    let s = 0;
    for (let p = 0; p < nz; p++) s += (f32[vi + p] as number) * (v[u16[ii + p] as number] as number);
    return s;
  }

  /** Dot product of rows i and j (a merge of their sorted columns). */
  rowDot(i: number, j: number): number {
    const a = this.record(i);
    const b = this.record(j);
    let s = 0;
    let p = 0;
    let q = 0;
    while (p < a.nz && q < b.nz) {
      const ca = a.u16[a.ii + p] as number;
      const cb = b.u16[b.ii + q] as number;
      if (ca === cb) {
        s += (a.f32[a.vi + p] as number) * (b.f32[b.vi + q] as number);
        p++;
        q++;
      } else if (ca < cb) p++;
      else q++;
    }
    return s;
  }

  /** Euclidean norm of row i. */
  rowNorm(i: number): number {
    const { f32, nz, vi } = this.record(i);
    let s = 0;
    for (let p = 0; p < nz; p++) s += (f32[vi + p] as number) ** 2;
    return Math.sqrt(s);
  }

  /**
   * The non-zeros of row i in place (views of the shard memory, no copy), in column order.
   * The views stay valid until the shard grows (only a builder grows it).
   */
  rowView(i: number): { values: Float32Array; columns: Uint16Array } {
    const { f32, u16, nz, vi, ii } = this.record(i);
    return { values: f32.subarray(vi, vi + nz), columns: u16.subarray(ii, ii + nz) };
  }

  /** Row i as dense values (into `out` when given). */
  rowToDense(i: number, out: Float32Array = new Float32Array(this.d)): Float32Array {
    out.fill(0);
    const { f32, u16, nz, vi, ii } = this.record(i);
    for (let p = 0; p < nz; p++) out[u16[ii + p] as number] = f32[vi + p] as number;
    return out;
  }

  private record(i: number): { f32: Float32Array; u16: Uint16Array; nz: number; vi: number; ii: number } {
    const shard = this.shards[this.rowShard[i] as number];
    if (shard === undefined || !(i >= 0 && i < this.n))
      throw new ValidationError(`row index ${i} is outside the matrix (0..${this.n - 1})`);
    const nz = this.rowNnz[i] as number;
    const off = this.rowOff[i] as number;
    const v = shard.views();
    return { f32: v.f32, u16: v.u16, nz, vi: off / 4, ii: (off + 4 * nz) / 2 };
  }
}

/** Bytes of a WebAssembly page. */
const PAGE = 65536;

/**
 * Row records a shard holds at most: 4 GiB (WebAssembly's limit) minus room for the fit's
 * scratch (weights, per-block gradients) after them.
 */
export const DEFAULT_SHARD_BYTES = (MAX_PAGES - 8192) * PAGE;

/** Bytes one row of `nnz` non-zeros takes: its record and its row entry. */
export function compactRowBytes(nnz: number): number {
  return align(6 * nnz, 4) + 9;
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** One growable shared memory of row records; fit scratch goes after the records. */
export class CompactShard {
  /** Bytes of row records, from offset 0. */
  used = 0;
  pages: number;
  private cached: { buffer: ArrayBufferLike; f32: Float32Array; i32: Int32Array; u16: Uint16Array } | null =
    null;

  constructor(
    readonly memory: WasmMemory & { grow(delta: number): number },
    pages: number,
  ) {
    this.pages = pages;
  }

  /** Typed views of the whole memory (rebuilt after it grew). */
  views(): { f32: Float32Array; i32: Int32Array; u16: Uint16Array } {
    const buffer = this.memory.buffer;
    if (
      this.cached === null ||
      this.cached.buffer !== buffer ||
      this.cached.i32.byteLength !== buffer.byteLength
    )
      this.cached = {
        buffer,
        f32: new Float32Array(buffer),
        i32: new Int32Array(buffer),
        u16: new Uint16Array(buffer),
      };
    return this.cached;
  }

  /**
   * Grows the memory to hold at least `bytes`: by ≥ 1/8 of its size (to grow rarely), but to
   * at most `maxPages`.
   */
  ensure(bytes: number, maxPages = MAX_PAGES): void {
    const need = Math.ceil(bytes / PAGE);
    if (need <= this.pages) return;
    const step = Math.max(need, this.pages + Math.ceil(this.pages / 8), this.pages + 256);
    const target = Math.max(need, Math.min(MAX_PAGES, maxPages, step));
    this.memory.grow(target - this.pages);
    this.pages = target;
  }

  /**
   * Byte offset of a scratch region of `bytes` (8-aligned) after the records, for a fit's
   * weights and gradients; reused by the next fit. Rows must not be added after this.
   */
  scratch(bytes: number): number {
    const ptr = align(this.used, 8);
    if (ptr + bytes > MAX_PAGES * PAGE)
      throw new ValidationError(`the fit's work arrays (${bytes} bytes) do not fit next to the features`);
    this.ensure(ptr + bytes);
    return ptr;
  }
}

/** Options of {@link CompactMatrixBuilder}. */
export interface CompactBuildOptions {
  /** Largest shard, bytes. @default DEFAULT_SHARD_BYTES */
  shardBytes?: number;
  /**
   * Bytes the shards may hold in all; going past it calls `onLimit` (whose error is thrown).
   * @default unlimited
   */
  maxBytes?: number;
  /** The error to throw when `maxBytes` would be passed (gets the bytes that were needed). */
  onLimit?: (neededBytes: number) => Error;
}

/**
 * Builds a {@link CompactMatrix} of `n` rows straight from dense rows (e.g. each feature `.npy`
 * as it is decoded), in any order: only the non-zeros are kept, in memory that grows as rows
 * arrive, so peak memory is the compact matrix plus one row.
 *
 * @example
 * const b = new CompactMatrixBuilder(entries.length, 8192);
 * b.setRow(i, decodeNpy(body).data); // for each row, in any order
 * const X = b.finish(keptRows);       // rows never set are zero rows unless left out here
 */
export class CompactMatrixBuilder {
  private readonly shards: CompactShard[] = [];
  private readonly rowShard: Uint8Array;
  private readonly rowOff: Uint32Array;
  private readonly rowNnz: Int32Array;
  private readonly vals: Int32Array;
  private readonly idx: Uint16Array;
  private readonly shardBytes: number;
  private done = false;

  constructor(
    readonly n: number,
    readonly d: number,
    private readonly opts: CompactBuildOptions = {},
  ) {
    if (!(Number.isInteger(d) && d >= 1 && d <= 65536))
      throw new ValidationError(`a compact matrix holds 1 to 65,536 columns (got ${d})`);
    this.rowShard = new Uint8Array(new SharedArrayBuffer(Math.max(1, n)), 0, n);
    this.rowOff = new Uint32Array(new SharedArrayBuffer(Math.max(4, n * 4)), 0, n);
    this.rowNnz = new Int32Array(new SharedArrayBuffer(Math.max(4, n * 4)), 0, n);
    this.vals = new Int32Array(d + 1);
    this.idx = new Uint16Array(d + 1);
    this.shardBytes = Math.min(opts.shardBytes ?? DEFAULT_SHARD_BYTES, DEFAULT_SHARD_BYTES);
  }

  /** Bytes held so far. */
  get bytes(): number {
    return this.shards.reduce((s, sh) => s + sh.pages * PAGE, 0);
  }

  /** Stores row i (d values; ±0 count as zero). Setting a row twice keeps the last values. */
  setRow(i: number, values: Float32Array): void {
    if (this.done) throw new Error('the compact matrix is finished');
    if (!(Number.isInteger(i) && i >= 0 && i < this.n))
      throw new ValidationError(`row index ${i} is outside the matrix (0..${this.n - 1})`);
    const d = this.d;
    if (values.length !== d) throw new ValidationError(`row has ${values.length} values, expected ${d}`);
    const src = values.byteOffset % 4 === 0 ? values : values.slice();
    const bits = new Int32Array(src.buffer, src.byteOffset, d);
    // Branch-free gather of the non-zeros ("is non-zero" as integer arithmetic on the bits: a
    // branch per value mispredicts on ReLU zeros); the slot at nnz is scratch.
    const { vals, idx } = this;
    let nz = 0;
    for (let j = 0; j < d; j++) {
      const b = bits[j] as number;
      vals[nz] = b;
      idx[nz] = j;
      nz += ((b & 0x7fffffff) + 0x7fffffff) >>> 31;
    }
    const rec = align(6 * nz, 4);
    let shard = this.shards[this.shards.length - 1];
    if (shard === undefined || shard.used + rec > this.shardBytes) {
      if (this.shards.length >= 255) throw new Error('a compact matrix holds at most 255 shards');
      shard = this.newShard(rec);
    }
    const limit = this.opts.maxBytes;
    const otherBytes = this.bytes - shard.pages * PAGE;
    const capPages = limit === undefined ? MAX_PAGES : Math.floor((limit - otherBytes) / PAGE);
    if (Math.ceil((shard.used + rec) / PAGE) > capPages) throw this.limitError(otherBytes + shard.used + rec);
    shard.ensure(shard.used + rec, capPages);
    const off = shard.used;
    const v = shard.views();
    v.i32.set(vals.subarray(0, nz), off / 4);
    v.u16.set(idx.subarray(0, nz), (off + 4 * nz) / 2);
    shard.used += rec;
    this.rowShard[i] = this.shards.length - 1;
    this.rowOff[i] = off;
    this.rowNnz[i] = nz;
  }

  /** The matrix of rows `keep` (in that order; default all rows). The builder is done after this. */
  finish(keep?: ArrayLike<number>): CompactMatrix {
    this.done = true;
    const all = CompactMatrix.of(this.d, this.shards, this.rowShard, this.rowOff, this.rowNnz);
    return keep === undefined ? all : all.selectRows(keep);
  }

  private newShard(firstRecord: number): CompactShard {
    const pages = Math.max(1, Math.ceil(firstRecord / PAGE));
    const limit = this.opts.maxBytes;
    if (limit !== undefined && this.bytes + pages * PAGE > limit)
      throw this.limitError(this.bytes + firstRecord);
    const memory = createGrowableSharedMemory(pages);
    const shard = new CompactShard(memory, pages);
    this.shards.push(shard);
    return shard;
  }

  private limitError(needed: number): Error {
    return (
      this.opts.onLimit?.(needed) ??
      new RangeError(`the compact matrix needs more than ${this.opts.maxBytes} bytes`)
    );
  }
}

/** A compact copy of the rows `rows` (default all) of a dense matrix. */
export function compactFromDense(
  X: Matrix,
  rows?: ArrayLike<number>,
  opts?: CompactBuildOptions,
): CompactMatrix {
  const n = rows ? rows.length : X.n;
  const b = new CompactMatrixBuilder(n, X.d, opts);
  for (let r = 0; r < n; r++) {
    const i = rows ? (rows[r] as number) : r;
    if (!(i >= 0 && i < X.n))
      throw new ValidationError(`row index ${i} is outside the matrix (0..${X.n - 1})`);
    b.setRow(r, X.data.subarray(i * X.d, (i + 1) * X.d));
  }
  return b.finish();
}

/** Whether a feature matrix is the compact form. */
export function isCompact(X: Matrix | CompactMatrix): X is CompactMatrix {
  return X instanceof CompactMatrix;
}
