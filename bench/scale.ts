/**
 * The scale benchmark (opt-in: `npm run bench -- --only scale`): readiness and training at real
 * upload sizes, on synthetic data seeded into the local stack's S3 emulator (no extraction).
 *
 * Per size N: a fresh emulator process, seeded with N images + N feature files (8192 values,
 * the measured density); the check-readiness handler timed in its own process; then, for the
 * training sizes, the CDK-synthesized state machine (CheckReadiness → TrainHead → Promote) in
 * another process, with each state's time and the process's RSS before and after it.
 *
 * Sizes: `--scale-n 25000,100000,200000` (or TLEARN_BENCH_SCALE_N) for readiness; training at
 * those ≤ 100,000 unless TLEARN_BENCH_SCALE_TRAIN_N lists others (`none`: readiness only). The fit's iterations are capped
 * (TLEARN_BENCH_SCALE_MAX_ITER, default 10): memory does not depend on them, time per
 * iteration is reported. TLEARN_BENCH_SCALE_KEEP=1 keeps the seeded data dirs
 * (`.tlearn/bench/scale-N/`, 33 KB per image) and reuses them on the next run.
 */
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compactMatrixBytes, MEASURED_DENSITY } from '../lib/training/capacity.ts';
import { ChildRunError, RESULT_MARKER, spawnNode } from './lib/child.ts';
import { roundSig, summarize } from './lib/stats.ts';
import type { BenchContext, Benchmark, Figure } from './lib/types.ts';

const CHILD = 'bench/scale-child.ts';
const DATASET = 'scale';
const LABELS = 10;
const D = 8192;

function sizes(value: string | undefined, fallback: number[]): number[] {
  if (!value) return fallback;
  if (value === 'none') return [];
  const out = value.split(',').map((s) => Number(s.trim().replace(/_/g, '')));
  if (out.some((n) => !Number.isInteger(n) || n < 2 * LABELS))
    throw new Error(`scale sizes must be whole numbers ≥ ${2 * LABELS} (got '${value}')`);
  return out;
}

/** Sizes of a run, from the environment (`--scale-n` sets TLEARN_BENCH_SCALE_N). */
export function scaleSizes(env: NodeJS.ProcessEnv = process.env): {
  readiness: number[];
  train: number[];
  maxIter: number;
} {
  const readiness = sizes(env.TLEARN_BENCH_SCALE_N, [25_000, 100_000, 200_000]);
  const train = sizes(
    env.TLEARN_BENCH_SCALE_TRAIN_N,
    readiness.filter((n) => n <= 100_000),
  );
  return { readiness, train, maxIter: Number(env.TLEARN_BENCH_SCALE_MAX_ITER ?? 10) };
}

async function runChild<T>(ctx: BenchContext, mode: string, params: object, timeoutMs: number): Promise<T> {
  const res = await spawnNode(['bin/run-ts.js', CHILD, mode, JSON.stringify(params)], {
    cwd: ctx.root,
    timeoutMs,
    verbose: ctx.mode.verbose,
  });
  const line = res.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith(RESULT_MARKER));
  if (res.code !== 0 || line === undefined)
    throw new ChildRunError(`scale child '${mode}' failed (exit ${res.code ?? res.signal})`, res.stderrTail);
  return JSON.parse(line.slice(RESULT_MARKER.length)) as T;
}

interface EmulatorProcess {
  endpoint: string;
  /** Objects restored at start, and how long the start took. */
  restored: number;
  startMs: number;
  /** Peak RSS so far (VmHWM), MB. */
  peakMB(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** Starts the emulator child; it runs until its stdin closes. */
async function startEmulatorChild(ctx: BenchContext, dataDir: string): Promise<EmulatorProcess> {
  const child = spawn(process.execPath, ['bin/run-ts.js', CHILD, 'emulator', JSON.stringify({ dataDir })], {
    cwd: ctx.root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    err = (err + c).slice(-4000);
  });
  type Started = { endpoint: string; restored: number; ms: number };
  const started = await new Promise<Started>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n').find((l) => l.startsWith(RESULT_MARKER));
      if (line) resolve(JSON.parse(line.slice(RESULT_MARKER.length)) as Started);
    });
    child.on('exit', (code) => reject(new ChildRunError(`the emulator exited (${code})`, err)));
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    endpoint: started.endpoint,
    restored: started.restored,
    startMs: started.ms,
    async peakMB() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      return kb ? Math.round(Number(kb) / 1024) : undefined;
    },
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface Usage {
  usage: { maxRssKB: number };
}
interface ReadinessResult extends Usage {
  ms: number;
  rssBeforeMB: number;
  report: Record<string, unknown>;
}
interface TrainResult extends Usage {
  ms: number;
  steps: { state: string; task: string; ms: number; rssBeforeMB: number; peakRssMB: number }[];
  training?: {
    nTrain: number;
    nTest: number;
    nIter: number;
    timingsMs: { load: number; fit: number; total: number };
    matrix: { bytes: number; density: number };
  };
}

const mb = (kb: number) => Math.round(kb / 1024);

async function measureSize(ctx: BenchContext, n: number, train: boolean, maxIter: number): Promise<Figure[]> {
  const dataDir = join(ctx.workDir, `scale-${n}`);
  const marker = join(dataDir, '.seeded');
  const keep = process.env.TLEARN_BENCH_SCALE_KEEP === '1';
  let seeded: { ms: number; bytes: number; reused?: boolean };
  if (keep && (await readFile(marker, 'utf8').catch(() => '')).trim() === String(n)) {
    ctx.progress(`scale: reusing the ${n.toLocaleString('en-US')} images + features seeded in ${dataDir}`);
    seeded = { ms: 0, bytes: 0, reused: true };
  } else {
    await rm(dataDir, { recursive: true, force: true });
    ctx.progress(`scale: seeding ${n.toLocaleString('en-US')} images + features into ${dataDir}`);
    seeded = await runChild<{ ms: number; bytes: number }>(
      ctx,
      'seed',
      { dataDir, dataset: DATASET, n, labels: LABELS },
      3_600_000,
    );
    await writeFile(marker, `${n}\n`);
  }
  ctx.progress(`scale: seeded in ${(seeded.ms / 1000).toFixed(0)} s; starting the emulator`);
  const emu = await startEmulatorChild(ctx, dataDir);
  ctx.progress(`scale: emulator restored ${emu.restored} objects in ${(emu.startMs / 1000).toFixed(0)} s`);
  try {
    const reps = ctx.reps(3, 1);
    const runs: ReadinessResult[] = [];
    for (let i = 0; i < reps; i++) {
      runs.push(
        await runChild<ReadinessResult>(
          ctx,
          'readiness',
          { endpoint: emu.endpoint, dataset: DATASET },
          900_000,
        ),
      );
      ctx.progress(
        `scale: readiness ${i + 1}/${reps} at ${n}: ${((runs.at(-1)?.ms ?? 0) / 1000).toFixed(2)} s`,
      );
    }
    const figures: Figure[] = [
      {
        name: `scale-readiness-${n}`,
        group: 'scale',
        title: `check-readiness handler, ${n.toLocaleString('en-US')} images + features in ${LABELS} labels (emulator)`,
        unit: 'ms',
        better: 'lower',
        status: 'ok',
        summary: summarize(runs.map((r) => r.ms)),
        peakRssMB: Math.max(...runs.map((r) => mb(r.usage.maxRssKB))),
        params: { images: n, labels: LABELS, reps },
        extra: {
          report: runs[0]?.report,
          seedMs: seeded.reused ? 'reused' : Math.round(seeded.ms),
          emulatorRestoreMs: Math.round(emu.startMs),
          featureBytes: seeded.bytes,
          emulatorPeakMB: await emu.peakMB(),
        },
        note: `target at 200k: ≤ 20 s`,
      },
    ];
    if (train) {
      ctx.progress(`scale: training through the state machine at ${n}`);
      const r = await runChild<TrainResult>(
        ctx,
        'train',
        { endpoint: emu.endpoint, dataset: DATASET, maxIter },
        3_600_000,
      );
      const t = r.training;
      const trainStep = r.steps.find((s) => s.task === 'train-head');
      const peak = mb(r.usage.maxRssKB);
      const matrixMB = t ? Math.round(t.matrix.bytes / 2 ** 20) : undefined;
      const growth = trainStep ? peak - trainStep.rssBeforeMB : undefined;
      figures.push({
        name: `scale-train-${n}`,
        group: 'scale',
        title: `training state machine (synthesized), ${n.toLocaleString('en-US')} x ${D}, ${LABELS} classes, ≤ ${maxIter} L-BFGS iterations`,
        unit: 'ms',
        better: 'lower',
        status: 'ok',
        summary: summarize([r.ms]),
        peakRssMB: peak,
        params: { images: n, d: D, labels: LABELS, maxIter },
        extra: {
          steps: r.steps.map((s) => ({ ...s, ms: Math.round(s.ms) })),
          matrixMB,
          density: t?.matrix.density,
          trainHeadRssGrowthMB: growth,
          peakOverMatrix: matrixMB ? roundSig(peak / matrixMB, 3) : undefined,
          growthOverMatrix: matrixMB && growth !== undefined ? roundSig(growth / matrixMB, 3) : undefined,
          nIter: t?.nIter,
          loadMs: t?.timingsMs.load,
          fitMs: t?.timingsMs.fit,
          msPerIteration: t ? Math.round(t.timingsMs.fit / Math.max(1, t.nIter)) : undefined,
          emulatorPeakMB: await emu.peakMB(),
        },
        note: `peak ${peak} MB = ${matrixMB ? (peak / matrixMB).toFixed(2) : '?'} x the ${matrixMB} MB compact matrix (target ≤ 1.5)`,
      });
    }
    return figures;
  } finally {
    await emu.stop();
    if (!keep) await rm(dataDir, { recursive: true, force: true });
  }
}

/** Linear fit through the measured training sizes, evaluated at `n`. */
function extrapolate(figures: Figure[], n: number): Figure | undefined {
  const pts = figures
    .filter((f) => f.name.startsWith('scale-train-') && f.peakRssMB !== undefined)
    .map((f) => ({ n: Number(f.params?.images), peak: f.peakRssMB as number, ms: f.summary?.median ?? 0 }))
    .sort((a, b) => a.n - b.n);
  const a = pts[0];
  const b = pts[pts.length - 1];
  if (!a || !b || a.n === b.n || pts.some((p) => p.n >= n)) return undefined;
  const at = (ya: number, yb: number) => ya + ((yb - ya) * (n - a.n)) / (b.n - a.n);
  const peak = Math.round(at(a.peak, b.peak));
  const ms = at(a.ms, b.ms);
  const matrixMB = Math.round(compactMatrixBytes(n, D, MEASURED_DENSITY.flatten) / 2 ** 20);
  return {
    name: `scale-train-${n}-extrapolated`,
    group: 'scale',
    title: `training at ${n.toLocaleString('en-US')} x ${D}: EXTRAPOLATED linearly from ${a.n} and ${b.n} (not measured)`,
    unit: 'ms',
    better: 'lower',
    status: 'ok',
    summary: summarize([ms]),
    peakRssMB: peak,
    params: { images: n, from: [a.n, b.n] },
    extra: { matrixMBEstimate: matrixMB },
    note: `extrapolated, not measured: peak ~${peak} MB`,
  };
}

/** The scale benchmark entry of the suite. */
export function scaleBench(): Benchmark {
  return {
    name: 'scale',
    group: 'scale',
    describe:
      'readiness at 25k/100k/200k keys and training at 25k/100k x 8192 through the synthesized state machine on a seeded emulator; time + peak RSS per step (opt-in; --scale-n to resize)',
    quick: false,
    byDefault: false,
    async run(ctx) {
      const { readiness, train, maxIter } = scaleSizes();
      const all = [...new Set([...readiness, ...train])].sort((a, b) => a - b);
      const figures: Figure[] = [];
      for (const n of all) figures.push(...(await measureSize(ctx, n, train.includes(n), maxIter)));
      const wanted = Math.max(...readiness);
      const extra = train.includes(wanted) ? undefined : extrapolate(figures, wanted);
      if (extra) figures.push(extra);
      return figures;
    },
  };
}
