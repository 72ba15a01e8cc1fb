import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';

/**
 * An onnxruntime session on a worker thread of its own. onnxruntime-node runs inference
 * synchronously on the calling thread (its `run` only defers to `setImmediate`), so a VGG16 forward
 * pass on the main thread blocks the event loop for ~60-100 ms per 150x150 image: no S3 read, no
 * image decode, no HTTP answer moves meanwhile. On a worker the forward pass overlaps all of that:
 * the next images of an SQS batch are read and decoded while the current ones run
 * (lib/pipeline/extract.ts), and in the local stack (lib/local/stack.ts, one process) the S3/SQS
 * emulator, the API and the other pollers keep answering.
 *
 * The session lives only on the worker (no second copy of the graph here). Runs queue on the
 * worker in order. The worker does not keep the process alive while idle.
 */
export interface SessionThread {
  /** Runs the graph on one float32 input; the input's buffer is handed over (detached here). */
  run(inputName: string, outputName: string, data: Float32Array, dims: readonly number[]): Promise<RunOutput>;
  release(): Promise<void>;
}

/** One output tensor, as the worker read it. */
export interface RunOutput {
  /** Undefined when the graph has no output of that name. */
  data: Float32Array | undefined;
  dims: readonly number[];
}

type Reply = { id: number; error?: string; data?: Float32Array; dims?: number[] };

// Plain CommonJS, evaluated as the worker's source (no TypeScript loader, no bundle entry needed):
// onnxruntime-node is required by the path the main thread resolved.
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session;
const fail = (id, e) => parentPort.postMessage({ id, error: String((e && (e.stack || e.message)) || e) });
parentPort.on('message', async (m) => {
  try {
    if (m.type === 'create') {
      session = await ort.InferenceSession.create(m.model, m.options);
      parentPort.postMessage({ id: m.id });
    } else if (m.type === 'run') {
      const input = new ort.Tensor('float32', m.data, m.dims);
      try {
        const out = (await session.run({ [m.inputName]: input }))[m.outputName];
        if (out === undefined || !(out.data instanceof Float32Array)) {
          parentPort.postMessage({ id: m.id, dims: out ? out.dims : [] });
          return;
        }
        // A copy the worker owns, so its buffer can be handed over whatever backs the tensor.
        const data = new Float32Array(out.data);
        parentPort.postMessage({ id: m.id, data, dims: out.dims }, [data.buffer]);
      } finally {
        input.dispose();
      }
    } else if (m.type === 'release') {
      if (session) await session.release();
      session = undefined;
      parentPort.postMessage({ id: m.id });
    }
  } catch (e) {
    fail(m.id, e);
  }
});
`;

/**
 * Starts a worker and creates the session there from the serialized graph (copied to the worker).
 * Rejects with onnxruntime's message when the session cannot be created (the worker is then gone).
 *
 * @example
 * const thread = await startSessionThread(model, { executionProviders: ['cpu'], intraOpNumThreads: 2 });
 * const { data } = await thread.run('input', 'features', batch, [n, 150, 150, 3]);
 */
export async function startSessionThread(
  model: Uint8Array,
  options: InferenceSession.SessionOptions,
): Promise<SessionThread> {
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath } });
  worker.unref();
  const pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let dead: Error | undefined;
  const failAll = (err: Error) => {
    dead ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  worker.on('message', (r: Reply) => {
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    if (pending.size === 0) worker.unref();
    if (r.error !== undefined) p.reject(new Error(r.error));
    else p.resolve(r);
  });
  worker.on('error', (err) => failAll(err));
  worker.on('exit', (code) => failAll(new Error(`the onnxruntime worker exited (code ${code})`)));

  const call = (msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> => {
    if (dead) return Promise.reject(dead);
    const id = nextId++;
    return new Promise<Reply>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      // Referenced while a call is pending: a caller awaiting a forward pass keeps the process up.
      worker.ref();
      worker.postMessage({ ...msg, id }, transfer);
    });
  };

  try {
    await call({ type: 'create', model, options });
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  return {
    async run(inputName, outputName, data, dims) {
      const r = await call({ type: 'run', inputName, outputName, data, dims: [...dims] }, [
        data.buffer as ArrayBuffer,
      ]);
      return { data: r.data, dims: r.dims ?? [] };
    },
    async release() {
      if (dead) return;
      try {
        await call({ type: 'release' });
      } finally {
        dead ??= new Error('the onnxruntime session was released');
        await worker.terminate();
      }
    },
  };
}
