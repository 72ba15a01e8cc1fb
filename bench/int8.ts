/**
 * int8 vs fp32 (docs/BENCHMARKS.md, "int8 vs fp32"): the quantized engine's whole-job speed and
 * what it costs in accuracy, each measured the way a user would get it, through `tlearn extract`
 * and `tlearn fit`.
 *
 * - `int8-extract`: `tlearn extract` on the same JPEGs as `extract-cli`, fp32 and
 *   `--precision int8` runs interleaved (so both see the same neighbours on a shared machine);
 *   the figure is fp32 wall time / int8 wall time per pair, with the CPU-time ratio beside it.
 * - `int8-accuracy`: scikit-learn's handwritten digits (1,797 real scans, written as 64x64 PNGs
 *   by `lib/digits.py`), features extracted at both precisions, then heads fitted with
 *   `tlearn fit` on several stratified splits; the figure is int8's held-out accuracy minus
 *   fp32's, in points, per split. With the benchmark's seeded random weights (no real VGG16 is
 *   installed here) it is indicative only: run it with real weights to judge a deployment.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeNpy } from '../lib/features/npy.ts';
import { ChildRunError, kbToMB, spawnNode } from './lib/child.ts';
import { countFiles, labelledJpegFolder } from './lib/fixtures.ts';
import { median, percentile, roundSig, summarize } from './lib/stats.ts';
import type { BenchContext, Benchmark, Figure } from './lib/types.ts';

/** The speed target of the int8 engine: whole-job `tlearn extract` this many times faster. */
export const INT8_SPEEDUP_TARGET = 1.8;
/** The accuracy target: int8 within this many points of fp32. */
export const INT8_ACCURACY_TARGET_POINTS = 1;
/** Seeds of the stratified splits the heads are fitted on (`tlearn fit --seed`). */
const SPLIT_SEEDS = [1, 2, 3, 4, 5];
/** Digits used in --quick (it checks that the suite runs). */
const QUICK_DIGITS = 40;
/** `tlearn extract` options in --quick: a tiny input, as the local-stack suites use. */
const QUICK_EXTRACT_ARGS = ['--size', '32', '--pooling', 'avg'];

type Precision = 'fp32' | 'int8';

interface ExtractRun {
  precision: Precision;
  wallMs: number;
  cpuMs: number | undefined;
  rssMB: number | undefined;
  backend: string | undefined;
}

/** One `tlearn extract` of `dir` into `out` (emptied first), checked to have written `count` features. */
async function extractOnce(
  ctx: BenchContext,
  args: { dir: string; out: string; count: number; weightsDir: string; precision: Precision },
): Promise<ExtractRun> {
  await rm(args.out, { recursive: true, force: true });
  const argv = ['bin/tlearn.js', 'extract', args.dir, '--out', args.out, '--weights', args.weightsDir];
  if (args.precision === 'int8') argv.push('--precision', 'int8');
  if (ctx.mode.quick) argv.push(...QUICK_EXTRACT_ARGS);
  const res = await spawnNode(argv, {
    cwd: ctx.root,
    timeoutMs: 3_600_000,
    measureUsage: true,
    verbose: ctx.mode.verbose,
  });
  if (res.code !== 0) {
    throw new ChildRunError(
      `tlearn extract --precision ${args.precision} exited with ${res.code ?? res.signal}`,
      res.stderrTail,
    );
  }
  const written = await countFiles(args.out, '.npy');
  if (written !== args.count) {
    throw new ChildRunError(
      `tlearn extract wrote ${written} features for ${args.count} images`,
      res.stderrTail,
    );
  }
  const found = [...res.stderr.matchAll(/"(?:backend|engine)":"([\w-]+)"/g)].map((m) => m[1]);
  return {
    precision: args.precision,
    wallMs: res.wallMs,
    cpuMs: res.usage ? res.usage.userCpuMs + res.usage.systemCpuMs : undefined,
    rssMB: res.usage ? kbToMB(res.usage.maxRssKB) : undefined,
    backend: found[found.length - 1],
  };
}

/** fp32 and int8 runs in alternating order (fp32 first on even reps), so drift hits both alike. */
async function pairedRuns(
  ctx: BenchContext,
  args: { dir: string; count: number; weightsDir: string; reps: number; label: string },
): Promise<{ fp32: ExtractRun[]; int8: ExtractRun[] }> {
  const runs: Record<Precision, ExtractRun[]> = { fp32: [], int8: [] };
  for (let i = 0; i < args.reps; i++) {
    const order: Precision[] = i % 2 === 0 ? ['fp32', 'int8'] : ['int8', 'fp32'];
    for (const precision of order) {
      const out = join(ctx.workDir, `int8-out-${precision}`);
      const run = await extractOnce(ctx, { ...args, out, precision });
      runs[precision].push(run);
      ctx.progress(`  ${args.label} ${precision} ${i + 1}/${args.reps}: ${(run.wallMs / 1000).toFixed(1)} s`);
    }
  }
  return runs;
}

const ratioOf = (a: number[], b: number[]): number[] => a.map((x, i) => x / (b[i] ?? Number.NaN));

/** `tlearn extract` fp32 vs int8, whole job. */
export function int8ExtractBench(): Benchmark {
  return {
    name: 'int8-extract',
    group: 'int8',
    describe: `tlearn extract --precision int8 vs fp32 on 200 (quick: 4) JPEGs, whole job: fp32 time / int8 time (target ≥ ${INT8_SPEEDUP_TARGET}x)`,
    quick: true,
    byDefault: true,
    async run(ctx) {
      const n = ctx.mode.quick ? 4 : 200;
      const weights = await ctx.fixtures.weights();
      ctx.progress(`  preparing ${n} JPEGs (once)`);
      const dir = await labelledJpegFolder(ctx.workDir, n);
      if (!ctx.mode.quick) {
        // Warm-up on 4 images: OS file cache, tsx transpile cache.
        const warm = await labelledJpegFolder(ctx.workDir, 4);
        await pairedRuns(ctx, { dir: warm, count: 4, weightsDir: weights.dir, reps: 1, label: 'warm-up' });
      }
      const reps = ctx.reps(3, 1);
      const runs = await pairedRuns(ctx, { dir, count: n, weightsDir: weights.dir, reps, label: 'extract' });
      for (const p of ['fp32', 'int8'] as const) {
        await rm(join(ctx.workDir, `int8-out-${p}`), { recursive: true, force: true });
      }
      const wall = (p: Precision) => runs[p].map((r) => r.wallMs);
      const cpu = (p: Precision) => runs[p].map((r) => r.cpuMs ?? Number.NaN);
      const speedups = ratioOf(wall('fp32'), wall('int8'));
      const cpuRatio = median(ratioOf(cpu('fp32'), cpu('int8')));
      const [fp32Ms, int8Ms] = [median(wall('fp32')), median(wall('int8'))];
      const speedup = median(speedups);
      const rss = (p: Precision) => Math.max(...runs[p].map((r) => r.rssMB ?? 0));
      return [
        {
          name: 'int8-extract',
          group: 'int8',
          title: `tlearn extract --precision int8 vs fp32, ${n} JPEGs 500x375 → 150x150 flatten, whole job (fp32 time / int8 time)`,
          unit: 'x',
          better: 'higher',
          status: 'ok',
          summary: summarize(speedups.map((s) => roundSig(s, 3))),
          backend: `${runs.int8[0]?.backend ?? '?'} int8 vs ${runs.fp32[0]?.backend ?? '?'} fp32`,
          peakRssMB: rss('int8'),
          params: {
            images: n,
            reps,
            order: 'fp32/int8 alternating',
            weights: 'real-size VGG16 (seeded random values) from disk',
          },
          extra: {
            fp32WholeJobMs: Math.round(fp32Ms),
            int8WholeJobMs: Math.round(int8Ms),
            fp32ImagesPerSecond: roundSig(n / (fp32Ms / 1000), 3),
            int8ImagesPerSecond: roundSig(n / (int8Ms / 1000), 3),
            cpuTimeRatio: roundSig(cpuRatio, 3),
            fp32PeakRssMB: rss('fp32'),
            int8PeakRssMB: rss('int8'),
            targetSpeedup: INT8_SPEEDUP_TARGET,
            met: speedup >= INT8_SPEEDUP_TARGET,
          },
          note: `fp32 ${(fp32Ms / 1000).toFixed(1)} s, int8 ${(int8Ms / 1000).toFixed(1)} s; CPU time fp32/int8 ${roundSig(cpuRatio, 3)}x; target ≥ ${INT8_SPEEDUP_TARGET}x: ${
            speedup >= INT8_SPEEDUP_TARGET ? 'met' : 'NOT met'
          }${ctx.mode.quick ? ' (--quick: 32x32 avg; process start, loading and int8 calibration dominate)' : ''}`,
        },
      ];
    },
  };
}

/** A Python with scikit-learn and Pillow: TLEARN_BENCH_PYTHON, python3, or Debian's /usr/bin/python3. */
async function findPython(): Promise<string | undefined> {
  const candidates = [process.env.TLEARN_BENCH_PYTHON, 'python3', '/usr/bin/python3'].filter(
    (c): c is string => typeof c === 'string' && c !== '',
  );
  for (const python of candidates) {
    const ok = await new Promise<boolean>((resolve) => {
      const child = spawn(python, ['-c', 'import sklearn, PIL, numpy'], { stdio: 'ignore' });
      child.on('error', () => resolve(false));
      child.on('close', (code) => resolve(code === 0));
    });
    if (ok) return python;
  }
  return undefined;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new ChildRunError(`${cmd} ${args.join(' ')} exited with ${code}`, stderr.slice(-2000))),
    );
  });
}

/** The digits as labelled PNGs under the work folder, written once per size. */
async function digitsFolder(ctx: BenchContext, python: string, limit: number | undefined): Promise<string> {
  const dir = join(ctx.workDir, limit === undefined ? 'digits-64' : `digits-64-first${limit}`);
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return dir;
  await rm(dir, { recursive: true, force: true });
  ctx.progress(`  writing scikit-learn's digits as 64x64 PNGs (once) into ${dir}`);
  await run(python, ['bench/lib/digits.py', dir, ...(limit === undefined ? [] : [String(limit)])], ctx.root);
  await writeFile(marker, 'done\n');
  return dir;
}

/** `{label}/{file}.npy` paths under a features folder. */
async function npyFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => e.endsWith('.npy')).sort();
}

/** Per image ‖fp32 − int8‖ / ‖fp32‖ and the cosine of the two vectors. */
async function featureError(
  fp32Dir: string,
  int8Dir: string,
): Promise<{ relL2: number[]; cosine: number[] }> {
  const relL2: number[] = [];
  const cosine: number[] = [];
  for (const file of await npyFiles(fp32Dir)) {
    const a = decodeNpy(await readFile(join(fp32Dir, file))).data;
    const b = decodeNpy(await readFile(join(int8Dir, file))).data;
    let diff = 0;
    let aa = 0;
    let bb = 0;
    let ab = 0;
    for (let i = 0; i < a.length; i++) {
      const x = a[i] as number;
      const y = b[i] as number;
      diff += (x - y) ** 2;
      aa += x * x;
      bb += y * y;
      ab += x * y;
    }
    relL2.push(Math.sqrt(diff / aa));
    cosine.push(ab / Math.sqrt(aa * bb));
  }
  return { relL2, cosine };
}

/** Held-out accuracy of `tlearn fit FEATURES --seed SEED` (default options: C 1, 20 % test). */
async function fitAccuracy(ctx: BenchContext, features: string, seed: number): Promise<number> {
  const out = join(ctx.workDir, 'int8-fit');
  await rm(out, { recursive: true, force: true });
  const res = await spawnNode(
    ['bin/tlearn.js', 'fit', features, '--out', out, '--seed', String(seed), '--quiet'],
    {
      cwd: ctx.root,
      timeoutMs: 1_800_000,
      verbose: ctx.mode.verbose,
    },
  );
  if (res.code !== 0)
    throw new ChildRunError(`tlearn fit exited with ${res.code ?? res.signal}`, res.stderrTail);
  const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { accuracy: number | null };
  await rm(out, { recursive: true, force: true });
  if (report.accuracy === null)
    throw new ChildRunError('tlearn fit reported no held-out accuracy', res.stderrTail);
  return report.accuracy;
}

const pct = (x: number): number => Math.round(x * 10_000) / 100;

/** Accuracy of heads on int8 vs fp32 features of a real image set (scikit-learn's digits). */
export function int8AccuracyBench(): Benchmark {
  const name = 'int8-accuracy';
  return {
    name,
    group: 'int8',
    describe: `held-out accuracy of heads on int8 vs fp32 features of scikit-learn's digits (1,797 real scans; quick: ${QUICK_DIGITS}), ${SPLIT_SEEDS.length} splits: int8 − fp32 in points (target within ${INT8_ACCURACY_TARGET_POINTS})`,
    quick: true,
    byDefault: true,
    async run(ctx): Promise<Figure[]> {
      const title =
        "heads on int8 vs fp32 features, scikit-learn's digits as 64x64 PNGs → 150x150 flatten (int8 − fp32 held-out accuracy)";
      const python = await findPython();
      if (python === undefined) {
        return [
          {
            name,
            group: 'int8',
            title,
            unit: 'points',
            better: 'higher',
            status: 'skipped',
            error:
              'needs Python 3 with scikit-learn and Pillow (apt-get install python3-sklearn python3-pil, or set TLEARN_BENCH_PYTHON)',
          },
        ];
      }
      const weights = await ctx.fixtures.weights();
      const dir = await digitsFolder(ctx, python, ctx.mode.quick ? QUICK_DIGITS : undefined);
      const count = await countFiles(dir, '.png');
      const features: Record<Precision, string> = {
        fp32: join(ctx.workDir, 'digits-features-fp32'),
        int8: join(ctx.workDir, 'digits-features-int8'),
      };
      const runs: Partial<Record<Precision, ExtractRun>> = {};
      for (const precision of ['fp32', 'int8'] as const) {
        runs[precision] = await extractOnce(ctx, {
          dir,
          out: features[precision],
          count,
          weightsDir: weights.dir,
          precision,
        });
        ctx.progress(
          `  digits ${precision}: ${count} images in ${((runs[precision]?.wallMs ?? 0) / 1000).toFixed(1)} s`,
        );
      }
      const error = await featureError(features.fp32, features.int8);
      const seeds = ctx.mode.quick ? SPLIT_SEEDS.slice(0, 1) : SPLIT_SEEDS;
      const splits: { seed: number; fp32: number; int8: number }[] = [];
      for (const seed of seeds) {
        const fp32 = await fitAccuracy(ctx, features.fp32, seed);
        const int8 = await fitAccuracy(ctx, features.int8, seed);
        splits.push({ seed, fp32: pct(fp32), int8: pct(int8) });
        ctx.progress(`  split ${seed}: accuracy fp32 ${pct(fp32)} %, int8 ${pct(int8)} %`);
      }
      for (const p of ['fp32', 'int8'] as const) await rm(features[p], { recursive: true, force: true });
      const diffs = splits.map((s) => Math.round((s.int8 - s.fp32) * 100) / 100);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const meanDiff = mean(diffs);
      const met = Math.abs(meanDiff) <= INT8_ACCURACY_TARGET_POINTS;
      const [fp32Ms, int8Ms] = [runs.fp32?.wallMs ?? Number.NaN, runs.int8?.wallMs ?? Number.NaN];
      return [
        {
          name,
          group: 'int8',
          title,
          unit: 'points',
          better: 'higher',
          status: 'ok',
          summary: summarize(diffs),
          backend: 'onnx int8 vs fp32, tlearn fit',
          params: {
            images: count,
            dataset: "scikit-learn's load_digits (UCI handwritten digits), 64x64 PNG",
            splits: seeds,
            testSize: 0.2,
            weights: 'seeded random VGG16 weights (no real weights here): indicative only',
          },
          extra: {
            perSplit: splits,
            fp32MeanAccuracy: roundSig(mean(splits.map((s) => s.fp32)), 4),
            int8MeanAccuracy: roundSig(mean(splits.map((s) => s.int8)), 4),
            meanDifferencePoints: roundSig(meanDiff, 3),
            featureRelL2: {
              median: roundSig(median(error.relL2), 3),
              p95: roundSig(percentile(error.relL2, 95), 3),
              max: roundSig(Math.max(...error.relL2), 3),
            },
            featureCosineMin: roundSig(Math.min(...error.cosine), 5),
            extractFp32Ms: Math.round(fp32Ms),
            extractInt8Ms: Math.round(int8Ms),
            extractSpeedup: roundSig(fp32Ms / int8Ms, 3),
            targetPoints: INT8_ACCURACY_TARGET_POINTS,
            met,
          },
          note: `accuracy fp32 ${splits.map((s) => s.fp32).join('/')} %, int8 ${splits.map((s) => s.int8).join('/')} %; feature error median ${roundSig(
            median(error.relL2) * 100,
            2,
          )} % (relative L2); random weights: indicative only; within ${INT8_ACCURACY_TARGET_POINTS} point: ${met ? 'yes' : 'NO'}`,
        },
      ];
    },
  };
}
