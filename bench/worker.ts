/**
 * Child-process side of the benchmark suite: runs one measurement in a fresh process and prints
 * its result as one JSON line after RESULT_MARKER (with the process's peak RSS and CPU time).
 *
 *   node bin/run-ts.js bench/worker.ts TASK 'JSON params'
 *
 * Tasks: probe-engines, prepare-weights, decode, forward, fit, quality, batch. Started by `bench/run.ts`
 * through `runWorker()`; runnable by hand to debug one figure.
 */
import { pathToFileURL } from 'node:url';
import type { Pooling } from '../lib/model/spec.ts';
import type { BackendName, FeatureExtractor } from '../lib/model/types.ts';
import { makeImage, seededRandom } from '../test/helpers/images.ts';
import { ownUsage, RESULT_MARKER } from './lib/child.ts';

/** Engines the forward benchmarks can measure (`loadExtractor`'s backends). */
export type Engine = BackendName;

/** The ONNX engine (optional dependency): probed by URL so a tree without it still runs. */
const ONNX_MODULE = new URL('../lib/model/onnx/onnx-extractor.ts', import.meta.url).href;

const say = (message: string): void => {
  process.stderr.write(`[worker] ${message}\n`);
};

function timeSince(t: number): number {
  return performance.now() - t;
}

async function probeEngines(): Promise<{ available: string[]; unavailable: Record<string, string> }> {
  const available: string[] = [];
  const unavailable: Record<string, string> = {};
  const { selectBackend } = await import('../lib/model/backend.ts');
  for (const backend of ['tensorflow', 'wasm'] as const) {
    try {
      await selectBackend(backend);
      available.push(backend);
    } catch (err) {
      unavailable[backend] = describe(err);
    }
  }
  try {
    const mod = (await import(ONNX_MODULE)) as { loadOnnxExtractor?: unknown };
    if (typeof mod.loadOnnxExtractor !== 'function')
      throw new Error('lib/model/onnx has no loadOnnxExtractor');
    await import('onnxruntime-node');
    available.push('onnx');
  } catch (err) {
    unavailable.onnx = describe(err);
  }
  available.push('cpu');
  return { available, unavailable };
}

/** The most specific one-line reason (a wrapped cause says what is missing). */
function describe(err: unknown): string {
  const inner = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const msg = inner instanceof Error ? inner.message : String(inner);
  return msg.split('\n')[0] ?? '';
}

async function prepareWeights(p: { dir: string; seed: number }): Promise<{ weightsId: string; ms: number }> {
  const t = performance.now();
  const { randomWeights, saveWeights } = await import('../lib/model/weights.ts');
  // Saved without the random-<seed> label, so loading them costs what loading imported Keras
  // weights costs (a label would make the loader regenerate the seed's weights to check them).
  const saved = await saveWeights(p.dir, randomWeights(p.seed));
  return { weightsId: saved.weightsId, ms: timeSince(t) };
}

export interface DecodeParams {
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  /** Network input size (square). */
  size: number;
  warmup: number;
  reps: number;
}

async function decode(p: DecodeParams): Promise<{ samplesMs: number[]; bytes: number }> {
  const { preprocessImage } = await import('../lib/images/preprocess.ts');
  // A photo-like picture (smooth gradient + sensor-like noise), not pure noise: JPEG sizes and
  // decode costs then resemble real photos.
  const bytes = await makeImage(p.format, {
    width: p.width,
    height: p.height,
    pattern: 'gradient',
    noise: 24,
    seed: 11,
    quality: 90,
  });
  const run = () => preprocessImage(bytes, { size: [p.size, p.size], resize: 'bilinear' });
  for (let i = 0; i < p.warmup; i++) await run();
  const samplesMs: number[] = [];
  for (let i = 0; i < p.reps; i++) {
    const t = performance.now();
    await run();
    samplesMs.push(timeSince(t));
  }
  return { samplesMs, bytes: bytes.length };
}

export interface ForwardParams {
  engine: Engine;
  weightsDir: string;
  inputSize: number;
  pooling: Pooling;
  batch: number;
  warmup: number;
  reps: number;
}

export interface ForwardResult {
  /** Milliseconds per image of each timed batch. */
  samplesMsPerImage: number[];
  /** Weights read + graph built + the loader's own warm-up pass. */
  loadMs: number;
  backend: string;
  /**
   * Process CPU time over wall time while timing: below the engine's thread count means other
   * processes took the cores and the figure is pessimistic.
   */
  cpuOverWall: number;
}

/** The extractor through the production loader, with the engine forced. */
async function loadEngine(p: ForwardParams): Promise<FeatureExtractor> {
  const { loadExtractor } = await import('../lib/model/extractor.ts');
  return loadExtractor({
    weights: { kind: 'uri', uri: p.weightsDir },
    inputSize: p.inputSize,
    pooling: p.pooling,
    backend: p.engine,
    warmUp: true,
  });
}

async function forward(p: ForwardParams): Promise<ForwardResult> {
  const t = performance.now();
  const extractor = await loadEngine(p);
  const loadMs = timeSince(t);
  say(`${extractor.backend} loaded in ${Math.round(loadMs)} ms`);
  // Values in the range of caffe-preprocessed pixels; content does not change a dense conv's cost.
  const rand = seededRandom(3);
  const pixels = p.inputSize * p.inputSize * 3;
  const images = Array.from({ length: p.batch }, () =>
    Float32Array.from({ length: pixels }, () => rand() * 255 - 120),
  );
  for (let i = 0; i < p.warmup; i++) await extractor.extractBatch(images);
  const samplesMsPerImage: number[] = [];
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let i = 0; i < p.reps; i++) {
    const t0 = performance.now();
    const out = await extractor.extractBatch(images);
    samplesMsPerImage.push(timeSince(t0) / p.batch);
    if (out.length !== p.batch) throw new Error(`extractBatch returned ${out.length} vectors for ${p.batch}`);
    say(`rep ${i + 1}/${p.reps}: ${Math.round(timeSince(t0) / p.batch)} ms/image`);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuOverWall = (cpu.user + cpu.system) / 1000 / timeSince(wall0);
  const backend = String(extractor.backend);
  extractor.dispose();
  return { samplesMsPerImage, loadMs, backend, cpuOverWall };
}

export interface FitParams {
  n: number;
  d: number;
  classes: number;
  sparsity: number;
  seed: number;
  /** Rows of a small fit run first in the same process (JIT, worker threads, wasm compile). */
  warmupN: number;
}

async function fit(p: FitParams): Promise<Record<string, unknown>> {
  const { benchFit } = await import('./fit.ts');
  if (p.warmupN > 0) {
    benchFit({ n: p.warmupN, d: p.d, classes: p.classes, sparsity: p.sparsity, seed: p.seed + 1 });
  }
  const result = benchFit({ n: p.n, d: p.d, classes: p.classes, sparsity: p.sparsity, seed: p.seed });
  return { ...result };
}

async function quality(p: import('./quality.ts').BenchQualityParams): Promise<Record<string, unknown>> {
  const { benchQuality } = await import('./quality.ts');
  return { ...benchQuality(p) };
}

async function batch(p: import('./batch.ts').BatchBenchParams): Promise<Record<string, unknown>> {
  const { runBatchBench } = await import('./batch.ts');
  return { ...(await runBatchBench(p)) };
}

const TASKS: Record<string, (params: never) => Promise<unknown>> = {
  'probe-engines': probeEngines,
  'prepare-weights': prepareWeights,
  decode,
  forward,
  fit,
  quality,
  batch,
};

async function main(): Promise<void> {
  const [task = '', json = '{}'] = process.argv.slice(2);
  const run = TASKS[task];
  if (run === undefined) {
    process.stderr.write(`unknown task '${task}'; tasks: ${Object.keys(TASKS).join(', ')}\n`);
    process.exit(2);
  }
  const result = (await run(JSON.parse(json) as never)) as Record<string, unknown>;
  const line = `${RESULT_MARKER}${JSON.stringify({ ...result, usage: ownUsage() })}\n`;
  // Engines may keep native threads alive; exit once the result line is out.
  process.stdout.write(line, () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    if (err instanceof Error && err.cause !== undefined)
      process.stderr.write(`cause: ${String(err.cause)}\n`);
    process.exit(1);
  });
}
