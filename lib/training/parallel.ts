import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { lossGradBlock } from './logistic-kernel.ts';

/**
 * Rows of a fit as the kernel reads them (see `lossGradBlock`): dense float32 rows, optionally
 * through a row index, or CSR. Arrays live in SharedArrayBuffers when threads are used.
 */
export interface RowData {
  dense: Float32Array | null;
  d: number;
  rows: Int32Array | null;
  rowPtr: Int32Array | null;
  idx: Uint16Array | Int32Array | null;
  val: Float32Array | null;
  /** Class index of each local row (0/1 for binary). */
  y: Int32Array;
  /** Number of local rows. */
  n: number;
}

/**
 * Number of fixed row blocks. Each block has its own gradient accumulator and the blocks are
 * summed in order, so the result is bit-for-bit the same whether 1, 2, 4 or 8 threads ran them.
 */
export const N_BLOCKS = 8;

// Control slots of the shared Int32Array.
const GEN = 0; // incremented by the main thread to start an evaluation
const DONE = 1; // workers finished with the current evaluation
const CMD = 2; // 1 = evaluate, 2 = exit
const ERR = 3; // a worker threw
const READY = 4; // workers started
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

/**
 * Creates the evaluator. With `threads > 1` and every array of `data` in shared memory, it starts
 * `threads - 1` workers that wait on an Atomics slot; each evaluation wakes them, this thread
 * computes its own share, then blocks (Atomics.wait) until they are done — so fitting stays a
 * synchronous call. Falls back to this thread alone if workers do not start.
 */
export function createBlockEvaluator(data: RowData, K: number, threads: number): BlockEvaluator {
  const len = K * (data.d + 1);
  const bounds = new Int32Array(N_BLOCKS + 1);
  for (let b = 0; b <= N_BLOCKS; b++) bounds[b] = Math.floor((b * data.n) / N_BLOCKS);
  const wantThreads = Math.max(1, Math.min(threads, N_BLOCKS));
  const sharable =
    wantThreads > 1 &&
    [data.dense, data.rows, data.rowPtr, data.idx, data.val, data.y].every((a) => a === null || isShared(a));
  const alloc = (n: number) =>
    sharable ? new Float64Array(new SharedArrayBuffer(n * 8)) : new Float64Array(n);
  const blockGrads = alloc(N_BLOCKS * len);
  const blockLoss = alloc(N_BLOCKS);
  const wShared = alloc(len);
  const z = new Float64Array(K);

  const runBlock = (b: number) => {
    const g = blockGrads.subarray(b * len, (b + 1) * len);
    g.fill(0);
    blockLoss[b] = lossGradBlock(
      data.dense,
      data.d,
      data.rows,
      data.rowPtr,
      data.idx,
      data.val,
      data.y,
      K,
      bounds[b] as number,
      bounds[b + 1] as number,
      wShared,
      g,
      z,
    );
  };
  const reduce = (grad: Float64Array): number => {
    grad.fill(0);
    let loss = 0;
    for (let b = 0; b < N_BLOCKS; b++) {
      loss += blockLoss[b] as number;
      const off = b * len;
      for (let i = 0; i < len; i++) grad[i] = (grad[i] as number) + (blockGrads[off + i] as number);
    }
    return loss;
  };

  let workers: Worker[] = [];
  let ctl: Int32Array | null = null;
  if (sharable) {
    ctl = new Int32Array(new SharedArrayBuffer(8 * 4));
    const shared = { ...data, bounds, blockGrads, blockLoss, w: wShared, K, len, ctl };
    for (let t = 1; t < wantThreads; t++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { ...shared, tid: t, T: wantThreads },
      });
      w.unref();
      workers.push(w);
    }
    if (!waitFor(ctl, READY, workers.length, START_TIMEOUT_MS)) {
      stop();
      workers = [];
      ctl = null;
    }
  }
  const T = workers.length + 1;

  function stop() {
    if (ctl !== null) {
      Atomics.store(ctl, CMD, CMD_EXIT);
      Atomics.add(ctl, GEN, 1);
      Atomics.notify(ctl, GEN);
    }
    for (const w of workers) void w.terminate();
  }

  return {
    threads: T,
    evaluate(w, grad) {
      wShared.set(w);
      if (ctl !== null && T > 1) {
        Atomics.store(ctl, DONE, 0);
        Atomics.store(ctl, CMD, CMD_EVAL);
        Atomics.add(ctl, GEN, 1);
        Atomics.notify(ctl, GEN);
        for (let b = 0; b < N_BLOCKS; b += T) runBlock(b);
        if (!waitFor(ctl, DONE, T - 1, EVAL_TIMEOUT_MS))
          throw new Error('a fit worker thread stopped responding');
        if (Atomics.load(ctl, ERR) !== 0) throw new Error('a fit worker thread failed');
      } else {
        for (let b = 0; b < N_BLOCKS; b++) runBlock(b);
      }
      return reduce(grad);
    },
    close() {
      stop();
      workers = [];
      ctl = null;
    },
  };
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

// The worker runs the very same kernel, from its source text (it is self-contained by contract).
// `__name` covers transpilers that wrap functions to keep their names.
const WORKER_SOURCE = `
'use strict';
var __name = (f) => f;
const { workerData } = require('node:worker_threads');
const lossGradBlock = (${lossGradBlock.toString()});
const { dense, d, rows, rowPtr, idx, val, y, K, len, bounds, blockGrads, blockLoss, w, ctl, tid, T } = workerData;
const z = new Float64Array(K);
Atomics.add(ctl, ${READY}, 1);
Atomics.notify(ctl, ${READY});
let gen = 0;
for (;;) {
  Atomics.wait(ctl, ${GEN}, gen);
  gen = Atomics.load(ctl, ${GEN});
  if (Atomics.load(ctl, ${CMD}) === ${CMD_EXIT}) break;
  try {
    for (let b = tid; b < ${N_BLOCKS}; b += T) {
      const g = blockGrads.subarray(b * len, (b + 1) * len);
      g.fill(0);
      blockLoss[b] = lossGradBlock(dense, d, rows, rowPtr, idx, val, y, K, bounds[b], bounds[b + 1], w, g, z);
    }
  } catch (e) {
    Atomics.store(ctl, ${ERR}, 1);
  }
  Atomics.add(ctl, ${DONE}, 1);
  Atomics.notify(ctl, ${DONE});
}
`;
