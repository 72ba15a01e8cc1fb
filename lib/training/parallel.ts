import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { lossGradBlock } from './logistic-kernel.ts';
import {
  instantiateSparseKernel,
  type SparseKernel,
  sparseKernelModule,
  type WasmMemory,
} from './wasm-kernel.ts';

/**
 * Number of fixed row blocks. Each block has its own gradient accumulator and the blocks are
 * summed in order, so the result is bit-for-bit the same whether 1, 2, 4 or 8 threads ran them.
 */
export const N_BLOCKS = 8;

/**
 * Rows of a compact matrix shard (see compact-matrix.ts): each local row's record offset and
 * non-zero count, the shard's shared WebAssembly memory, and where the fit's work arrays sit in
 * it (after the records).
 */
export interface CsrRows {
  /** Byte offset of local row r's record `[values f32 × nnz][indices u16 × nnz]`. */
  rowOff: Uint32Array;
  rowNnz: Int32Array;
  memory: WasmMemory;
  layout: CsrLayout;
}

/** Byte offsets of the fit's work arrays inside the shard memory. */
export interface CsrLayout {
  /** Weights, K·(d+1) f64. */
  wPtr: number;
  /** N_BLOCKS gradient accumulators of K·(d+1) f64 each. */
  gradsPtr: number;
  /** Scratch for logits / residuals: N_BLOCKS × K f64 (one per thread at most). */
  zPtr: number;
}

/** Bytes of the work arrays of a fit with K outputs and d features. */
export function csrScratchBytes(K: number, d: number): number {
  const len = K * (d + 1);
  return (len + N_BLOCKS * len + N_BLOCKS * K) * 8;
}

/** Where the work arrays go, from the scratch region's byte offset `base`. */
export function csrLayout(K: number, d: number, base: number): CsrLayout {
  const len = K * (d + 1);
  const wPtr = base;
  const gradsPtr = wPtr + len * 8;
  const zPtr = gradsPtr + N_BLOCKS * len * 8;
  return { wPtr, gradsPtr, zPtr };
}

/**
 * Rows of a fit as the kernel reads them (see `lossGradBlock`): dense float32 rows (optionally
 * through a row index) or CSR in WebAssembly memory.
 */
export interface RowData {
  /** Number of local rows. */
  n: number;
  d: number;
  /** Class index of each local row (0/1 for binary). */
  y: Int32Array;
  dense: Float32Array | null;
  rows: Int32Array | null;
  csr: CsrRows | null;
}

// Control slots of the shared Int32Array.
const GEN = 0; // incremented by the main thread to start an evaluation
const FINISHED = 1; // blocks of the current evaluation finished (by any thread)
const CMD = 2; // 1 = evaluate, 2 = exit
const ERR = 3; // a worker threw
const READY = 4; // workers started
const NEXT = 5; // next block of the current evaluation to claim
const CMD_EVAL = 1;
const CMD_EXIT = 2;

/** Milliseconds to wait for workers to start before falling back to one thread. */
const START_TIMEOUT_MS = 15_000;
/** Milliseconds one evaluation may take before we assume a worker died. */
const EVAL_TIMEOUT_MS = 600_000;

/** Loss + gradient over all rows, summed over the fixed blocks. Call `close()` when done. */
export interface BlockEvaluator {
  /** Threads actually used (1 = this thread only). */
  readonly threads: number;
  /** Writes Σ rows' gradients into `grad` (length K·(d+1)) and returns Σ rows' losses, at `w`. */
  evaluate(w: Float64Array, grad: Float64Array): number;
  close(): void;
}

/** Whether a typed array's memory can be shared with worker threads without copying. */
export function isShared(a: ArrayBufferView): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}

/** Default thread count: the machine's parallelism, at most the number of blocks. */
export function defaultThreads(): number {
  return Math.max(1, Math.min(N_BLOCKS, availableParallelism()));
}

/** Work arrays of an evaluation: views of the CSR memory, or shared arrays for dense rows. */
interface Workspace {
  w: Float64Array;
  grads: Float64Array;
  z: Float64Array;
  layout: CsrLayout;
}

function workspaceOf(data: RowData, K: number, shared: boolean): Workspace {
  const len = K * (data.d + 1);
  if (data.csr) {
    const { memory, layout } = data.csr;
    return {
      w: new Float64Array(memory.buffer, layout.wPtr, len),
      grads: new Float64Array(memory.buffer, layout.gradsPtr, N_BLOCKS * len),
      z: new Float64Array(memory.buffer, layout.zPtr, N_BLOCKS * K),
      layout,
    };
  }
  const alloc = (n: number) =>
    shared ? new Float64Array(new SharedArrayBuffer(n * 8)) : new Float64Array(n);
  return {
    w: alloc(len),
    grads: alloc(N_BLOCKS * len),
    z: alloc(N_BLOCKS * K),
    layout: { wPtr: 0, gradsPtr: 0, zPtr: 0 },
  };
}

/**
 * Runs block b with thread-slot t's scratch. Self-contained like the kernel (it is also the
 * worker's loop body, from its source text).
 */
function runBlock(
  kernel: typeof lossGradBlock,
  data: {
    dense: Float32Array | null;
    d: number;
    rows: Int32Array | null;
    rowOff: Uint32Array | null;
    rowNnz: Int32Array | null;
    y: Int32Array;
  },
  wx: SparseKernel | null,
  ws: Workspace,
  K: number,
  bounds: Int32Array,
  blockLoss: Float64Array,
  b: number,
  t: number,
): void {
  const len = K * (data.d + 1);
  const g = ws.grads.subarray(b * len, (b + 1) * len);
  g.fill(0);
  blockLoss[b] = kernel(
    data.dense,
    data.d,
    data.rows,
    data.rowOff,
    data.rowNnz,
    wx,
    data.y,
    K,
    bounds[b] as number,
    bounds[b + 1] as number,
    ws.w,
    ws.layout.wPtr,
    g,
    ws.layout.gradsPtr + b * len * 8,
    ws.z.subarray(t * K, (t + 1) * K),
    ws.layout.zPtr + t * K * 8,
  );
}

/**
 * Worker threads kept between fits, so that many small fits (the quality pass's K-fold refits)
 * use threads without paying a thread start each. A fit borrows the whole pool for its duration
 * (`FitRunOptions.pool`); fits are synchronous, so one at a time is the natural use. A fit that
 * finds the pool borrowed (a matrix of several shards evaluates one evaluator per shard) starts
 * its own workers for the other parts, as without a pool. Close it when done: its workers are
 * `unref`'d (they never keep the process alive) but hold their memory until closed.
 *
 * @example
 * const pool = createFitPool();
 * try {
 *   for (const rows of folds) fitLogisticRegression(X, y, K, { ...opts, rows, pool });
 * } finally {
 *   await pool.close();
 * }
 */
export interface FitPool {
  /** Threads a fit on this pool uses: the calling thread and the pool's workers. */
  readonly threads: number;
  /** Whether {@link FitPool.close} was called (a closed pool cannot be borrowed). */
  readonly closed: boolean;
  /** Fits (evaluators) that have run on the pool's workers so far. */
  readonly jobs: number;
  /** Stops the workers; resolves when they have exited. Safe to call twice. */
  close(): Promise<void>;
}

/** Raised when a closed pool is handed to a fit. */
export class FitPoolClosedError extends Error {
  constructor() {
    super('the fit pool is closed; create a new one with createFitPool()');
    this.name = 'FitPoolClosedError';
  }
}

interface PoolState {
  /** Started on the first fit that uses threads (small trainings never start any). */
  workers: Worker[];
  /** Workers to start. */
  size: number;
  busy: boolean;
  closed: boolean;
  jobs: number;
  /** A worker exited without close(): why (the pool is then unusable). */
  broken: string | undefined;
}

const POOLS = new WeakMap<FitPool, PoolState>();

/**
 * A pool of `threads − 1` worker threads for fits (the calling thread is the other one), started
 * by the first fit that is large enough to use threads. `threads` ≤ 1 gives a pool without
 * workers: fits on it run on the calling thread.
 */
export function createFitPool(threads: number = defaultThreads()): FitPool {
  const T = Math.max(1, Math.min(N_BLOCKS, Math.floor(threads)));
  const state: PoolState = {
    workers: [],
    size: T - 1,
    busy: false,
    closed: false,
    jobs: 0,
    broken: undefined,
  };
  const pool: FitPool = {
    threads: T,
    get closed() {
      return state.closed;
    },
    get jobs() {
      return state.jobs;
    },
    async close() {
      if (state.closed) return;
      state.closed = true;
      const workers = state.workers;
      state.workers = [];
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
  POOLS.set(pool, state);
  return pool;
}

function startWorker(state: PoolState): Worker {
  const w = new Worker(WORKER_SOURCE, { eval: true });
  w.unref();
  w.on('error', (err) => {
    state.broken ??= `a fit worker thread failed: ${err instanceof Error ? err.message : String(err)}`;
  });
  w.on('exit', (code) => {
    if (!state.closed) state.broken ??= `a fit worker thread exited (code ${code})`;
  });
  return w;
}

/** The workers of `pool` for one evaluator, or undefined when it is borrowed already. */
function borrow(pool: FitPool): { state: PoolState; workers: Worker[] } | undefined {
  const state = POOLS.get(pool);
  if (state === undefined) throw new TypeError('not a fit pool: make one with createFitPool()');
  if (state.closed) throw new FitPoolClosedError();
  if (state.broken !== undefined) throw new Error(`the fit pool cannot be used: ${state.broken}`);
  if (state.busy) return undefined;
  while (state.workers.length < state.size) state.workers.push(startWorker(state));
  state.busy = true;
  state.jobs++;
  return { state, workers: state.workers };
}

/** Bytes of the shared buffer a worker writes its error message into. */
const ERR_BYTES = 512;

/**
 * Creates the evaluator. With `threads > 1` and the rows in shared memory (always for CSR; for
 * dense rows only when the caller's matrix is in a SharedArrayBuffer) it hands the rows to
 * `threads - 1` workers (the pool's when one is given and free, else new ones) that wait on an
 * Atomics slot; each evaluation wakes them, every thread (this one included) claims row blocks
 * until none is left, then this one blocks (Atomics.wait) until all are finished — so fitting
 * stays a synchronous call. Falls back to this thread alone if workers do not start. A worker's
 * error is thrown by `evaluate`.
 */
export function createBlockEvaluator(
  data: RowData,
  K: number,
  threads: number,
  pool?: FitPool,
): BlockEvaluator {
  const len = K * (data.d + 1);
  const bounds = new Int32Array(N_BLOCKS + 1);
  for (let b = 0; b <= N_BLOCKS; b++) bounds[b] = Math.floor((b * data.n) / N_BLOCKS);
  const wantThreads = Math.max(1, Math.min(threads, N_BLOCKS));
  const sharable =
    wantThreads > 1 &&
    isShared(data.y) &&
    (data.csr !== null ||
      (data.dense !== null && isShared(data.dense) && (data.rows === null || isShared(data.rows))));
  const ws = workspaceOf(data, K, sharable);
  const blockLoss = sharable
    ? new Float64Array(new SharedArrayBuffer(N_BLOCKS * 8))
    : new Float64Array(N_BLOCKS);
  const wx = data.csr ? instantiateSparseKernel(data.csr.memory, K) : null;
  const plain = {
    dense: data.dense,
    d: data.d,
    rows: data.rows,
    rowOff: data.csr?.rowOff ?? null,
    rowNnz: data.csr?.rowNnz ?? null,
    y: data.y,
  };

  let workers: Worker[] = [];
  let ctl: Int32Array | null = null;
  let errBuf: Uint8Array | null = null;
  /** What to do with the workers when this evaluator is done. */
  let release: () => void = () => undefined;
  const stop = () => {
    if (ctl !== null) {
      Atomics.store(ctl, CMD, CMD_EXIT);
      Atomics.add(ctl, GEN, 1);
      Atomics.notify(ctl, GEN);
    }
    release();
    release = () => undefined;
    workers = [];
    ctl = null;
  };
  if (sharable) {
    const borrowed = pool ? borrow(pool) : undefined;
    if (borrowed) {
      workers = borrowed.workers.slice(0, wantThreads - 1);
      // The workers leave this job's loop on CMD_EXIT and wait for the next job's message.
      release = () => {
        borrowed.state.busy = false;
      };
    } else {
      const own = createFitPool(wantThreads);
      const state = borrow(own) as { workers: Worker[] };
      workers = state.workers;
      release = () => void own.close();
    }
    ctl = new Int32Array(new SharedArrayBuffer(8 * 4));
    errBuf = new Uint8Array(new SharedArrayBuffer(ERR_BYTES));
    const shared = {
      ...plain,
      K,
      bounds,
      blockLoss,
      ctl,
      errBuf,
      T: workers.length + 1,
      memory: data.csr?.memory ?? null,
      module: data.csr ? sparseKernelModule(K) : null,
      // Dense rows: the shared work arrays themselves; CSR: views are rebuilt from the memory.
      ws: data.csr ? { layout: ws.layout } : ws,
      len,
    };
    workers.forEach((w, i) => {
      w.postMessage({ ...shared, tid: i + 1 });
    });
    if (!waitFor(ctl, READY, workers.length, START_TIMEOUT_MS)) stop();
    else if (Atomics.load(ctl, ERR) !== 0) {
      const message = workerError(errBuf);
      stop();
      throw new Error(`a fit worker thread failed to start: ${message}`);
    }
  }
  const T = workers.length + 1;

  return {
    threads: T,
    evaluate(w, grad) {
      ws.w.set(w);
      const c = ctl;
      if (c !== null && T > 1) {
        // Blocks are claimed, not dealt: whichever thread is running takes the next one, so a
        // worker the OS has not scheduled yet (a busy machine) costs nothing but its share.
        Atomics.store(c, FINISHED, 0);
        Atomics.store(c, NEXT, 0);
        Atomics.store(c, CMD, CMD_EVAL);
        Atomics.add(c, GEN, 1);
        Atomics.notify(c, GEN);
        for (let b = Atomics.add(c, NEXT, 1); b < N_BLOCKS; b = Atomics.add(c, NEXT, 1)) {
          runBlock(lossGradBlock, plain, wx, ws, K, bounds, blockLoss, b, 0);
          Atomics.add(c, FINISHED, 1);
        }
        if (!waitFor(c, FINISHED, N_BLOCKS, EVAL_TIMEOUT_MS))
          throw new Error('a fit worker thread stopped responding');
        if (Atomics.load(c, ERR) !== 0)
          throw new Error(`a fit worker thread failed: ${workerError(errBuf as Uint8Array)}`);
      } else {
        for (let b = 0; b < N_BLOCKS; b++) runBlock(lossGradBlock, plain, wx, ws, K, bounds, blockLoss, b, 0);
      }
      // Sum the blocks in order (deterministic whatever ran them).
      grad.fill(0);
      let loss = 0;
      for (let b = 0; b < N_BLOCKS; b++) {
        loss += blockLoss[b] as number;
        const off = b * len;
        for (let i = 0; i < len; i++) grad[i] = (grad[i] as number) + (ws.grads[off + i] as number);
      }
      return loss;
    },
    close: stop,
  };
}

/** The message a worker wrote into `buf` (NUL-terminated UTF-8). */
function workerError(buf: Uint8Array): string {
  const copy = new Uint8Array(buf.length);
  copy.set(buf);
  const end = copy.indexOf(0);
  return new TextDecoder().decode(copy.subarray(0, end < 0 ? copy.length : end)) || 'unknown error';
}

/** Blocks until `ctl[slot] >= target` or the timeout passes; returns whether the target was met. */
function waitFor(ctl: Int32Array, slot: number, target: number, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = Atomics.load(ctl, slot);
    if (v >= target) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    Atomics.wait(ctl, slot, v, Math.min(left, 1000));
  }
}

// The worker runs the very same kernel and block runner, from their source text (both are
// self-contained by contract). `__name` covers transpilers that wrap functions to keep names.
// One message = one job (an evaluator's rows); the worker serves it until CMD_EXIT, then waits
// for the next message, so a pool's workers serve fit after fit.
const WORKER_SOURCE = `
'use strict';
var __name = (f) => f;
const { parentPort } = require('node:worker_threads');
const lossGradBlock = (${lossGradBlock.toString()});
const runBlock = (${runBlock.toString()});
function fail(errBuf, e) {
  const text = new TextEncoder().encode(String((e && e.message) || e).slice(0, 200));
  errBuf.set(text.subarray(0, errBuf.length - 1));
}
parentPort.on('message', (job) => {
  const { dense, d, rows, rowOff, rowNnz, y, K, len, bounds, blockLoss, ctl, errBuf, tid, memory, module } = job;
  const plain = { dense, d, rows, rowOff, rowNnz, y };
  let ws = job.ws;
  let wx = null;
  try {
    if (memory) {
      const L = ws.layout;
      ws = {
        w: new Float64Array(memory.buffer, L.wPtr, len),
        grads: new Float64Array(memory.buffer, L.gradsPtr, ${N_BLOCKS} * len),
        z: new Float64Array(memory.buffer, L.zPtr, ${N_BLOCKS} * K),
        layout: L,
      };
      wx = new WebAssembly.Instance(module, { env: { mem: memory } }).exports;
    }
  } catch (e) {
    fail(errBuf, e);
    Atomics.store(ctl, ${ERR}, 1);
  }
  Atomics.add(ctl, ${READY}, 1);
  Atomics.notify(ctl, ${READY});
  let gen = 0;
  for (;;) {
    Atomics.wait(ctl, ${GEN}, gen);
    gen = Atomics.load(ctl, ${GEN});
    if (Atomics.load(ctl, ${CMD}) === ${CMD_EXIT}) break;
    for (let b = Atomics.add(ctl, ${NEXT}, 1); b < ${N_BLOCKS}; b = Atomics.add(ctl, ${NEXT}, 1)) {
      try {
        runBlock(lossGradBlock, plain, wx, ws, K, bounds, blockLoss, b, tid);
      } catch (e) {
        if (Atomics.compareExchange(ctl, ${ERR}, 0, 1) === 0) fail(errBuf, e);
      }
      Atomics.add(ctl, ${FINISHED}, 1);
      Atomics.notify(ctl, ${FINISHED});
    }
  }
});
`;
