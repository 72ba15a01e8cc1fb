/**
 * API benchmarks: cold start (process start → first answered prediction) and warm prediction
 * latency / throughput at 1 and 4 concurrent clients, over HTTP on loopback.
 *
 * The S3 emulator runs in this process with a promoted model seeded into it (as a deployed
 * stack has one in S3); the API runs in a child (`api-server.ts`) so its start-up, memory and CPU
 * are its own, like a fresh Lambda container.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FeatureSpec, featureDims, specToString } from '../lib/model/spec.ts';
import { currentModelKey, imageKey, modelFileKey } from '../lib/storage/keys.ts';
import { putJson, putObject } from '../lib/storage/s3.ts';
import type { ModelDocument } from '../lib/training/model-document.ts';
import { type Emulator, startEmulator } from '../test/helpers/emulator.ts';
import { makeImage, seededRandom } from '../test/helpers/images.ts';
import { ipcChild, kbToMB, type ProcessUsage } from './lib/child.ts';
import { median, roundSig, summarize, summarizeLatency } from './lib/stats.ts';
import type { BenchContext, Figure } from './lib/types.ts';

/** Dataset and version the benchmark's promoted model lives under. */
export const BENCH_DATASET = 'bench';
export const BENCH_MODEL_VERSION = '20260101T000000Z-bench01';
const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:tlearn-bench';

/**
 * Which engine the API process runs: `default` lets the handler choose (tfjs-node → onnx → wasm →
 * cpu), `wasm` forces the tfjs wasm fallback with TLEARN_BACKEND (where onnxruntime-node is absent).
 */
export type ApiServerMode = 'default' | 'wasm';

/** The emulator with a promoted model, and the environment an API process needs to use it. */
export interface ApiBenchEnv {
  env: Record<string, string>;
  /** The 500x375 JPEG every prediction sends. */
  image: Buffer;
  /**
   * The predict key every prediction sends (`x-api-key`), made once through `POST /keys` of a
   * running API with the admin key, as `tlearn keys create --role predict --dataset bench` does;
   * undefined until then.
   */
  predictKey?: string;
  stop(): Promise<void>;
}

/** Environment variable the API child reads its admin key from (the local stack's `--api-key`). */
export const BENCH_ADMIN_KEY_ENV = 'TLEARN_BENCH_ADMIN_KEY';

/** Starts the emulator and promotes a binary model whose spec matches the benchmark weights. */
export async function startApiBenchEnv(weights: { dir: string; weightsId: string }): Promise<ApiBenchEnv> {
  const em: Emulator = await startEmulator({ bucket: 'tlearn-bench' });
  // Keys like the local stack's: a keys file the API reads, and an admin key that may create more.
  const keysDir = await mkdtemp(join(tmpdir(), 'tlearn-bench-keys-'));
  try {
    const spec: FeatureSpec = {
      model: 'vgg16',
      weights: weights.weightsId,
      input: [150, 150],
      pooling: 'flatten',
      preprocessing: 'caffe',
      resize: 'bilinear',
    };
    const dims = featureDims(spec);
    const rand = seededRandom(5);
    const doc: ModelDocument = {
      format: 'tlearn-head',
      formatVersion: 1,
      dataset: BENCH_DATASET,
      version: BENCH_MODEL_VERSION,
      classes: ['cat', 'dog'],
      coef: [Array.from({ length: dims }, () => (rand() - 0.5) * 1e-3)],
      intercept: [0],
      spec: specToString(spec),
      trainedAt: '2026-01-01T00:00:00.000Z',
      options: { C: 1, maxIter: 100, tol: 1e-4, testSize: 0.2, seed: 42, refitOnAll: false },
      metrics: { accuracy: 0.9, logLoss: 0.3, nTrain: 160, nTest: 40, converged: true, nIter: 30 },
      randomWeights: false,
    };
    const s3 = em.clients.s3;
    const image = await makeImage('jpeg', {
      width: 500,
      height: 375,
      pattern: 'gradient',
      noise: 24,
      seed: 11,
      quality: 90,
    });
    await putObject(s3, em.bucket, imageKey(BENCH_DATASET, 'cat', 'one.jpg'), image, {
      contentType: 'image/jpeg',
    });
    await putJson(s3, em.bucket, modelFileKey(BENCH_DATASET, BENCH_MODEL_VERSION, 'model.json'), doc);
    await putJson(s3, em.bucket, currentModelKey(BENCH_DATASET), {
      version: BENCH_MODEL_VERSION,
      promotedAt: '2026-01-01T00:01:00.000Z',
      previous: null,
    });
    return {
      env: {
        TLEARN_BUCKET: em.bucket,
        AWS_REGION: em.region,
        AWS_ENDPOINT_URL: em.endpoint,
        TLEARN_STATE_MACHINE_ARN: STATE_MACHINE_ARN,
        TLEARN_WEIGHTS: 'uri',
        BASE_MODEL_URI: weights.dir,
        TLEARN_INPUT_SIZE: '150',
        TLEARN_POOLING: 'flatten',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        // Keep the child's stdout quiet: Powertools logs JSON per request and flushes metrics.
        POWERTOOLS_LOG_LEVEL: 'WARN',
        POWERTOOLS_METRICS_DISABLED: 'true',
        TLEARN_API_KEYS_FILE: join(keysDir, 'api-keys.json'),
        [BENCH_ADMIN_KEY_ENV]: randomBytes(24).toString('base64url'),
      },
      image,
      async stop() {
        await em.stop();
        await rm(keysDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await em.stop();
    await rm(keysDir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Makes the benchmark's predict key through the keys API of a running API process (once per
 * environment: the keys file outlives the process), as a user would with `tlearn keys create`.
 */
async function ensurePredictKey(url: string, bench: ApiBenchEnv): Promise<string> {
  if (bench.predictKey) return bench.predictKey;
  const admin = bench.env[BENCH_ADMIN_KEY_ENV] ?? '';
  const res = await fetch(`${url}/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': admin },
    body: JSON.stringify({ role: 'predict', datasets: [BENCH_DATASET], name: 'bench' }),
  });
  const text = await res.text();
  if (res.status !== 201 && res.status !== 200) {
    throw new Error(`POST /keys answered ${res.status}: ${text.slice(0, 300)}`);
  }
  const body = JSON.parse(text) as { value?: unknown };
  if (typeof body.value !== 'string')
    throw new Error(`POST /keys answered no key value: ${text.slice(0, 300)}`);
  bench.predictKey = body.value;
  return body.value;
}

interface ServerMessage {
  type: string;
  port?: number;
  uptimeMs?: number;
  usage?: ProcessUsage;
}

/** A running API child. */
interface ApiServer {
  url: string;
  /** Child's own uptime when it started listening (process start → ready). */
  readyUptimeMs: number;
  /** Parent-side spawn → ready message. */
  readyMs: number;
  spawnedAt: number;
  usage(): Promise<ProcessUsage>;
  stop(): Promise<void>;
}

async function startServer(
  root: string,
  mode: ApiServerMode,
  env: Record<string, string>,
  opts: { timeoutMs: number; verbose: boolean },
): Promise<ApiServer> {
  const spawnedAt = performance.now();
  const child: ChildProcess = spawn(process.execPath, ['bin/run-ts.js', 'bench/api-server.ts'], {
    cwd: root,
    env: { ...process.env, ...env, ...(mode === 'default' ? {} : { TLEARN_BACKEND: mode }) },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const { next, kill } = ipcChild<ServerMessage>(child, 'API process', { verbose: opts.verbose });
  try {
    const ready = await next('ready', opts.timeoutMs);
    return {
      url: `http://127.0.0.1:${ready.port}`,
      readyUptimeMs: ready.uptimeMs ?? Number.NaN,
      readyMs: performance.now() - spawnedAt,
      spawnedAt,
      async usage() {
        const reply = next('usage', 10_000);
        child.send({ type: 'usage' });
        const m = await reply;
        if (m.usage === undefined) throw new Error('API process sent no usage');
        return m.usage;
      },
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.send({ type: 'stop' });
        const timer = setTimeout(kill, 5_000);
        await exited;
        clearTimeout(timer);
      },
    };
  } catch (err) {
    kill();
    throw err;
  }
}

interface Answer {
  ms: number;
  status: number;
  /** Server-side timings of a 200 (`timingsMs` of the prediction body). */
  timings?: Record<string, number>;
  error?: string;
}

async function predict(url: string, image: Buffer, key: string, query = ''): Promise<Answer> {
  const t = performance.now();
  try {
    const res = await fetch(`${url}/datasets/${BENCH_DATASET}/predictions${query}`, {
      method: 'POST',
      body: image,
      headers: { 'content-type': 'image/jpeg', 'x-api-key': key },
    });
    const text = await res.text();
    const ms = performance.now() - t;
    if (res.status !== 200) return { ms, status: res.status, error: text.slice(0, 300) };
    const body = JSON.parse(text) as { label?: unknown; timingsMs?: Record<string, number> };
    if (typeof body.label !== 'string') return { ms, status: res.status, error: 'no label in the answer' };
    return { ms, status: 200, ...(body.timingsMs ? { timings: body.timingsMs } : {}) };
  } catch (err) {
    return { ms: performance.now() - t, status: 0, error: err instanceof Error ? err.message : String(err) };
  }
}

async function healthBackend(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}/health`);
    const body = (await res.json()) as { backend?: unknown };
    return typeof body.backend === 'string' ? body.backend : undefined;
  } catch {
    return undefined;
  }
}

const prefix = (mode: ApiServerMode): string => (mode === 'default' ? 'api-' : `api-${mode}-`);
const what = (mode: ApiServerMode): string =>
  mode === 'default' ? 'API Lambda handler as deployed' : `API Lambda handler forced to ${mode}`;

/**
 * Cold start: spawn → the first 200 prediction, repeated (each in a new process) after a
 * discarded warm-up start that fills the OS file cache and tsx's transpile cache.
 */
export async function benchColdStart(
  ctx: BenchContext,
  bench: ApiBenchEnv,
  mode: ApiServerMode,
): Promise<Figure[]> {
  const warmup = ctx.mode.quick ? 0 : 1;
  const reps = ctx.reps(3, 1);
  const samples: number[] = [];
  const ready: number[] = [];
  const readyUptime: number[] = [];
  const first: number[] = [];
  let rss = 0;
  let backend: string | undefined;
  // The predict key is made through the first process's keys API, so that start is not timed.
  const extra = bench.predictKey === undefined && warmup === 0 ? 1 : 0;
  for (let i = 0; i < warmup + extra + reps; i++) {
    const server = await startServer(ctx.root, mode, bench.env, {
      timeoutMs: 300_000,
      verbose: ctx.mode.verbose,
    });
    try {
      const key = await ensurePredictKey(server.url, bench);
      const t = performance.now();
      const answer = await predict(server.url, bench.image, key);
      const done = performance.now();
      if (answer.status !== 200)
        throw new Error(`first prediction answered ${answer.status}: ${answer.error}`);
      const usage = await server.usage();
      backend ??= await healthBackend(server.url);
      if (i < warmup + extra) continue;
      samples.push(done - server.spawnedAt);
      ready.push(server.readyMs);
      readyUptime.push(server.readyUptimeMs);
      first.push(done - t);
      rss = Math.max(rss, kbToMB(usage.maxRssKB));
      ctx.progress(
        `  cold start ${i - warmup - extra + 1}/${reps}: ${Math.round(done - server.spawnedAt)} ms`,
      );
    } finally {
      await server.stop();
    }
  }
  return [
    {
      name: `${prefix(mode)}cold-start`,
      group: 'api',
      title: `cold start: process start → first answered prediction (${what(mode)})`,
      unit: 'ms',
      better: 'lower',
      status: 'ok',
      summary: summarize(samples),
      ...(backend ? { backend } : {}),
      peakRssMB: rss,
      params: { warmup, reps, image: '500x375 jpeg', weights: 'real-size VGG16 from disk' },
      extra: {
        spawnToListeningMs: roundSig(median(ready), 4),
        processUptimeAtListeningMs: roundSig(median(readyUptime), 4),
        firstPredictionMs: roundSig(median(first), 4),
      },
      note: `listening after ${Math.round(median(ready))} ms; first prediction ${Math.round(median(first))} ms`,
    },
  ];
}

interface RoundResult {
  latencies: number[];
  wallMs: number;
  failures: string[];
  timings: Record<string, number>[];
}

async function loadRound(
  url: string,
  image: Buffer,
  key: string,
  clients: number,
  requests: number,
): Promise<RoundResult> {
  const latencies: number[] = [];
  const failures: string[] = [];
  const timings: Record<string, number>[] = [];
  let sent = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (sent < requests) {
        sent++;
        const a = await predict(url, image, key);
        if (a.status === 200) {
          latencies.push(a.ms);
          if (a.timings) timings.push(a.timings);
        } else failures.push(`${a.status} ${a.error ?? ''}`.trim());
      }
    }),
  );
  return { latencies, wallMs: performance.now() - t, failures, timings };
}

/**
 * Warm latency and throughput: one API process, a few warm-up predictions, then rounds of
 * requests from 1 and from 4 concurrent clients (each client sends its next request as soon as
 * the previous one is answered). Latency percentiles are over all requests of all rounds;
 * throughput is per round.
 */
export async function benchLatency(
  ctx: BenchContext,
  bench: ApiBenchEnv,
  mode: ApiServerMode,
): Promise<Figure[]> {
  const rounds = ctx.reps(3, 1);
  const server = await startServer(ctx.root, mode, bench.env, {
    timeoutMs: 300_000,
    verbose: ctx.mode.verbose,
  });
  const figures: Figure[] = [];
  try {
    const backend = await healthBackend(server.url);
    const key = await ensurePredictKey(server.url, bench);
    for (let i = 0; i < 3; i++) {
      const a = await predict(server.url, bench.image, key);
      if (a.status !== 200) throw new Error(`warm-up prediction answered ${a.status}: ${a.error}`);
    }
    const results: {
      clients: number;
      latencies: number[];
      rps: number[];
      failures: string[];
      timings: Record<string, number>[];
    }[] = [];
    for (const clients of [1, 4]) {
      const requests = clients === 1 ? (ctx.mode.quick ? 4 : 10) : ctx.mode.quick ? 8 : 16;
      const all: RoundResult = { latencies: [], wallMs: 0, failures: [], timings: [] };
      const rps: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const round = await loadRound(server.url, bench.image, key, clients, requests);
        all.latencies.push(...round.latencies);
        all.failures.push(...round.failures);
        all.timings.push(...round.timings);
        rps.push(round.latencies.length / (round.wallMs / 1000));
        ctx.progress(
          `  ${clients} client(s), round ${r + 1}/${rounds}: ${requests} requests in ${Math.round(round.wallMs)} ms`,
        );
      }
      results.push({ clients, latencies: all.latencies, rps, failures: all.failures, timings: all.timings });
    }
    const rss = kbToMB((await server.usage()).maxRssKB);
    for (const r of results) {
      const params = {
        clients: r.clients,
        rounds,
        requestsPerRound: r.latencies.length / rounds,
        image: '500x375 jpeg',
      };
      const serverMedian = (k: string) => {
        const v = r.timings.map((t) => t[k]).filter((x): x is number => typeof x === 'number');
        return v.length ? roundSig(median(v), 3) : undefined;
      };
      const failed = r.failures.length;
      if (r.latencies.length === 0) {
        throw new Error(`every request failed at ${r.clients} client(s): ${r.failures[0] ?? ''}`);
      }
      const lat = summarizeLatency(r.latencies);
      figures.push({
        name: `${prefix(mode)}latency-c${r.clients}`,
        group: 'api',
        title: `prediction latency at ${r.clients} concurrent client(s) (${what(mode)})`,
        unit: 'ms',
        better: 'lower',
        status: failed > 0 ? 'failed' : 'ok',
        summary: { n: lat.n, median: lat.p50, min: lat.min, max: lat.max, mean: lat.mean },
        ...(backend ? { backend } : {}),
        peakRssMB: rss,
        params,
        extra: {
          p50: roundSig(lat.p50, 4),
          p95: roundSig(lat.p95, 4),
          p99: roundSig(lat.p99, 4),
          failedRequests: failed,
          serverDecodeMs: serverMedian('decode'),
          serverForwardMs: serverMedian('forward'),
          serverTotalMs: serverMedian('total'),
        },
        note: `p95 ${Math.round(lat.p95)}, p99 ${Math.round(lat.p99)} ms; server: forward ${serverMedian('forward') ?? '?'} ms${
          failed > 0 ? `; ${failed} FAILED` : ''
        }`,
        ...(failed > 0 ? { error: `${failed} requests failed: ${r.failures[0]}` } : {}),
      });
      figures.push({
        name: `${prefix(mode)}throughput-c${r.clients}`,
        group: 'api',
        title: `predictions per second at ${r.clients} concurrent client(s) (${what(mode)})`,
        unit: 'req/s',
        better: 'higher',
        status: failed > 0 ? 'failed' : 'ok',
        summary: summarize(r.rps),
        ...(backend ? { backend } : {}),
        peakRssMB: rss,
        params,
        extra: { failedRequests: failed },
      });
    }
    figures.push(await benchCaptureOverhead(ctx, server.url, bench, key, { backend, rss, mode }));
  } finally {
    await server.stop();
  }
  return figures;
}

/** Writes the benchmark dataset's capture policy through the API, as an admin would. */
async function putCapturePolicy(url: string, bench: ApiBenchEnv, sample: number): Promise<void> {
  const res = await fetch(`${url}/datasets/${BENCH_DATASET}/settings`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-api-key': bench.env[BENCH_ADMIN_KEY_ENV] ?? '' },
    body: JSON.stringify({ capture: { sample, belowConfidence: null } }),
  });
  if (res.status !== 200) {
    throw new Error(
      `PUT /datasets/${BENCH_DATASET}/settings answered ${res.status}: ${(await res.text()).slice(0, 300)}`,
    );
  }
}

/**
 * A second, finer estimate of the same cost: pairs of back-to-back predictions, one with
 * `?capture=true` (the same early image write as a sampled capture) and one without, in a random
 * order, with the policy off. The median of the pairs' differences follows the machine's load from
 * one second to the next, which blocks of predictions cannot.
 */
async function pairedCaptureDifferences(
  url: string,
  bench: ApiBenchEnv,
  key: string,
  pairs: number,
  failures: string[],
): Promise<{ pairs: number; client?: number; total?: number; observe?: number }> {
  const diffs = { client: [] as number[], total: [] as number[], observe: [] as number[] };
  const rand = seededRandom(7);
  for (let i = 0; i < pairs; i++) {
    const onFirst = rand() < 0.5;
    const first = await predict(url, bench.image, key, onFirst ? '?capture=true' : '');
    const second = await predict(url, bench.image, key, onFirst ? '' : '?capture=true');
    const [on, off] = onFirst ? [first, second] : [second, first];
    if (on.status !== 200 || off.status !== 200) {
      for (const a of [on, off]) if (a.status !== 200) failures.push(`${a.status} ${a.error ?? ''}`.trim());
      continue;
    }
    diffs.client.push(on.ms - off.ms);
    const t = (a: Answer, k: string) => a.timings?.[k] ?? Number.NaN;
    diffs.total.push(t(on, 'total') - t(off, 'total'));
    diffs.observe.push(t(on, 'observe') - t(off, 'observe'));
  }
  const med = (v: number[]) => {
    const finite = v.filter((x) => Number.isFinite(x));
    return finite.length ? roundSig(median(finite), 3) : undefined;
  };
  return {
    pairs: diffs.client.length,
    ...(diffs.client.length
      ? { client: med(diffs.client), total: med(diffs.total), observe: med(diffs.observe) }
      : {}),
  };
}

/**
 * What capturing adds to a warm prediction: short blocks of sequential predictions (one client)
 * with the capture policy off (`sample: 0`) and on (`sample: 1`: every prediction captured), many
 * times alternated so a change of machine load hits both sides alike. Monitoring records are
 * written on both sides. The figure is p50 (on) − p50 (off) over HTTP; beside it, the server's
 * own `observe` step (what runs after scoring: the record, and the capture's document), whose
 * difference is the capture's cost without the noise of the forward pass.
 */
export async function benchCaptureOverhead(
  ctx: BenchContext,
  url: string,
  bench: ApiBenchEnv,
  key: string,
  info: { backend: string | undefined; rss: number; mode: ApiServerMode },
): Promise<Figure> {
  const blocks = ctx.reps(12, 6);
  const perBlock = ctx.mode.quick ? 4 : 5;
  const client = { off: [] as number[], on: [] as number[] };
  const total = { off: [] as number[], on: [] as number[] };
  const observe = { off: [] as number[], on: [] as number[] };
  const decode = { off: [] as number[], on: [] as number[] };
  // Server total minus the forward pass: everything a capture could add, without the part of the
  // request a busy machine's CPU contention moves the most.
  const besideForward = { off: [] as number[], on: [] as number[] };
  const failures: string[] = [];
  try {
    for (let b = 0; b < blocks; b++) {
      // Off then on in even blocks, on then off in odd ones: neither side always runs second.
      const order: ('off' | 'on')[] = b % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      for (const which of order) {
        await putCapturePolicy(url, bench, which === 'on' ? 1 : 0);
        // One discarded prediction after each switch.
        await predict(url, bench.image, key);
        const round = await loadRound(url, bench.image, key, 1, perBlock);
        client[which].push(...round.latencies);
        const pick = (k: string) =>
          round.timings.map((t) => t[k]).filter((x): x is number => typeof x === 'number');
        total[which].push(...pick('total'));
        observe[which].push(...pick('observe'));
        decode[which].push(...pick('decode'));
        besideForward[which].push(
          ...round.timings
            .map((t) => (t.total ?? Number.NaN) - (t.forward ?? Number.NaN))
            .filter((x) => Number.isFinite(x)),
        );
        failures.push(...round.failures);
      }
    }
  } finally {
    await putCapturePolicy(url, bench, 0).catch(() => undefined);
  }
  const paired = await pairedCaptureDifferences(url, bench, key, ctx.mode.quick ? 12 : 30, failures);
  if (client.on.length === 0 || client.off.length === 0) {
    throw new Error(`every capture-overhead request failed: ${failures[0] ?? ''}`);
  }
  ctx.progress(
    `  capture off/on: ${client.off.length} + ${client.on.length} predictions in ${blocks} alternated blocks`,
  );
  const off = summarizeLatency(client.off);
  const on = summarizeLatency(client.on);
  const overhead = on.p50 - off.p50;
  const med = (v: number[]) => (v.length ? roundSig(median(v), 3) : undefined);
  const observeOff = med(observe.off);
  const observeOn = med(observe.on);
  return {
    name: `${prefix(info.mode)}capture-overhead`,
    group: 'api',
    title: `capture on (sample 1.0) − off: warm prediction p50 at 1 client (${what(info.mode)})`,
    unit: 'ms',
    better: 'lower',
    status: failures.length > 0 ? 'failed' : 'ok',
    summary: {
      n: client.on.length + client.off.length,
      median: overhead,
      min: overhead,
      max: overhead,
      mean: overhead,
    },
    ...(info.backend ? { backend: info.backend } : {}),
    peakRssMB: info.rss,
    params: {
      blocks,
      requestsPerBlock: perBlock,
      clients: 1,
      image: '500x375 jpeg',
      captureOn: { sample: 1 },
    },
    extra: {
      p50Off: roundSig(off.p50, 4),
      p50On: roundSig(on.p50, 4),
      p95Off: roundSig(off.p95, 4),
      p95On: roundSig(on.p95, 4),
      serverTotalOffMs: med(total.off),
      serverTotalOnMs: med(total.on),
      serverObserveOffMs: observeOff,
      serverObserveOnMs: observeOn,
      serverBesideForwardOffMs: med(besideForward.off),
      serverBesideForwardOnMs: med(besideForward.on),
      serverDecodeOffMs: med(decode.off),
      serverDecodeOnMs: med(decode.on),
      pairs: paired.pairs,
      pairedClientDiffMs: paired.client,
      pairedServerTotalDiffMs: paired.total,
      pairedServerObserveDiffMs: paired.observe,
      serverObserveOverheadMs:
        observeOff === undefined || observeOn === undefined ? undefined : roundSig(observeOn - observeOff, 3),
      failedRequests: failures.length,
    },
    note: `p50 off ${roundSig(off.p50, 3)} → on ${roundSig(on.p50, 3)} ms; server after scoring ${
      observeOff ?? '?'
    } → ${observeOn ?? '?'} ms; paired median ${paired.client ?? '?'} ms (server ${paired.total ?? '?'})${
      failures.length ? `; ${failures.length} FAILED` : ''
    }`,
    ...(failures.length > 0 ? { error: `${failures.length} requests failed: ${failures[0]}` } : {}),
  };
}
