/**
 * Batch scoring rate against `tlearn extract`'s rate (`npm run bench -- --only batch`): the same
 * N generated JPEGs scored through the batch worker (`runChunk`, lib/batch/worker.ts, chunk after
 * chunk as the local stack's queue poller hands them over) and extracted by `extractFiles` (what
 * `tlearn extract` runs, with its defaults), in one child process with one loaded extractor, the
 * two alternating so both see the same load. The images sit in an S3 emulator (fauxqs) in the
 * parent process, so the batch worker reads them over HTTP as it reads S3.
 *
 * Both rates are images per second of the job after the model is loaded: the batch's from
 * `startBatch` (listing, manifest) to its `summary.json`, the extraction's from the first read to
 * the last `.npy` written. The figure is their ratio (target ≥ 0.9). With
 * `TLEARN_BENCH_BATCH_COMPARE=20` the batch is also timed with 20 decodes at once (every image of
 * a chunk: the worker before `DECODE_CONCURRENCY`), alternating with the other runs;
 * `TLEARN_BENCH_BATCH_N` sets the image count of a full run (default 200).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { SummarySchema } from '../lib/batch/layout.ts';
import { type FeatureSpec, featureDims, specToString } from '../lib/model/spec.ts';
import { modelFileKey } from '../lib/storage/keys.ts';
import { putJson, putObject } from '../lib/storage/s3.ts';
import type { ModelDocument } from '../lib/training/model-document.ts';
import { mapWithConcurrency } from '../lib/util/concurrency.ts';
import { startEmulator } from '../test/helpers/emulator.ts';
import { seededRandom } from '../test/helpers/images.ts';
import { kbToMB, type ProcessUsage, runWorker } from './lib/child.ts';
import { labelledJpegFolder } from './lib/fixtures.ts';
import { median, roundSig, summarize } from './lib/stats.ts';
import type { Benchmark } from './lib/types.ts';

const DATASET = 'bench';
const MODEL_VERSION = '20260101T000000Z-batch01';

/** What the child gets. */
export interface BatchBenchParams {
  weightsDir: string;
  /** The labelled JPEG folder (also uploaded under `prefix`). */
  imagesDir: string;
  /** The same images in S3, and 4 more for the warm-up. */
  prefix: string;
  warmPrefix: string;
  warmDir: string;
  s3: { endpoint: string; region: string; bucket: string };
  reps: number;
  /**
   * Also time the batch with this many decodes at once (e.g. 20: every image of a chunk, as the
   * worker did before DECODE_CONCURRENCY), alternating with the others. @default not run
   */
  compareDecodeConcurrency?: number;
}

/** What the child measured. */
export interface BatchBenchResult {
  n: number;
  backend: string;
  batchMs: number[];
  extractMs: number[];
  /** CPU time of this process (all its threads) during each run. */
  batchCpuMs: number[];
  extractCpuMs: number[];
  /** Runs with `compareDecodeConcurrency` (empty without it). */
  compareMs: number[];
  compareCpuMs: number[];
  /** Sum of the chunks' own run times (part metadata) of the last batch. */
  chunkMs: number;
  chunks: number;
  loadMs: number;
}

/** A binary head of the extractor's spec, as a trained model.json would be. */
function benchModel(weightsId: string): ModelDocument {
  const spec: FeatureSpec = {
    model: 'vgg16',
    weights: weightsId,
    input: [150, 150],
    pooling: 'flatten',
    preprocessing: 'caffe',
    resize: 'bilinear',
  };
  const rand = seededRandom(5);
  return {
    format: 'tlearn-head',
    formatVersion: 1,
    dataset: DATASET,
    version: MODEL_VERSION,
    classes: ['cat', 'dog'],
    coef: [Array.from({ length: featureDims(spec) }, () => (rand() - 0.5) * 1e-3)],
    intercept: [0],
    spec: specToString(spec),
    trainedAt: '2026-01-01T00:00:00.000Z',
    options: { C: 1, maxIter: 100, tol: 1e-4, testSize: 0.2, seed: 42, refitOnAll: false },
    metrics: { accuracy: 0.9, logLoss: 0.3, nTrain: 160, nTest: 40, converged: true, nIter: 30 },
    randomWeights: false,
  };
}

async function uploadFolder(s3: S3Client, bucket: string, dir: string, prefix: string): Promise<number> {
  const { listLocalImages } = await import('../lib/features/local-dataset.ts');
  const { images } = await listLocalImages([dir]);
  await mapWithConcurrency(images, 8, async (img) => {
    const key = `${prefix}${relative(dir, img.path).split('\\').join('/')}`;
    await putObject(s3, bucket, key, await readFile(img.path), { contentType: 'image/jpeg' });
  });
  return images.length;
}

/** Child side: loads the extractor once, then alternates extraction and batch runs. */
export async function runBatchBench(p: BatchBenchParams): Promise<BatchBenchResult> {
  const [
    { loadExtractor },
    { extractFiles },
    { listLocalImages },
    { startBatch },
    { runChunk },
    clients,
    s3mod,
  ] = await Promise.all([
    import('../lib/model/extractor.ts'),
    import('../lib/features/extract-files.ts'),
    import('../lib/features/local-dataset.ts'),
    import('../lib/batch/start.ts'),
    import('../lib/batch/worker.ts'),
    import('../lib/storage/clients.ts'),
    import('../lib/storage/s3.ts'),
  ]);
  const { silentLog } = await import('../lib/util/log.ts');
  const t0 = performance.now();
  const extractor = await loadExtractor({
    weights: { kind: 'uri', uri: p.weightsDir },
    inputSize: 150,
    pooling: 'flatten',
    log: silentLog,
  });
  const loadMs = performance.now() - t0;
  const s3 = clients.createS3Client({
    region: p.s3.region,
    endpoint: p.s3.endpoint,
    timeoutMs: 60_000,
    localCredentials: true,
  });
  const bucket = p.s3.bucket;
  const out = await mkdtemp(join(tmpdir(), 'tlearn-bench-batch-'));
  const deps = { s3, bucket, extractor, limitInputPixels: 40_000_000, log: silentLog };
  // The queue is a list: the chunks run in order, one at a time, as the local stack's poller
  // (batch size 1) hands them to the worker.
  const sent: { dataset: string; id: string; part: number }[] = [];
  const sqs = {
    send: async (cmd: { input: { Entries?: { MessageBody?: string }[] } }) => {
      for (const e of cmd.input.Entries ?? []) sent.push(JSON.parse(e.MessageBody ?? '{}'));
      return { Failed: [] };
    },
  } as unknown as Parameters<typeof startBatch>[0]['sqs'];

  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const extract = async (dir: string): Promise<{ ms: number; cpuMs: number }> => {
    const { images } = await listLocalImages([dir]);
    await rm(out, { recursive: true, force: true });
    const c = cpu();
    const t = performance.now();
    const r = await extractFiles({ images, extractor, outDir: out, batchSize: 8 });
    const ms = performance.now() - t;
    if (r.written !== images.length || r.failed.length > 0)
      throw new Error(`extract wrote ${r.written} of ${images.length} (${r.failed.length} failed)`);
    return { ms, cpuMs: cpu() - c };
  };
  const batch = async (
    prefix: string,
    expect: number,
    decodeConcurrency?: number,
  ): Promise<{ ms: number; cpuMs: number; chunkMs: number; chunks: number }> => {
    sent.length = 0;
    const c = cpu();
    const t = performance.now();
    const { id } = await startBatch(
      { s3, bucket, sqs, queueUrl: 'bench' },
      DATASET,
      { prefix },
      MODEL_VERSION,
    );
    let finished = false;
    const d = decodeConcurrency === undefined ? deps : { ...deps, decodeConcurrency };
    for (const msg of [...sent]) finished = (await runChunk(d, msg)).batch === 'finished';
    const ms = performance.now() - t;
    const cpuMs = cpu() - c;
    const summary = await s3mod.getJson(s3, bucket, `batches/${DATASET}/${id}/summary.json`, SummarySchema);
    const { counts } = summary;
    if (!finished || counts.done !== expect || counts.failed !== 0)
      throw new Error(`batch ${id} scored ${JSON.stringify(counts)} of ${expect} images`);
    const chunkMs = summary.usage?.usage.lambda[0]?.durationMs ?? 0;
    return { ms, cpuMs, chunkMs, chunks: sent.length };
  };

  try {
    const { images } = await listLocalImages([p.imagesDir]);
    // Warm-up (JIT, sharp, the engine's first batches, the batch worker's model cache).
    await extract(p.warmDir);
    await batch(p.warmPrefix, 4);
    const batchMs: number[] = [];
    const extractMs: number[] = [];
    const batchCpuMs: number[] = [];
    const extractCpuMs: number[] = [];
    const compareMs: number[] = [];
    const compareCpuMs: number[] = [];
    let last = { chunkMs: 0, chunks: 0 };
    for (let i = 0; i < p.reps; i++) {
      if (p.compareDecodeConcurrency !== undefined) {
        const c = await batch(p.prefix, images.length, p.compareDecodeConcurrency);
        compareMs.push(c.ms);
        compareCpuMs.push(c.cpuMs);
      }
      const e = await extract(p.imagesDir);
      extractMs.push(e.ms);
      extractCpuMs.push(e.cpuMs);
      const b = await batch(p.prefix, images.length);
      batchMs.push(b.ms);
      batchCpuMs.push(b.cpuMs);
      last = b;
      process.stderr.write(
        `[batch] rep ${i + 1}/${p.reps}: extract ${Math.round(e.ms)} ms (${Math.round(e.cpuMs)} CPU), batch ${Math.round(b.ms)} ms (${Math.round(b.cpuMs)} CPU)${
          compareMs[i] === undefined
            ? ''
            : `, batch with ${p.compareDecodeConcurrency} decodes at once ${Math.round(compareMs[i] ?? 0)} ms (${Math.round(compareCpuMs[i] ?? 0)} CPU)`
        }\n`,
      );
    }
    return {
      n: images.length,
      backend: extractor.backend,
      batchMs,
      extractMs,
      batchCpuMs,
      extractCpuMs,
      compareMs,
      compareCpuMs,
      chunkMs: last.chunkMs,
      chunks: last.chunks,
      loadMs,
    };
  } finally {
    extractor.dispose();
    s3.destroy();
    await rm(out, { recursive: true, force: true });
  }
}

/** `batch-rate`: batch scoring rate / extraction rate on the same images. */
export function batchBench(): Benchmark {
  return {
    name: 'batch-rate',
    group: 'batch',
    describe:
      'batch scoring (lib/batch/worker.ts, chunk after chunk) vs `tlearn extract` (extractFiles) on the same 200 (quick: 8) JPEGs, rate ratio',
    quick: true,
    byDefault: true,
    async run(ctx) {
      const n = ctx.mode.quick ? 8 : Number(process.env.TLEARN_BENCH_BATCH_N ?? 200);
      const reps = ctx.reps(3, 1);
      const weights = await ctx.fixtures.weights();
      const imagesDir = await labelledJpegFolder(ctx.workDir, n);
      const warmDir = await labelledJpegFolder(ctx.workDir, 4);
      const em = await startEmulator({ bucket: 'tlearn-bench-batch' });
      try {
        const s3 = em.clients.s3;
        const prefix = `inbox/bench-${n}/`;
        const warmPrefix = 'inbox/bench-warm/';
        await uploadFolder(s3, em.bucket, imagesDir, prefix);
        await uploadFolder(s3, em.bucket, warmDir, warmPrefix);
        await putJson(
          s3,
          em.bucket,
          modelFileKey(DATASET, MODEL_VERSION, 'model.json'),
          benchModel(weights.weightsId),
        );
        const params: BatchBenchParams = {
          weightsDir: weights.dir,
          imagesDir,
          prefix,
          warmPrefix,
          warmDir,
          s3: { endpoint: em.endpoint, region: em.region, bucket: em.bucket },
          reps,
          ...(process.env.TLEARN_BENCH_BATCH_COMPARE
            ? { compareDecodeConcurrency: Number(process.env.TLEARN_BENCH_BATCH_COMPARE) }
            : {}),
        };
        const r = await runWorker<BatchBenchResult & { usage: ProcessUsage }>('batch', params, {
          cwd: ctx.root,
          timeoutMs: 3_600_000,
          verbose: ctx.mode.verbose,
        });
        const ratios = r.batchMs.map((b, i) => (r.extractMs[i] ?? 0) / b);
        const batchRate = r.n / (median(r.batchMs) / 1000);
        const extractRate = r.n / (median(r.extractMs) / 1000);
        return [
          {
            name: 'batch-rate',
            group: 'batch',
            title: `batch scoring rate / tlearn extract rate, ${r.n} JPEGs 500x375 → 150x150 flatten (model loaded)`,
            unit: 'x',
            better: 'higher',
            status: 'ok',
            summary: summarize(ratios.map((x) => roundSig(x, 3))),
            backend: r.backend,
            peakRssMB: kbToMB(r.usage.maxRssKB),
            params: { images: r.n, reps, chunkSize: 20, warmup: '4 images each', order: 'extract, batch, …' },
            extra: {
              batchImagesPerS: roundSig(batchRate, 3),
              extractImagesPerS: roundSig(extractRate, 3),
              batchMs: r.batchMs.map(Math.round),
              extractMs: r.extractMs.map(Math.round),
              batchCpuMs: r.batchCpuMs.map(Math.round),
              extractCpuMs: r.extractCpuMs.map(Math.round),
              // CPU time per image, extract / batch: > 1 means batch does less work per image.
              cpuRatio: roundSig(median(r.extractCpuMs) / median(r.batchCpuMs), 3),
              ...(r.compareMs.length > 0
                ? {
                    compareDecodeConcurrency: params.compareDecodeConcurrency,
                    compareMs: r.compareMs.map(Math.round),
                    compareCpuMs: r.compareCpuMs.map(Math.round),
                    compareRatio: roundSig(median(r.extractMs) / median(r.compareMs), 3),
                  }
                : {}),
              chunks: r.chunks,
              chunkMsSum: Math.round(r.chunkMs),
              loadMs: Math.round(r.loadMs),
            },
            note: `batch ${roundSig(batchRate, 3)} images/s, extract ${roundSig(extractRate, 3)} images/s (medians); CPU per image extract/batch ${roundSig(
              median(r.extractCpuMs) / median(r.batchCpuMs),
              3,
            )}x; ${r.chunks} chunks; target ≥ 0.9x`,
          },
        ];
      } finally {
        await em.stop();
      }
    },
  };
}
