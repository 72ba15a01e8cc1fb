/**
 * Benchmark of the feature extraction engines on VGG16 at its real sizes (random weights, same
 * FLOPs as real ones): onnxruntime-node (1 and 2 threads, session variants, fp32 and int8) and tfjs' wasm
 * backend, at batch 1 and 8. Prints a table and JSON (stdout); logs progress to stderr.
 *
 *   node bin/run-ts.js bench/extract-engines.ts [--engines onnx,wasm] [--rounds 3] [--json out.json]
 *     [--only REGEX]   (cases whose "label size pooling bN" matches, e.g. --only 't2 .*150.* b8')
 *     [--passes N]     (run the selected cases N times, interleaved, and keep each case's best
 *                       pass: on a shared machine that filters out other processes' bursts)
 *
 * Each case loads its engine (load includes one warm-up pass), runs one more untimed batch,
 * then `rounds` timed batches; ms/image is the median round divided by the batch size.
 * `cpu/wall` is process CPU time over wall time while timing: below the thread count means the
 * machine was busy with something else and the number is pessimistic. `cpu ms/image` is the CPU
 * time spent per image (all threads; includes spin-waiting unless spinning is off), which
 * contention inflates much less than wall time.
 */
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { loadExtractor } from '../lib/model/extractor.ts';
import { loadOnnxExtractor, ONNX_BACKEND, type OnnxSessionTuning } from '../lib/model/onnx/onnx-extractor.ts';
import type { FeatureSpec, Pooling } from '../lib/model/spec.ts';
import type { FeatureExtractor } from '../lib/model/types.ts';
import { randomWeights, randomWeightsId } from '../lib/model/weights.ts';

const { values: args } = parseArgs({
  options: {
    engines: { type: 'string', default: 'onnx,wasm' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'string' },
    only: { type: 'string' },
    passes: { type: 'string', default: '1' },
  },
});
const engines = new Set((args.engines ?? '').split(','));
const rounds = Math.max(1, Number(args.rounds));
const passes = Math.max(1, Number(args.passes));
const SEED = 1;

interface Case {
  engine: 'onnx' | 'wasm';
  size: number;
  pooling: Pooling;
  batch: number;
  threads?: number;
  tuning?: OnnxSessionTuning;
  /** The quantized graph (load includes its calibration). @default 'fp32' */
  precision?: 'fp32' | 'int8';
  label: string;
}

interface Result extends Case {
  loadMs: number;
  msPerImage: number;
  minMsPerImage: number;
  cpuPerWall: number;
  cpuMsPerImage: number;
  rounds: number;
  /** ms/image of every pass (the reported numbers are from the best one). */
  passes: number[];
}

function images(n: number, size: number): Float32Array[] {
  return Array.from({ length: n }, (_, k) =>
    Float32Array.from({ length: size * size * 3 }, (_, i) => Math.sin(i * 0.37 + k * 1.7) * 110),
  );
}

function spec(size: number, pooling: Pooling, precision: 'fp32' | 'int8' = 'fp32'): FeatureSpec {
  return {
    ...(precision === 'int8' ? { precision } : {}),
    model: 'vgg16',
    weights: randomWeightsId(SEED),
    input: [size, size],
    pooling,
    preprocessing: 'caffe',
    resize: 'bilinear',
  };
}

const weights = randomWeights(SEED);

async function load(c: Case): Promise<FeatureExtractor> {
  if (c.engine === 'onnx') {
    return loadOnnxExtractor({
      weights,
      spec: spec(c.size, c.pooling, c.precision),
      ...(c.threads === undefined ? {} : { threads: c.threads }),
      ...(c.tuning === undefined ? {} : { tuning: c.tuning }),
    });
  }
  return loadExtractor({
    weights: { kind: 'random', seed: SEED },
    inputSize: c.size,
    pooling: c.pooling,
    backend: 'wasm',
  });
}

async function run(c: Case): Promise<Result> {
  const t0 = performance.now();
  const extractor = await load(c);
  const loadMs = performance.now() - t0;
  try {
    const batch = images(c.batch, c.size);
    await extractor.extractBatch(batch); // the first run at a new batch size plans memory
    // Slow cases (wasm at batch 8 takes ~10 s a round) get fewer rounds.
    const n = c.engine === 'wasm' && c.batch > 1 ? Math.min(rounds, 2) : rounds;
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    for (let r = 0; r < n; r++) {
      const t = performance.now();
      await extractor.extractBatch(batch);
      times.push(performance.now() - t);
    }
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - w0;
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)] ?? Number.NaN;
    return {
      ...c,
      loadMs: Math.round(loadMs),
      msPerImage: round1(median / c.batch),
      minMsPerImage: round1((times[0] ?? Number.NaN) / c.batch),
      cpuPerWall: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100) / 100,
      cpuMsPerImage: round1((cpu.user + cpu.system) / 1000 / (n * c.batch)),
      rounds: n,
      passes: [],
    };
  } finally {
    extractor.dispose();
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Largest element-wise difference between the engines at the real size, relative to max |x|. */
async function agreement(size: number, pooling: Pooling): Promise<number> {
  const image = images(1, size);
  const a = await loadOnnxExtractor({ weights, spec: spec(size, pooling) });
  const b = await loadExtractor({
    weights: { kind: 'random', seed: SEED },
    inputSize: size,
    pooling,
    backend: 'wasm',
  });
  try {
    const [x] = await a.extractBatch(image);
    const [y] = await b.extractBatch(image);
    if (x === undefined || y === undefined) return Number.NaN;
    let scale = 0;
    let diff = 0;
    y.forEach((v, i) => {
      scale = Math.max(scale, Math.abs(v));
      diff = Math.max(diff, Math.abs(v - (x[i] ?? Number.NaN)));
    });
    return diff / scale;
  } finally {
    a.dispose();
    b.dispose();
  }
}

const cases: Case[] = [];
if (engines.has('onnx')) {
  for (const [size, pooling] of [
    [150, 'flatten'],
    [224, 'avg'],
  ] as const) {
    for (const threads of [1, 2])
      for (const batch of [1, 8])
        cases.push({ engine: 'onnx', size, pooling, batch, threads, label: `onnx t${threads}` });
  }
  // Session variants, at the target size on 2 threads.
  const variants: Array<[string, OnnxSessionTuning]> = [
    ['onnx t2 arena off', { enableCpuMemArena: false }],
    ['onnx t2 mempattern off', { enableMemPattern: false }],
    ['onnx t2 parallel', { executionMode: 'parallel' }],
    ['onnx t2 spinning', { allowSpinning: true }],
  ];
  for (const [label, tuning] of variants)
    for (const batch of [1, 8])
      cases.push({ engine: 'onnx', size: 150, pooling: 'flatten', batch, threads: 2, tuning, label });
  for (const batch of [1, 4, 8])
    cases.push({
      engine: 'onnx',
      size: 150,
      pooling: 'flatten',
      batch,
      threads: 2,
      tuning: { batch },
      label: `onnx t2 fixed batch ${batch}`,
    });
  // The int8 engine (docs/BENCHMARKS.md, "int8 vs fp32"), beside the fp32 'onnx t1/t2' rows above.
  for (const [size, pooling] of [
    [150, 'flatten'],
    [224, 'avg'],
  ] as const)
    for (const threads of [1, 2])
      for (const batch of [1, 8])
        cases.push({
          engine: 'onnx',
          size,
          pooling,
          batch,
          threads,
          precision: 'int8',
          label: `onnx int8 t${threads}`,
        });
  cases.push({ engine: 'onnx', size: 150, pooling: 'flatten', batch: 4, threads: 2, label: 'onnx t2' });
  cases.push({ engine: 'onnx', size: 150, pooling: 'flatten', batch: 16, threads: 2, label: 'onnx t2' });
}
if (engines.has('wasm')) {
  for (const [size, pooling] of [
    [150, 'flatten'],
    [224, 'avg'],
  ] as const)
    for (const batch of [1, 8]) cases.push({ engine: 'wasm', size, pooling, batch, label: 'wasm (tfjs)' });
}

const only = args.only === undefined ? undefined : new RegExp(args.only);
const selected = cases.filter((c) => only?.test(`${c.label} ${c.size} ${c.pooling} b${c.batch}`) ?? true);

const started = new Date().toISOString();
const loadBefore = loadavg();
const best = new Map<Case, Result>();
for (let pass = 1; pass <= passes; pass++) {
  for (const c of selected) {
    process.stderr.write(
      `[${pass}/${passes}] ${c.label} ${c.size}x${c.size} ${c.pooling} batch ${c.batch} … `,
    );
    const r = await run(c);
    process.stderr.write(
      `${r.msPerImage} ms/image (cpu/wall ${r.cpuPerWall}, cpu ${r.cpuMsPerImage} ms/image)\n`,
    );
    const prev = best.get(c);
    const all = [...(prev?.passes ?? []), r.msPerImage];
    best.set(c, { ...(prev === undefined || r.msPerImage < prev.msPerImage ? r : prev), passes: all });
  }
}
const results = selected.flatMap((c) => best.get(c) ?? []);
const agree =
  engines.has('onnx') && engines.has('wasm')
    ? { '150 flatten': await agreement(150, 'flatten'), '224 avg': await agreement(224, 'avg') }
    : undefined;

const report = {
  started,
  node: process.version,
  cpu: cpus()[0]?.model,
  cores: availableParallelism(),
  loadavgBefore: loadBefore.map((x) => round1(x)),
  loadavgAfter: loadavg().map((x) => round1(x)),
  rounds,
  passes,
  onnxBackendName: String(ONNX_BACKEND),
  maxRelativeDiffOnnxVsWasm: agree,
  results: results.map(({ tuning, ...r }) => ({ ...r, tuning: tuning ?? {} })),
};

const rows = results.map((r) => [
  r.label,
  `${r.size}x${r.size} ${r.pooling}`,
  String(r.batch),
  r.msPerImage.toFixed(1),
  r.minMsPerImage.toFixed(1),
  String(r.loadMs),
  r.cpuPerWall.toFixed(2),
  r.cpuMsPerImage.toFixed(1),
]);
const head = ['engine', 'input', 'batch', 'ms/image', 'min', 'load ms', 'cpu/wall', 'cpu ms/image'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
console.log(line(head));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const row of rows) console.log(line(row));
console.log();
console.log(JSON.stringify(report, null, 2));
if (args.json !== undefined) await writeFile(args.json, `${JSON.stringify(report, null, 2)}\n`);
