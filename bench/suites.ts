/**
 * Every benchmark of `npm run bench`, with its sizes in full and `--quick` mode. Each returns one
 * or more figures (median/min/max over repeated runs after warm-up, peak RSS of the process that
 * did the work). Heavy work runs in child processes (`worker.ts`, the `tlearn` CLI,
 * `api-server.ts`).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pooling } from '../lib/model/spec.ts';
import type { BackendName } from '../lib/model/types.ts';
import {
  type ApiBenchEnv,
  type ApiServerMode,
  benchColdStart,
  benchLatency,
  startApiBenchEnv,
} from './api.ts';
import { batchBench } from './batch.ts';
import { int8AccuracyBench, int8ExtractBench } from './int8.ts';
import { ChildRunError, kbToMB, type ProcessUsage, runWorker, spawnNode } from './lib/child.ts';
import { countFiles, labelledJpegFolder } from './lib/fixtures.ts';
import {
  PYTORCH_MS_PER_IMAGE,
  REFERENCE_DECODE_MS,
  REFERENCE_FORWARD_MS,
  REFERENCE_SKLEARN_FIT,
  vgg16Gflop,
} from './lib/reference.ts';
import { median, roundSig, summarize } from './lib/stats.ts';
import type { BenchContext, Benchmark, Figure } from './lib/types.ts';
import { e2eBench, localRssBench } from './local-stack.ts';
import type { BenchQualityParams, BenchQualityResult } from './quality.ts';
import { scaleBench } from './scale.ts';
import type { DecodeParams, Engine, ForwardParams, ForwardResult } from './worker.ts';

type Usage = { usage: ProcessUsage };

function decodeBench(
  name: string,
  title: string,
  image: Pick<DecodeParams, 'format' | 'width' | 'height'>,
  reps: { full: number; quick: number; warmup: number },
): Benchmark {
  return {
    name,
    group: 'decode',
    describe: `${title}: decode + caffe preprocess to 150x150, ms/image`,
    // --quick checks that the suite runs: one image kind is enough.
    quick: name === 'decode-jpeg-500x375',
    byDefault: true,
    async run(ctx) {
      const params: DecodeParams = {
        ...image,
        size: 150,
        warmup: reps.warmup,
        reps: ctx.reps(reps.full, reps.quick),
      };
      const r = await runWorker<{ samplesMs: number[]; bytes: number } & Usage>('decode', params, {
        cwd: ctx.root,
        timeoutMs: 300_000,
        verbose: ctx.mode.verbose,
      });
      const isRef = image.format === 'jpeg' && image.width === 500;
      return [
        {
          name,
          group: 'decode',
          title: `decode + preprocess ${title} → 150x150 (sharp)`,
          unit: 'ms/image',
          better: 'lower',
          status: 'ok',
          summary: summarize(r.samplesMs),
          backend: 'sharp',
          peakRssMB: kbToMB(r.usage.maxRssKB),
          params: { ...params, fileKB: Math.round(r.bytes / 1024) },
          note: `${Math.round(r.bytes / 1024)} KB file${isRef ? `; reference ~${REFERENCE_DECODE_MS} ms` : ''}`,
        },
      ];
    },
  };
}

interface ForwardConfig {
  size: number;
  pooling: Pooling;
  batch: number;
}

const FORWARD_CONFIGS: readonly ForwardConfig[] = [
  { size: 150, pooling: 'flatten', batch: 1 },
  { size: 150, pooling: 'flatten', batch: 8 },
  { size: 224, pooling: 'avg', batch: 1 },
  { size: 224, pooling: 'avg', batch: 8 },
];

function forwardBench(engine: Engine, c: ForwardConfig, opts: { byDefault: boolean }): Benchmark {
  const name = `forward-${engine}-${c.size}-${c.pooling}-b${c.batch}`;
  const slow = engine === 'cpu';
  return {
    name,
    group: 'forward',
    describe: `VGG16 forward pass on ${engine}, ${c.size}x${c.size} ${c.pooling}, batch ${c.batch}, ms/image${
      opts.byDefault ? '' : ' (opt-in)'
    }`,
    quick: !slow && c.size === 150 && c.batch === 1,
    byDefault: opts.byDefault,
    async run(ctx) {
      const engines = await ctx.fixtures.engines();
      if (!engines.available.includes(engine)) {
        return [
          {
            ...base(),
            status: 'skipped',
            error: `${engine} engine not available: ${engines.unavailable[engine] ?? 'not probed'}`,
          },
        ];
      }
      const weights = await ctx.fixtures.weights();
      const params: ForwardParams = {
        engine,
        weightsDir: weights.dir,
        // --quick checks that the engine runs, not its speed: a tiny input.
        inputSize: ctx.mode.quick ? 32 : c.size,
        pooling: c.pooling,
        batch: c.batch,
        // The loader already ran one batch-1 pass; one more at this batch size warms the rest.
        warmup: slow || ctx.mode.quick ? 0 : 1,
        reps: slow ? ctx.reps(1, 1) : c.batch === 1 ? ctx.reps(5, 1) : ctx.reps(3, 1),
      };
      const r = await runWorker<ForwardResult & Usage>('forward', params, {
        cwd: ctx.root,
        timeoutMs: 1_800_000,
        verbose: ctx.mode.verbose,
      });
      const summary = summarize(r.samplesMsPerImage);
      const gflops = vgg16Gflop(c.size) / (summary.median / 1000);
      const ref = REFERENCE_FORWARD_MS.find((x) => x.engine === engine);
      const isRefConfig = c.size === 150 && c.batch === 1;
      return [
        {
          ...base(),
          status: 'ok',
          summary,
          backend: r.backend,
          peakRssMB: kbToMB(r.usage.maxRssKB),
          params: { ...params, weightsDir: undefined },
          extra: {
            gflopPerImage: roundSig(vgg16Gflop(c.size), 3),
            gflops: roundSig(gflops, 3),
            loadMs: Math.round(r.loadMs),
            cpuOverWall: roundSig(r.cpuOverWall, 3),
          },
          note: `${roundSig(gflops, 3)} GFLOP/s; cpu/wall ${r.cpuOverWall.toFixed(2)}; load ${(r.loadMs / 1000).toFixed(1)} s${
            isRefConfig && ref ? `; reference ~${ref.ms.toLocaleString('en-US')} ms` : ''
          }`,
        },
      ];
    },
  };
  function base(): Figure {
    return {
      name,
      group: 'forward',
      title: `VGG16 conv base forward pass, ${engine}, ${c.size}x${c.size} ${c.pooling}, batch ${c.batch}`,
      unit: 'ms/image',
      better: 'lower',
      status: 'ok',
    };
  }
}

/**
 * `tlearn extract` as a user runs it (engine of its choice), or forced to a backend with
 * `--backend` (opt-in: the wasm fallback takes minutes on 200 images).
 */
function extractBench(backend?: BackendName): Benchmark {
  const name = backend ? `extract-cli-${backend}` : 'extract-cli';
  return {
    name,
    group: 'extract',
    describe: `\`tlearn extract${backend ? ` --backend ${backend}` : ''}\` on a folder of 200 (quick: 4) 500x375 JPEGs, whole job, images/s${backend ? ' (opt-in)' : ''}`,
    quick: backend === undefined,
    byDefault: backend === undefined,
    async run(ctx) {
      const n = ctx.mode.quick ? 4 : 200;
      const weights = await ctx.fixtures.weights();
      ctx.progress(`  preparing ${n} JPEGs (once)`);
      const images = await labelledJpegFolder(ctx.workDir, n);
      const warm = await labelledJpegFolder(ctx.workDir, 4);
      const out = join(ctx.workDir, 'extract-out');
      const once = async (dir: string, count: number) => {
        await rm(out, { recursive: true, force: true });
        const args = ['bin/tlearn.js', 'extract', dir, '--out', out, '--weights', weights.dir];
        if (backend) args.push('--backend', backend);
        const res = await spawnNode(args, {
          cwd: ctx.root,
          timeoutMs: 3_600_000,
          measureUsage: true,
          verbose: ctx.mode.verbose,
        });
        if (res.code !== 0)
          throw new ChildRunError(`tlearn extract exited with ${res.code ?? res.signal}`, res.stderrTail);
        const written = await countFiles(out, '.npy');
        if (written !== count)
          throw new ChildRunError(
            `tlearn extract wrote ${written} features for ${count} images`,
            res.stderrTail,
          );
        return res;
      };
      // Warm-up on 4 images: OS file cache, tsx transpile cache (not in --quick).
      if (!ctx.mode.quick) await once(warm, 4);
      const reps = ctx.reps(2, 1);
      const walls: number[] = [];
      const cores: number[] = [];
      let rss = 0;
      let used: string | undefined;
      for (let i = 0; i < reps; i++) {
        const res = await once(images, n);
        walls.push(res.wallMs);
        if (res.usage) {
          cores.push((res.usage.userCpuMs + res.usage.systemCpuMs) / res.wallMs);
          rss = Math.max(rss, kbToMB(res.usage.maxRssKB));
        }
        const found = [...res.stderr.matchAll(/"(?:backend|engine)":"([\w-]+)"/g)].map((m) => m[1]);
        used ??= found[found.length - 1];
        ctx.progress(`  extract ${i + 1}/${reps}: ${n} images in ${(res.wallMs / 1000).toFixed(1)} s`);
      }
      await rm(out, { recursive: true, force: true });
      const whole = median(walls);
      const pytorch = n * PYTORCH_MS_PER_IMAGE;
      return [
        {
          name,
          group: 'extract',
          title: `tlearn extract${backend ? ` --backend ${backend}` : ''}, ${n} JPEGs 500x375 → 150x150 flatten, whole job (process start to exit)`,
          unit: 'images/s',
          better: 'higher',
          status: 'ok',
          summary: summarize(walls.map((w) => n / (w / 1000))),
          ...(used ? { backend: used } : {}),
          ...(rss ? { peakRssMB: rss } : {}),
          params: { images: n, reps, warmup: '1 run on 4 images', weights: 'real-size VGG16 from disk' },
          extra: {
            wholeJobMs: Math.round(whole),
            msPerImage: roundSig(whole / n, 3),
            coresBusy: cores.length ? roundSig(median(cores), 3) : undefined,
            pytorchWholeJobMs: pytorch,
            vsPytorch: roundSig(whole / pytorch, 3),
          },
          note: `${(whole / 1000).toFixed(1)} s whole job, ${Math.round(whole / n)} ms/image${
            cores.length ? `, ${median(cores).toFixed(2)} cores busy` : ''
          }; ${(whole / pytorch).toFixed(1)}x PyTorch`,
        },
      ];
    },
  };
}

interface FitConfig {
  name: string;
  n: number;
  classes: number;
  quick: boolean;
}

const FITS: readonly FitConfig[] = [
  { name: 'fit-2000', n: 2000, classes: 2, quick: true },
  { name: 'fit-10000', n: 10_000, classes: 2, quick: false },
  { name: 'fit-20000', n: 20_000, classes: 2, quick: false },
  { name: 'fit-10000x5', n: 10_000, classes: 5, quick: false },
];

const FIT_D = 8192;
/** Rows of the fit and quality benchmarks in --quick (they check that the suite runs). */
const QUICK_N = 500;

/** Sizes of the data-quality benchmark: its target is at 25,000 × 8192. */
const QUALITY_SIZES: readonly { n: number; quick: boolean }[] = [
  { n: 5000, quick: true },
  { n: 25_000, quick: false },
];

function qualityBench(c: { n: number; quick: boolean }): Benchmark {
  const name = `quality-${c.n}`;
  return {
    name,
    group: 'quality',
    describe: `data-quality pass over a training of ${c.n} × ${FIT_D}: its time (CPU overhead, wall-time share) and peak memory relative to the training step's`,
    quick: c.quick,
    byDefault: true,
    async run(ctx) {
      const reps = ctx.reps(2, 1);
      const n = ctx.mode.quick ? QUICK_N : c.n;
      const base: BenchQualityParams = {
        n,
        d: FIT_D,
        classes: 2,
        sparsity: FIT_SPARSITY,
        seed: 42,
        near: Math.round(n / 100),
        exact: Math.round(n / 200),
        withQuality: true,
      };
      const runs: (BenchQualityResult & Usage)[] = [];
      const alone: (BenchQualityResult & Usage)[] = [];
      for (let i = 0; i < reps; i++) {
        const opts = { cwd: ctx.root, timeoutMs: 1_800_000, verbose: ctx.mode.verbose };
        const r = await runWorker<BenchQualityResult>('quality', base, opts);
        runs.push(r);
        const a = await runWorker<BenchQualityResult>('quality', { ...base, withQuality: false }, opts);
        alone.push(a);
        ctx.progress(
          `  ${name} ${i + 1}/${reps}: training ${r.trainMs} ms (${r.trainCpuMs} ms CPU), quality ${r.qualityMs} ms (${r.qualityCpuMs} ms CPU)`,
        );
      }
      // The target is on CPU time: on a shared machine wall time depends on the neighbours.
      const ratios = runs.map((r) => (r.qualityCpuMs ?? 0) / r.trainCpuMs);
      const mid = runs[ratios.indexOf(median(ratios))] ?? runs[0];
      const shares = runs.map((r) => r.share ?? 0);
      const midShare = runs[shares.indexOf(median(shares))] ?? runs[0];
      const rssBoth = Math.max(...runs.map((r) => kbToMB(r.usage.maxRssKB)));
      const rssTrain = Math.max(...alone.map((r) => kbToMB(r.usage.maxRssKB)));
      return [
        {
          name,
          group: 'quality',
          title: `quality pass / training step, ${c.n.toLocaleString('en-US')} × ${FIT_D} (CPU time)`,
          unit: '%',
          better: 'lower',
          status: 'ok',
          summary: summarize(ratios.map((x) => Math.round(x * 1000) / 10)),
          backend: 'js + wasm fit',
          peakRssMB: rssBoth,
          params: { ...base, reps },
          extra: {
            ...Object.fromEntries(Object.entries(mid ?? {}).filter(([k]) => k !== 'usage')),
            peakRssTrainingAloneMB: rssTrain,
            peakRssRatio: roundSig(rssBoth / rssTrain, 3),
          },
          note: `training ${String(mid?.trainMs)} ms (${String(mid?.trainCpuMs)} CPU), quality ${String(mid?.qualityMs)} ms (${String(
            mid?.qualityCpuMs,
          )} CPU); peak RSS ${roundSig(rssBoth / rssTrain, 3)}x training alone (${rssTrain} MB); near recall ${String(
            mid?.nearRecall,
          )}, precision ${String(mid?.nearPrecision)}; exact recall ${String(mid?.exactRecall)}; target ≤ 60 %, ≤ 1.3x`,
        },
        {
          name: `quality-share-${c.n}`,
          group: 'quality',
          title: `quality pass's share of the training step (training + quality pass), ${c.n.toLocaleString('en-US')} × ${FIT_D}, wall time`,
          unit: '%',
          better: 'lower',
          status: 'ok',
          summary: summarize(shares.map((x) => Math.round(x * 1000) / 10)),
          backend: `${String(midShare?.matrix)} rows, ${String(midShare?.threads)} threads`,
          peakRssMB: rssBoth,
          params: { ...base, reps },
          extra: Object.fromEntries(Object.entries(midShare ?? {}).filter(([k]) => k !== 'usage')),
          note: `training ${String(midShare?.trainMs)} ms, quality ${String(midShare?.qualityMs)} ms (CPU share ${
            typeof midShare?.cpuShare === 'number' ? `${(midShare.cpuShare * 100).toFixed(1)} %` : '?'
          }); phases ${Object.entries(midShare?.phases ?? {})
            .filter(([k]) => ['sketch', 'near', 'labelErrors'].includes(k))
            .map(([k, v]) => `${k} ${Math.round(v)}`)
            .join(', ')} ms; target ≤ 40 %`,
        },
      ];
    },
  };
}
const FIT_SPARSITY = 0.6;

function fitBench(c: FitConfig): Benchmark {
  return {
    name: c.name,
    group: 'fit',
    describe: `logistic-regression fit, ${c.n} × ${FIT_D}, ${c.classes} classes (lbfgs, C 1, 100 iterations), ms`,
    quick: c.quick,
    byDefault: true,
    async run(ctx) {
      const reps = ctx.reps(3, 1);
      const runs: (Record<string, unknown> & Usage)[] = [];
      for (let i = 0; i < reps; i++) {
        const r = await runWorker<Record<string, unknown>>(
          'fit',
          {
            n: ctx.mode.quick ? QUICK_N : c.n,
            d: FIT_D,
            classes: c.classes,
            sparsity: FIT_SPARSITY,
            seed: 42,
            warmupN: ctx.mode.quick ? 100 : 500,
          },
          { cwd: ctx.root, timeoutMs: 1_800_000, verbose: ctx.mode.verbose },
        );
        runs.push(r);
        ctx.progress(`  ${c.name} ${i + 1}/${reps}: ${r.ms} ms, ${r.nIter} iterations`);
      }
      const ms = runs.map((r) => Number(r.ms));
      const mid = runs[ms.indexOf(median(ms))] ?? runs[0];
      const matrixMB = (c.n * FIT_D * 4) / 2 ** 20;
      const rss = Math.max(...runs.map((r) => kbToMB(r.usage.maxRssKB)));
      const objectives = new Set(runs.map((r) => r.objective));
      const isRef = c.n === 20_000 && c.classes === 2;
      return [
        {
          name: c.name,
          group: 'fit',
          title: `fit ${c.n.toLocaleString('en-US')} × ${FIT_D} ${c.classes === 2 ? 'binary' : `${c.classes} classes`} (${
            FIT_SPARSITY * 100
          } % zeros, like ReLU features)`,
          unit: 'ms',
          better: 'lower',
          status: 'ok',
          summary: summarize(ms),
          backend: `${String(mid?.storage ?? '?')}, ${String(mid?.threads ?? '?')} threads`,
          peakRssMB: rss,
          params: {
            n: c.n,
            d: FIT_D,
            classes: c.classes,
            sparsity: FIT_SPARSITY,
            seed: 42,
            reps,
            warmup: 'a 500-row fit in the same process',
          },
          extra: {
            // Everything benchFit reports (iterations, objective, ms and CPU ms per evaluation,
            // preparation, threads, storage…) for the median run.
            ...Object.fromEntries(
              Object.entries(mid ?? {}).filter(([k]) => k !== 'usage' && k !== 'peakRssMB'),
            ),
            matrixMB: Math.round(matrixMB),
            rssOverMatrix: roundSig(rss / matrixMB, 3),
            objectiveSameEveryRun: objectives.size === 1,
          },
          note: `${String(mid?.nIter)} it, ${String(mid?.nEval)} evals, ${String(mid?.msPerEval)} ms/eval, objective ${
            typeof mid?.objective === 'number' ? mid.objective.toPrecision(6) : '?'
          }; RSS ${roundSig(rss / matrixMB, 2)}x matrix${
            isRef
              ? `; sklearn ~${REFERENCE_SKLEARN_FIT.ms / 1000} s, ${REFERENCE_SKLEARN_FIT.msPerEval} ms/eval`
              : ''
          }`,
        },
      ];
    },
  };
}

/** The API benchmarks share one emulator with a promoted model per run. */
function apiBenches(getEnv: (ctx: BenchContext) => Promise<ApiBenchEnv>): Benchmark[] {
  const out: Benchmark[] = [];
  for (const mode of ['default', 'wasm'] as ApiServerMode[]) {
    const p = mode === 'default' ? 'api-' : `api-${mode}-`;
    const who = mode === 'default' ? 'API handler' : `API handler forced to ${mode} (the fallback engine)`;
    const needsEngine = async (ctx: BenchContext, names: string[]): Promise<Figure[] | undefined> => {
      if (mode === 'default') return undefined;
      const engines = await ctx.fixtures.engines();
      if (engines.available.includes(mode)) return undefined;
      return names.map((name) => ({
        name,
        group: 'api',
        title: who,
        unit: 'ms',
        better: 'lower' as const,
        status: 'skipped' as const,
        error: `${mode} engine not available: ${engines.unavailable[mode] ?? 'not probed'}`,
      }));
    };
    out.push({
      name: `${p}cold-start`,
      group: 'api',
      describe: `cold start of the ${who}: process start → first 200 prediction, ms`,
      quick: mode === 'default',
      byDefault: true,
      async run(ctx) {
        return (await needsEngine(ctx, [`${p}cold-start`])) ?? benchColdStart(ctx, await getEnv(ctx), mode);
      },
    });
    out.push({
      name: `${p}latency`,
      group: 'api',
      describe: `warm prediction latency p50/p95/p99 and req/s at 1 and 4 clients, and what capture adds to p50 (${who})`,
      quick: mode === 'default',
      byDefault: true,
      async run(ctx) {
        return (
          (await needsEngine(ctx, [`${p}latency-c1`, `${p}latency-c4`, `${p}capture-overhead`])) ??
          benchLatency(ctx, await getEnv(ctx), mode)
        );
      },
    });
  }
  return out;
}

/** The suite and what to clean up after it. */
export interface Suite {
  benchmarks: Benchmark[];
  cleanup(): Promise<void>;
}

/** Builds the suite (in table order). */
export function createSuite(): Suite {
  let apiEnv: Promise<ApiBenchEnv> | undefined;
  const getEnv = async (ctx: BenchContext) => {
    apiEnv ??= ctx.fixtures.weights().then((w) => startApiBenchEnv(w));
    return apiEnv;
  };
  const benchmarks: Benchmark[] = [
    decodeBench(
      'decode-jpeg-500x375',
      '500x375 JPEG',
      { format: 'jpeg', width: 500, height: 375 },
      { full: 30, quick: 3, warmup: 1 },
    ),
    decodeBench(
      'decode-jpeg-4000x3000',
      '4000x3000 JPEG',
      { format: 'jpeg', width: 4000, height: 3000 },
      { full: 10, quick: 3, warmup: 1 },
    ),
    decodeBench(
      'decode-png-500x375',
      '500x375 PNG',
      { format: 'png', width: 500, height: 375 },
      { full: 30, quick: 10, warmup: 3 },
    ),
    ...(['tensorflow', 'wasm', 'onnx'] as const).flatMap((engine) =>
      FORWARD_CONFIGS.map((c) => forwardBench(engine, c, { byDefault: true })),
    ),
    forwardBench('cpu', { size: 150, pooling: 'flatten', batch: 1 }, { byDefault: false }),
    extractBench(),
    extractBench('wasm'),
    batchBench(),
    int8ExtractBench(),
    int8AccuracyBench(),
    ...FITS.map(fitBench),
    ...QUALITY_SIZES.map(qualityBench),
    ...apiBenches(getEnv),
    localRssBench(),
    e2eBench(),
    scaleBench(),
  ];
  return {
    benchmarks,
    async cleanup() {
      if (apiEnv) await (await apiEnv.catch(() => undefined))?.stop();
    },
  };
}
