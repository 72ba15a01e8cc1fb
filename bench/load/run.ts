/**
 * Load test of the prediction API (`npm run load`, not part of `npm test`).
 *
 * A bounded run of N concurrent clients, each sending one request after another for S seconds: valid
 * predictions (PNG / JPEG / WebP bodies and JSON base64) mixed with bad requests (broken images,
 * wrong content types, malformed JSON, unknown datasets, invalid names and parameters), every one
 * checked against the answer it must get. Traffic goes to 127.0.0.1 only.
 *
 * By default the local stack is started in this process (`startLocalStack`: emulator, pollers,
 * state machine, API on free ports, seeded random weights at a small input size) and its demo
 * dataset trained first; `--url` targets an API that is already running on loopback instead.
 *
 * Reports zero 5xx / zero dropped connections, p50/p95/p99 latency and throughput, and memory
 * (RSS, heap after GC, tfjs tensors) sampled through the run, as a table on stderr and JSON on
 * stdout and in `bench/load-results.json`. Exits 1 when any request got a 5xx, lost its
 * connection, or got another answer than the one it must get, or when tensors leaked.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Log } from '../../lib/util/log.ts';
import { makeBadImageCorpus } from '../../scripts/fixtures/make-bad-images.ts';
import { makeImage, seededRandom } from '../../test/helpers/images.ts';

const HELP = `usage: npm run load -- [options]

  --clients N       concurrent clients (default 20)
  --seconds S       length of the measured run (default 60)
  --warmup S        seconds of traffic before measuring, not counted (default 5)
  --bad-ratio F     share of bad requests, 0-1 (default 0.3)
  --url URL         an API already running on loopback (127.0.0.1, localhost, [::1]);
                    default: start the local stack in this process
  --dataset D       dataset with a promoted model (default: the local stack's demo)
  --input-size N    network input of the in-process stack (default 32)
  --out FILE        JSON results (default bench/load-results.json)
  --help            this text

Exit status: 0 when every request got the answer it must get with no 5xx, no dropped
connection and no leaked tensor; 1 otherwise; 2 for a usage or setup error.`;

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  clients: number;
  seconds: number;
  warmup: number;
  badRatio: number;
  url: string | undefined;
  dataset: string | undefined;
  inputSize: number;
  out: string;
}

class UsageError extends Error {}

function number(raw: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new UsageError(`--${name} must be a number from ${min} to ${max} (got '${raw}')`);
  return n;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      'bad-ratio': { type: 'string' },
      url: { type: 'string' },
      dataset: { type: 'string' },
      'input-size': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  if (values.url !== undefined) {
    let host: string;
    try {
      host = new URL(values.url).hostname;
    } catch {
      throw new UsageError(`--url is not a URL: ${values.url}`);
    }
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) {
      throw new UsageError(`--url must point at this machine (127.0.0.1, localhost or [::1]); got ${host}`);
    }
  }
  return {
    clients: Math.round(number(values.clients, 'clients', 1, 500, 20)),
    seconds: number(values.seconds, 'seconds', 1, 3600, 60),
    warmup: number(values.warmup, 'warmup', 0, 600, 5),
    badRatio: number(values['bad-ratio'], 'bad-ratio', 0, 1, 0.3),
    url: values.url?.replace(/\/$/, ''),
    dataset: values.dataset,
    inputSize: Math.round(number(values['input-size'], 'input-size', 32, 1024, 32)),
    out: resolve(values.out ?? 'bench/load-results.json'),
  };
}

// ---------------------------------------------------------------------------------------------
// Requests

/** One request of the mix and the answer it must get. */
interface Shot {
  kind: 'valid' | 'bad';
  name: string;
  method: 'POST' | 'GET';
  path: string;
  contentType: string | undefined;
  body: Buffer | undefined;
  /** Status it must get. */
  expect: number;
  /** Error code it must carry (bad requests). */
  code?: string;
}

async function buildShots(dataset: string): Promise<{ valid: Shot[]; bad: Shot[] }> {
  const path = `/datasets/${dataset}/predictions`;
  const images = [
    {
      name: 'png',
      type: 'image/png',
      bytes: await makeImage('png', { width: 96, height: 64, seed: 1, noise: 20 }),
    },
    { name: 'jpeg', type: 'image/jpeg', bytes: await makeImage('jpeg', { width: 120, height: 90, seed: 2 }) },
    { name: 'webp', type: 'image/webp', bytes: await makeImage('webp', { width: 64, height: 64, seed: 3 }) },
  ];
  const valid: Shot[] = images.map((i) => ({
    kind: 'valid',
    name: `${i.name} body`,
    method: 'POST',
    path,
    contentType: i.type,
    body: i.bytes,
    expect: 200,
  }));
  valid.push({
    kind: 'valid',
    name: 'json base64',
    method: 'POST',
    path: `${path}?top=1`,
    contentType: 'application/json',
    body: Buffer.from(JSON.stringify({ image: images[0]?.bytes.toString('base64') })),
    expect: 200,
  });
  const bad: Shot[] = (await makeBadImageCorpus())
    .filter((e) => !e.expect.ok)
    .map((e) => ({
      kind: 'bad' as const,
      name: `corpus ${e.file}`,
      method: 'POST' as const,
      path,
      contentType: 'application/octet-stream',
      body: e.bytes,
      expect: e.bytes.length === 0 ? 400 : 422,
      code: e.expect.ok ? '' : e.bytes.length === 0 ? 'EmptyBody' : e.expect.code,
    }));
  const png = images[0]?.bytes ?? Buffer.alloc(0);
  const more: [string, string, string | undefined, Buffer, number, string][] = [
    ['text/plain body', path, 'text/plain', png, 415, 'UnsupportedMediaType'],
    ['no content type', path, undefined, png, 415, 'UnsupportedMediaType'],
    ['malformed json', path, 'application/json', Buffer.from('{"image": '), 400, 'InvalidJson'],
    ['json not base64', path, 'application/json', Buffer.from('{"image":"%%%"}'), 400, 'InvalidBase64'],
    [
      'unknown dataset',
      '/datasets/no-such-dataset-here/predictions',
      'image/png',
      png,
      404,
      'DatasetNotFound',
    ],
    ['dataset ..', '/datasets/%2E%2E/predictions', 'image/png', png, 400, 'InvalidDatasetName'],
    ['dataset upper case', '/datasets/DEMO/predictions', 'image/png', png, 400, 'InvalidDatasetName'],
    ['top=abc', `${path}?top=abc`, 'image/png', png, 400, 'InvalidTop'],
    ['top=0', `${path}?top=0`, 'image/png', png, 400, 'InvalidTop'],
    [
      'key of another dataset',
      path,
      'application/json',
      Buffer.from('{"key":"datasets/other/cat/1.png"}'),
      403,
      'KeyOutsideDataset',
    ],
  ];
  for (const [name, p, contentType, body, expect, code] of more) {
    bad.push({ kind: 'bad', name, method: 'POST', path: p, contentType, body, expect, code });
  }
  return { valid, bad };
}

interface Outcome {
  shot: Shot;
  /** When it finished, ms since the run started. */
  at: number;
  ms: number;
  status: number | undefined;
  /** Network failure (reset, timeout, …) instead of an answer. */
  dropped: string | undefined;
  /** Why the answer is not the one the request must get. */
  wrong: string | undefined;
}

function send(
  base: URL,
  agent: Agent,
  shot: Shot,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (shot.contentType !== undefined) headers['content-type'] = shot.contentType;
    if (shot.body !== undefined) headers['content-length'] = String(shot.body.length);
    // Options, not a URL string: the path goes out verbatim (a URL would normalise %2E%2E away).
    const req = request(
      {
        host: base.hostname.replace(/^\[|\]$/g, ''),
        port: base.port,
        path: shot.path,
        method: shot.method,
        headers,
        agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(shot.body);
  });
}

/** Whether an answer is the one a shot must get (status, and a coherent body). */
function judge(shot: Shot, status: number, text: string): string | undefined {
  if (status !== shot.expect) return `status ${status}, want ${shot.expect}: ${text.slice(0, 160)}`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'body is not JSON';
  }
  if (shot.kind === 'bad') {
    const code = (body as { error?: { code?: string } }).error?.code;
    return code === shot.code ? undefined : `error code ${String(code)}, want ${shot.code}`;
  }
  const scores = (body as { scores?: { probability: number }[] }).scores ?? [];
  const sum = scores.reduce((a, s) => a + s.probability, 0);
  const top = shot.path.includes('top=1');
  if (scores.length === 0 || (!top && Math.abs(sum - 1) > 1e-6)) return `scores do not sum to 1 (${sum})`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Memory

interface MemorySample {
  t: number;
  rssMB: number;
  heapUsedMB: number;
  externalMB: number;
  numTensors: number | null;
}

const MB = 1024 * 1024;
const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

/** A full GC when the runtime allows one (flag set before use), so heap figures are comparable. */
function gcFunction(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

function latency(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? Number.NaN),
    mean: round(mean),
  };
}

/** Least-squares slope of y over x (per unit of x). */
function slope(points: readonly [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const num = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

// ---------------------------------------------------------------------------------------------
// Target

interface Target {
  url: string;
  dataset: string;
  inProcess: boolean;
  description: string;
  /** tfjs' live tensor count when the API runs in this process. */
  numTensors: () => number | null;
  stop(): Promise<void>;
}

/** What the script needs of lib/local/stack.ts (loaded at run time: the stack may change shape). */
interface StackModule {
  startLocalStack(opts: Record<string, unknown>): Promise<{
    apiUrl: string;
    demo: Promise<{ dataset: string; version: string } | undefined>;
    stop(): Promise<void>;
  }>;
}

const quietLog = (errors: string[]): Log => ({
  debug() {},
  info() {},
  warn(message) {
    process.stderr.write(`  [stack warning] ${message}\n`);
  },
  error(message, extra) {
    errors.push(message);
    process.stderr.write(`  [stack error] ${message} ${extra ? JSON.stringify(extra).slice(0, 300) : ''}\n`);
  },
});

async function tensorCounter(): Promise<() => number | null> {
  try {
    const tf = await import('@tensorflow/tfjs');
    return () => tf.memory().numTensors;
  } catch {
    return () => null;
  }
}

async function startInProcess(opts: Options, serverErrors: string[]): Promise<Target> {
  // Handler logs (Powertools) go to stdout; keep them to real errors so stdout stays the JSON.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  const dataDir = await mkdtemp(join(tmpdir(), 'tlearn-load-'));
  const stackUrl = new URL('../../lib/local/stack.ts', import.meta.url).href;
  const { startLocalStack } = (await import(stackUrl)) as StackModule;
  const started = performance.now();
  const stack = await startLocalStack({
    dataDir,
    apiPort: 0,
    awsPort: 0,
    sfnPort: 0,
    weights: 'random:1',
    inputSize: opts.inputSize,
    pooling: 'avg',
    settleSeconds: 1,
    demo: true,
    demoPerClass: 4,
    log: quietLog(serverErrors),
    print: () => undefined,
    onDemoProgress: () => undefined,
  });
  try {
    process.stderr.write(`local stack on ${stack.apiUrl}; training the demo dataset…\n`);
    const demo = await stack.demo;
    if (!demo) throw new Error('the local stack did not train its demo dataset');
    process.stderr.write(
      `demo model ${demo.version} promoted after ${round((performance.now() - started) / 1000)} s\n`,
    );
    return {
      url: stack.apiUrl,
      dataset: opts.dataset ?? demo.dataset,
      inProcess: true,
      description: `local stack in this process (random weights, ${opts.inputSize}x${opts.inputSize}, avg pooling), model ${demo.version}`,
      numTensors: await tensorCounter(),
      async stop() {
        await stack.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Run

async function main(): Promise<number> {
  let opts: Options | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${HELP}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }

  const serverErrors: string[] = [];
  const target: Target = opts.url
    ? {
        url: opts.url,
        dataset: opts.dataset ?? 'demo',
        inProcess: false,
        description: `API at ${opts.url}`,
        numTensors: () => null,
        async stop() {},
      }
    : await startInProcess(opts, serverErrors);

  try {
    const base = new URL(target.url);
    const agent = new Agent({ keepAlive: true, maxSockets: opts.clients });
    const { valid, bad } = await buildShots(target.dataset);
    const first = valid[0];
    if (!first) throw new Error('no valid request');
    const probe = await send(base, agent, first, 60_000);
    if (probe.status !== 200) {
      throw new Error(
        `a valid prediction for '${target.dataset}' answers ${probe.status}: ${probe.body.slice(0, 200)}`,
      );
    }
    const model = (JSON.parse(probe.body) as { model?: { version?: string; spec?: string } }).model;

    const gc = gcFunction();
    const samples: MemorySample[] = [];
    const checkpoint = (label: string) => {
      gc?.();
      const m = process.memoryUsage();
      return {
        label,
        rssMB: round(m.rss / MB),
        heapUsedMB: round(m.heapUsed / MB),
        numTensors: target.numTensors(),
      };
    };
    const outcomes: Outcome[] = [];
    const rand = seededRandom(7);
    const startedAt = performance.now();
    const warmupEnd = startedAt + opts.warmup * 1000;
    const end = warmupEnd + opts.seconds * 1000;
    let afterWarmup: ReturnType<typeof checkpoint> | undefined;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      samples.push({
        t: round((performance.now() - startedAt) / 1000),
        rssMB: round(m.rss / MB),
        heapUsedMB: round(m.heapUsed / MB),
        externalMB: round(m.external / MB),
        numTensors: target.numTensors(),
      });
      if (afterWarmup === undefined && performance.now() >= warmupEnd)
        afterWarmup = checkpoint('after warm-up');
    }, 1000);

    process.stderr.write(
      `${opts.clients} clients for ${opts.warmup} s warm-up + ${opts.seconds} s against ${target.url} (dataset ${target.dataset})…\n`,
    );
    const client = async () => {
      while (performance.now() < end) {
        const pool = rand() < opts.badRatio ? bad : valid;
        const shot = pool[Math.floor(rand() * pool.length)] ?? first;
        const t0 = performance.now();
        let status: number | undefined;
        let dropped: string | undefined;
        let wrong: string | undefined;
        try {
          const res = await send(base, agent, shot, 30_000);
          status = res.status;
          wrong = judge(shot, res.status, res.body);
        } catch (err) {
          dropped = err instanceof Error ? err.message : String(err);
        }
        const t1 = performance.now();
        if (t0 >= warmupEnd) outcomes.push({ shot, at: t1 - startedAt, ms: t1 - t0, status, dropped, wrong });
      }
    };
    await Promise.all(Array.from({ length: opts.clients }, client));
    clearInterval(sampler);
    const measuredSeconds = (performance.now() - warmupEnd) / 1000;
    const atEnd = checkpoint('end');
    afterWarmup ??= atEnd;
    agent.destroy();

    // Figures.
    const statuses: Record<string, number> = {};
    for (const o of outcomes) {
      const k = o.status === undefined ? 'dropped' : String(o.status);
      statuses[k] = (statuses[k] ?? 0) + 1;
    }
    const server5xx = outcomes.filter((o) => (o.status ?? 0) >= 500);
    const dropped = outcomes.filter((o) => o.dropped !== undefined);
    const wrong = outcomes.filter((o) => o.wrong !== undefined && (o.status ?? 0) < 500);
    const after = samples.filter((s) => s.t >= opts.warmup);
    const heapSlope = slope(after.map((s) => [s.t / 60, s.heapUsedMB]));
    const rssSlope = slope(after.map((s) => [s.t / 60, s.rssMB]));
    const heapGrowth = round(atEnd.heapUsedMB - afterWarmup.heapUsedMB);
    const tensorLeak =
      afterWarmup.numTensors !== null && atEnd.numTensors !== null
        ? atEnd.numTensors - afterWarmup.numTensors
        : null;
    const failures: string[] = [];
    if (outcomes.length === 0) failures.push('no request completed in the measured window');
    if (server5xx.length > 0) failures.push(`${server5xx.length} answers with a 5xx status`);
    if (dropped.length > 0) failures.push(`${dropped.length} dropped connections`);
    if (wrong.length > 0) failures.push(`${wrong.length} answers other than the one the request must get`);
    if (tensorLeak !== null && tensorLeak > 0) failures.push(`${tensorLeak} tfjs tensors leaked`);
    if (serverErrors.length > 0) failures.push(`${serverErrors.length} error-level log lines from the stack`);

    const byKind = (kind: Shot['kind']) => {
      const os = outcomes.filter((o) => o.shot.kind === kind);
      return { requests: os.length, latencyMs: latency(os.map((o) => o.ms)) };
    };
    const results = {
      at: new Date().toISOString(),
      target: {
        url: target.url,
        inProcess: target.inProcess,
        description: target.description,
        dataset: target.dataset,
        model: model ?? null,
      },
      config: {
        clients: opts.clients,
        seconds: opts.seconds,
        warmupSeconds: opts.warmup,
        badRatio: opts.badRatio,
        node: process.version,
        cpus: (await import('node:os')).availableParallelism(),
      },
      totals: {
        requests: outcomes.length,
        statuses,
        server5xx: server5xx.length,
        dropped: dropped.length,
        wrongAnswers: wrong.length,
        serverErrorLogs: serverErrors.length,
      },
      throughputRps: round(outcomes.length / measuredSeconds),
      latencyMs: latency(outcomes.map((o) => o.ms)),
      valid: byKind('valid'),
      bad: byKind('bad'),
      memory: {
        note: target.inProcess
          ? 'the API and the load clients share this process; heap figures after a full GC'
          : 'the API runs in another process: its memory is not visible here',
        afterWarmup,
        end: atEnd,
        heapGrowthMB: heapGrowth,
        heapSlopeMBPerMin: round(heapSlope, 2),
        rssSlopeMBPerMin: round(rssSlope, 2),
        tensorsLeaked: tensorLeak,
        samples,
      },
      examples: {
        server5xx: server5xx
          .slice(0, 5)
          .map((o) => ({ request: o.shot.name, status: o.status, wrong: o.wrong })),
        dropped: dropped.slice(0, 5).map((o) => ({ request: o.shot.name, error: o.dropped })),
        wrongAnswers: wrong.slice(0, 5).map((o) => ({ request: o.shot.name, why: o.wrong })),
      },
      failures,
      passed: failures.length === 0,
    };

    // Table (stderr) and JSON (stdout + file).
    const row = (name: string, l: ReturnType<typeof latency>) =>
      `  ${name.padEnd(8)} ${String(l.count).padStart(7)} ${String(l.p50).padStart(8)} ${String(l.p95).padStart(8)} ${String(l.p99).padStart(8)} ${String(l.max).padStart(8)}`;
    process.stderr.write(
      [
        '',
        `  requests ${outcomes.length} in ${round(measuredSeconds)} s = ${results.throughputRps} req/s; statuses ${JSON.stringify(statuses)}`,
        `  5xx ${server5xx.length}   dropped ${dropped.length}   wrong answers ${wrong.length}   stack error logs ${serverErrors.length}`,
        '',
        '  latency    count   p50 ms   p95 ms   p99 ms   max ms',
        row('all', results.latencyMs),
        row('valid', results.valid.latencyMs),
        row('bad', results.bad.latencyMs),
        '',
        `  memory   after warm-up: rss ${afterWarmup.rssMB} MB, heap ${afterWarmup.heapUsedMB} MB, tensors ${afterWarmup.numTensors ?? 'n/a'}`,
        `           end:           rss ${atEnd.rssMB} MB, heap ${atEnd.heapUsedMB} MB, tensors ${atEnd.numTensors ?? 'n/a'}`,
        `           heap growth ${heapGrowth} MB, slope heap ${results.memory.heapSlopeMBPerMin} / rss ${results.memory.rssSlopeMBPerMin} MB per min`,
        '',
        failures.length === 0 ? '  PASSED' : `  FAILED: ${failures.join('; ')}`,
        '',
      ].join('\n'),
    );
    const json = JSON.stringify(results, null, 2);
    await mkdir(dirname(opts.out), { recursive: true });
    await writeFile(opts.out, `${json}\n`);
    process.stdout.write(`${json}\n`);
    return results.passed ? 0 : 1;
  } finally {
    await target.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `load test could not run: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(2);
  },
);
