/**
 * Benchmarks of the local stack as `npm start` runs it, in a process of its own
 * (`local-stack-child.ts`):
 * - `local-rss`: resident memory with the demo trained and one prediction served, and its peak;
 * - `e2e`: time-to-model of an upload with parallel PUTs (first PUT → the model that includes every
 *   image is promoted) against `tlearn extract` on the same images and settings, with the phases
 *   of the training (`GET /datasets/{d}?timeline=true`, what `tlearn status D --timeline` prints).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { DatasetStatus } from '../lib/api/datasets.ts';
import { LOCAL_PROCESS_ENV } from '../lib/local/defaults.ts';
import { createS3Client } from '../lib/storage/clients.ts';
import { mapWithConcurrency } from '../lib/util/concurrency.ts';
import { makeImage } from '../test/helpers/images.ts';
import { ChildRunError, ipcChild, spawnNode } from './lib/child.ts';
import { countFiles, labelledJpegFolder } from './lib/fixtures.ts';
import { roundSig, summarize } from './lib/stats.ts';
import type { BenchContext, Benchmark } from './lib/types.ts';
import type { LocalStackChildParams } from './local-stack-child.ts';

interface Ready {
  apiUrl: string;
  awsEndpoint: string;
  bucket: string;
  region: string;
}

interface StackChild extends Ready {
  next(type: string, timeoutMs: number): Promise<Record<string, unknown>>;
  memory(): Promise<{ rssMB: number; peakRssMB: number }>;
  stop(): Promise<void>;
}

/** Target of `local-rss` (MB, resident after the demo and one prediction). */
export const LOCAL_RSS_TARGET_MB = 450;
/** Target of `e2e`: time-to-model / `tlearn extract` on the same images. */
export const E2E_RATIO_TARGET = 1.2;

async function startStackChild(
  ctx: BenchContext,
  params: LocalStackChildParams,
  timeoutMs: number,
): Promise<StackChild> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['bin/run-ts.js', 'bench/local-stack-child.ts', JSON.stringify(params)],
    // The environment `tlearn local` runs with (bin/tlearn.js).
    {
      cwd: ctx.root,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, ...LOCAL_PROCESS_ENV },
    },
  );
  const { next, kill } = ipcChild<{ type: string } & Record<string, unknown>>(child, 'local stack', {
    verbose: ctx.mode.verbose,
  });
  try {
    const ready = (await next('ready', timeoutMs)) as unknown as Ready;
    return {
      ...ready,
      next,
      async memory() {
        const reply = next('usage', 10_000);
        child.send({ type: 'usage' });
        return (await reply) as unknown as { rssMB: number; peakRssMB: number };
      },
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.send({ type: 'stop' });
        const timer = setTimeout(kill, 30_000);
        await exited;
        clearTimeout(timer);
      },
    };
  } catch (err) {
    kill();
    throw err;
  }
}

/** One prediction through the stack's API (no key: the local stack without --api-key). */
async function predictOnce(apiUrl: string, dataset: string): Promise<void> {
  const image = await makeImage('jpeg', { width: 320, height: 240, pattern: 'gradient', seed: 3 });
  const res = await fetch(`${apiUrl}/datasets/${dataset}/predictions`, {
    method: 'POST',
    body: image,
    headers: { 'content-type': 'image/jpeg' },
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`prediction answered ${res.status}: ${text.slice(0, 300)}`);
}

/** The spec both benchmarks run: the default (150x150 flatten), or a tiny one in --quick. */
function specOf(ctx: BenchContext): { inputSize: number; pooling: 'flatten' | 'avg' } {
  return ctx.mode.quick ? { inputSize: 32, pooling: 'avg' } : { inputSize: 150, pooling: 'flatten' };
}

/** `local-rss`: `npm start` with the demo trained and one prediction served. */
export function localRssBench(): Benchmark {
  return {
    name: 'local-rss',
    group: 'local',
    describe: `resident memory of the local stack with the demo trained and one prediction served (target ≤ ${LOCAL_RSS_TARGET_MB} MB), MB`,
    quick: true,
    byDefault: true,
    async run(ctx) {
      const weights = await ctx.fixtures.weights();
      const dataDir = join(ctx.workDir, 'local-rss');
      await rm(dataDir, { recursive: true, force: true });
      const spec = specOf(ctx);
      const reps = ctx.reps(1, 1);
      const rss: number[] = [];
      let peak = 0;
      let demoMs = 0;
      for (let i = 0; i < reps; i++) {
        await rm(dataDir, { recursive: true, force: true });
        const t = performance.now();
        const stack = await startStackChild(
          ctx,
          {
            dataDir,
            weights: weights.dir,
            ...spec,
            demo: true,
            ...(ctx.mode.quick ? { demoPerClass: 3 } : {}),
          },
          300_000,
        );
        try {
          const demo = await stack.next('demo', 1_200_000);
          if (demo.ok !== true) throw new Error('the demo did not get a model');
          demoMs = performance.now() - t;
          await predictOnce(stack.apiUrl, 'demo');
          const m = await stack.memory();
          rss.push(m.rssMB);
          peak = Math.max(peak, m.peakRssMB);
          ctx.progress(`  local-rss ${i + 1}/${reps}: ${m.rssMB} MB resident, peak ${m.peakRssMB} MB`);
        } finally {
          await stack.stop();
        }
      }
      await rm(dataDir, { recursive: true, force: true });
      const s = summarize(rss);
      return [
        {
          name: 'local-rss',
          group: 'local',
          title: `local stack RSS after the demo + 1 prediction (${spec.inputSize}x${spec.inputSize} ${spec.pooling})`,
          unit: 'MB',
          better: 'lower',
          status: 'ok',
          summary: s,
          peakRssMB: peak,
          params: { ...spec, reps, weights: 'real-size VGG16 from disk' },
          extra: { demoToModelMs: Math.round(demoMs), targetMB: LOCAL_RSS_TARGET_MB },
          note: `peak ${peak} MB; demo to model ${(demoMs / 1000).toFixed(1)} s; target ≤ ${LOCAL_RSS_TARGET_MB} MB ${
            s.median <= LOCAL_RSS_TARGET_MB ? 'met' : 'not reached'
          }`,
        },
      ];
    },
  };
}

/** Images of the e2e benchmark: 5,000 (TLEARN_BENCH_E2E_N overrides), 24 in --quick. */
function e2eCount(ctx: BenchContext): number {
  const fromEnv = Number(process.env.TLEARN_BENCH_E2E_N);
  if (Number.isInteger(fromEnv) && fromEnv >= 4) return fromEnv;
  return ctx.mode.quick ? 24 : 5000;
}

async function listImages(dir: string): Promise<{ file: string; key: string }[]> {
  const out: { file: string; key: string }[] = [];
  for (const label of (await readdir(dir)).sort()) {
    if (label.startsWith('.')) continue;
    for (const name of (await readdir(join(dir, label))).sort()) {
      out.push({ file: join(dir, label, name), key: `${label}/${name}` });
    }
  }
  return out;
}

/** `tlearn extract` on the images with the stack's weights and spec: the whole job, ms. */
async function extractWholeJob(
  ctx: BenchContext,
  images: string,
  n: number,
  weightsDir: string,
  spec: { inputSize: number; pooling: string },
): Promise<number> {
  const out = join(ctx.workDir, 'e2e-extract-out');
  await rm(out, { recursive: true, force: true });
  const args = ['bin/tlearn.js', 'extract', images, '--out', out, '--weights', weightsDir];
  args.push('--size', String(spec.inputSize), '--pooling', spec.pooling);
  const res = await spawnNode(args, { cwd: ctx.root, timeoutMs: 7_200_000, verbose: ctx.mode.verbose });
  if (res.code !== 0)
    throw new ChildRunError(`tlearn extract exited with ${res.code ?? res.signal}`, res.stderrTail);
  const written = await countFiles(out, '.npy');
  await rm(out, { recursive: true, force: true });
  if (written !== n)
    throw new ChildRunError(`tlearn extract wrote ${written} features for ${n} images`, res.stderrTail);
  return res.wallMs;
}

/** Whether the status shows a promoted model trained on every one of the `n` images. */
function hasFinalModel(s: DatasetStatus, n: number, startedAt: number): boolean {
  const m = s.model as (DatasetStatus['model'] & { metrics?: { nTrain?: number; nTest?: number } }) | null;
  if (!m || s.images.pending > 0 || s.images.ready + s.images.failed !== n) return false;
  if (Date.parse(m.trainedAt) < startedAt) return false;
  return s.lastExecution?.status !== 'RUNNING';
}

/** `e2e`: upload → final model on the local stack vs `tlearn extract`, same images and settings. */
export function e2eBench(): Benchmark {
  return {
    name: 'e2e',
    group: 'local',
    describe: `time-to-model of an upload of 5,000 (quick: 24) JPEGs with parallel PUTs to the local stack / \`tlearn extract\` on the same images (target ≤ ${E2E_RATIO_TARGET}x), with the training's phases`,
    quick: true,
    byDefault: true,
    async run(ctx) {
      const n = e2eCount(ctx);
      const weights = await ctx.fixtures.weights();
      const spec = specOf(ctx);
      ctx.progress(`  preparing ${n} JPEGs (once)`);
      const dir = await labelledJpegFolder(ctx.workDir, n);
      const files = await listImages(dir);
      const dataDir = join(ctx.workDir, 'e2e-stack');
      await rm(dataDir, { recursive: true, force: true });
      const stack = await startStackChild(
        ctx,
        { dataDir, weights: weights.dir, ...spec, demo: false },
        300_000,
      );
      const dataset = 'e2e';
      let ttmMs: number;
      let status: DatasetStatus;
      let peak: number;
      try {
        const s3 = createS3Client({
          region: stack.region,
          endpoint: stack.awsEndpoint,
          timeoutMs: 30_000,
          localCredentials: true,
        });
        const t0 = Date.now();
        // Parallel PUTs, as `aws s3 sync` does (10 at a time by default; 16 here).
        await mapWithConcurrency(files, 16, async (f) =>
          s3.send(
            new PutObjectCommand({
              Bucket: stack.bucket,
              Key: `datasets/${dataset}/${f.key}`,
              Body: await readFile(f.file),
              ContentType: 'image/jpeg',
            }),
          ),
        );
        const uploadMs = Date.now() - t0;
        ctx.progress(`  uploaded ${n} images in ${(uploadMs / 1000).toFixed(1)} s; waiting for the model`);
        const deadline = Date.now() + 7_200_000;
        let last = '';
        let fetchFailures = 0;
        for (;;) {
          // A status request may fail while the stack's event loop is busy: try again, a few times.
          // Every 2 s and without the timeline: each status lists the dataset, which the stack pays for.
          const res = await fetch(`${stack.apiUrl}/datasets/${dataset}`).catch((err: unknown) => {
            if (++fetchFailures > 30) throw err;
            return undefined;
          });
          if (res?.status === 200) {
            status = (await res.json()) as DatasetStatus;
            if (hasFinalModel(status, n, t0)) break;
            const line = `${status.images.ready}/${n} ready, execution ${status.lastExecution?.status ?? 'none'}`;
            if (line !== last) ctx.progress(`  ${line}`);
            last = line;
          }
          if (Date.now() > deadline) throw new Error(`no final model within 2 hours (${last})`);
          await new Promise((r) => setTimeout(r, 2000));
        }
        const final = await fetch(`${stack.apiUrl}/datasets/${dataset}?timeline=true`);
        if (final.status !== 200)
          throw new Error(`GET /datasets/${dataset}?timeline=true answered ${final.status}`);
        status = (await final.json()) as DatasetStatus;
        s3.destroy();
        const promotedAt = Date.parse(status.timeline?.promotedAt ?? status.model?.promotedAt ?? '');
        ttmMs = promotedAt - t0;
        peak = (await stack.memory()).peakRssMB;
      } finally {
        await stack.stop();
        await rm(dataDir, { recursive: true, force: true });
      }
      ctx.progress(`  time-to-model ${(ttmMs / 1000).toFixed(1)} s; now tlearn extract on the same images`);
      const extractMs = await extractWholeJob(ctx, dir, n, weights.dir, spec);
      const ratio = ttmMs / extractMs;
      const t = status.timeline;
      const first = Date.parse(t?.firstUploadAt ?? '');
      const since = (iso: string | null | undefined) =>
        iso && Number.isFinite(first) ? Math.round(Date.parse(iso) - first) : undefined;
      const phases = (t?.phases ?? []).map((p) => ({ ...p, atMs: since(p.startedAt) }));
      const trainings = new Set(phases.map((p) => p.training)).size;
      const lastFeatureMs = since(t?.lastFeatureAt);
      const phaseNote = phases
        .map(
          (p) =>
            `${p.phase}${trainings > 1 ? `#${p.training}` : ''} ${(p.ms / 1000).toFixed(1)}s${p.rounds ? `/${p.rounds}` : ''}`,
        )
        .join(', ');
      return [
        {
          name: 'e2e',
          group: 'local',
          title: `time-to-model / tlearn extract, ${n} JPEGs 500x375, ${spec.inputSize}x${spec.inputSize} ${spec.pooling}, local stack`,
          unit: 'x',
          better: 'lower',
          status: 'ok',
          summary: summarize([roundSig(ratio, 3)]),
          peakRssMB: peak,
          params: { images: n, ...spec, putConcurrency: 16, weights: 'real-size VGG16 from disk' },
          extra: {
            timeToModelMs: ttmMs,
            extractWholeJobMs: extractMs,
            lastUploadAtMs: since(t?.lastUploadAt),
            lastFeatureAtMs: lastFeatureMs,
            promotedAtMs: since(t?.promotedAt),
            trainings,
            phases,
          },
          note: `model ${(ttmMs / 1000).toFixed(1)} s after the first PUT, extract ${(extractMs / 1000).toFixed(1)} s; features done at ${
            lastFeatureMs === undefined ? '?' : (lastFeatureMs / 1000).toFixed(1)
          } s; ${phaseNote}; stack peak RSS ${peak} MB; target ≤ ${E2E_RATIO_TARGET}x ${ratio <= E2E_RATIO_TARGET ? 'met' : 'not reached'}`,
        },
      ];
    },
  };
}
