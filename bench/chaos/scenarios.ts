/**
 * The chaos scenarios (README "Failure modes"): each starts the real `tlearn local` as a child
 * process (child-stack.ts), uploads generated images with parallel SDK PUTs, injects one fault and
 * waits until the dataset's promoted model counts every usable image, no image is pending and no
 * training runs: that is "healed". The time to heal is measured from the fault.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import {
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  SFNClient,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { LOCAL_DEFAULTS } from '../../lib/local/defaults.ts';
import {
  buildObjectCreatedEvent,
  buildObjectRemovedEvent,
  createSequencer,
  type NotificationContext,
} from '../../lib/pipeline/s3-events.ts';
import { mapWithConcurrency } from '../../lib/util/concurrency.ts';
import { startFaultProxy } from '../../test/hardening/fault-proxy.ts';
import { type LabelledImage, makeImage, makeLabelledImages } from '../../test/helpers/images.ts';
import { type ChildStack, createChildStack } from './child-stack.ts';

const DATASET = 'chaos';
const LABELS = ['red', 'green', 'blue', 'yellow'];
/** Parallel PUTs, like a few `aws s3 sync`s. */
const UPLOAD_CONCURRENCY = 32;

/** What one scenario reports. */
export interface ScenarioResult {
  name: string;
  healed: boolean;
  /** Fault → healed, ms (undefined when it did not heal). */
  healMs?: number;
  /** Start of the restarted process (part of healMs), ms. */
  restartMs?: number;
  images: number;
  /** Usable images the final model must count. */
  expected: number;
  /** What the last poll saw. */
  seen: string;
  notes: string[];
}

/** What a scenario gets. */
export interface ScenarioContext {
  images: number;
  /** How long to wait for the heal, ms. */
  timeoutMs: number;
  progress: (message: string) => void;
  /** Keep the data dir (for a post-mortem). */
  keep: boolean;
}

/** One fault. */
export interface Scenario {
  name: string;
  fault: string;
  run(ctx: ScenarioContext, env: ScenarioEnv): Promise<Omit<ScenarioResult, 'name' | 'images'>>;
}

/** The running stack and clients a scenario works with. */
export interface ScenarioEnv {
  stack: ChildStack;
  s3: S3Client;
  sfn: SFNClient;
  sqs: SQSClient;
  bucket: string;
}

interface DatasetStatus {
  images: { total: number; ready: number; failed: number; pending: number };
  lastExecution: { status: string; name: string } | null;
}

async function getJson<T>(url: string): Promise<{ status: number; body: T | undefined }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  return { status: res.status, body: res.status === 200 ? (JSON.parse(text) as T) : undefined };
}

/** The promoted model's image count (report.counts.total) and the dataset's readiness. */
async function observe(env: ScenarioEnv): Promise<{ status?: DatasetStatus; modelTotal?: number }> {
  const [status, model] = await Promise.all([
    getJson<DatasetStatus>(`${env.stack.apiUrl}/datasets/${DATASET}`),
    getJson<{ report: { counts: { total: number } } | null }>(
      `${env.stack.apiUrl}/datasets/${DATASET}/model`,
    ),
  ]);
  return {
    ...(status.body ? { status: status.body } : {}),
    ...(model.body?.report ? { modelTotal: model.body.report.counts.total } : {}),
  };
}

async function runningExecutions(env: ScenarioEnv): Promise<string[]> {
  const out = await env.sfn.send(
    new ListExecutionsCommand({
      stateMachineArn: `arn:aws:states:${LOCAL_DEFAULTS.region}:000000000000:stateMachine:tlearn-train-local`,
      statusFilter: 'RUNNING',
    }),
  );
  return (out.executions ?? []).map((e) => e.executionArn ?? '');
}

/**
 * Waits until the promoted model counts `expected` images, nothing is pending and no training runs.
 * Returns the last observation as text either way.
 */
async function waitHealed(
  env: ScenarioEnv,
  expected: number,
  timeoutMs: number,
): Promise<{ healed: boolean; seen: string }> {
  const deadline = Date.now() + timeoutMs;
  let seen = '';
  while (Date.now() < deadline) {
    try {
      const o = await observe(env);
      const running = await runningExecutions(env);
      seen = `model counts ${o.modelTotal ?? 'none'} of ${expected}; images ${JSON.stringify(o.status?.images)}; running ${running.length}`;
      if (o.modelTotal === expected && o.status?.images.pending === 0 && running.length === 0)
        return { healed: true, seen };
    } catch (err) {
      seen = `no answer: ${err instanceof Error ? err.message : String(err)}`;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { healed: false, seen };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // the stack may be busy; ask again
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `count` labelled 32x32 PNGs (4 separable classes). */
export function generateImages(count: number, seed = 5): Promise<LabelledImage[]> {
  return makeLabelledImages({ labels: LABELS, perClass: Math.ceil(count / LABELS.length), seed }).then(
    (all) => all.slice(0, count),
  );
}

const keyOf = (img: LabelledImage): string => `datasets/${DATASET}/${img.label}/${img.file}`;

/** Parallel PUTs; returns the keys S3 acknowledged and those that failed (a killed stack). */
async function upload(
  s3: S3Client,
  bucket: string,
  images: readonly LabelledImage[],
): Promise<{ acked: string[]; failed: LabelledImage[] }> {
  const acked: string[] = [];
  const failed: LabelledImage[] = [];
  await mapWithConcurrency(images, UPLOAD_CONCURRENCY, async (img) => {
    try {
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: keyOf(img), Body: img.data, ContentType: 'image/png' }),
      );
      acked.push(keyOf(img));
    } catch {
      failed.push(img);
    }
  });
  return { acked, failed };
}

function clientsFor(stack: ChildStack): Omit<ScenarioEnv, 'stack'> {
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const region = LOCAL_DEFAULTS.region;
  const common = { region, credentials };
  return {
    s3: new S3Client({ ...common, endpoint: stack.awsEndpoint, forcePathStyle: true, maxAttempts: 3 }),
    sfn: new SFNClient({ ...common, endpoint: stack.sfnEndpoint }),
    sqs: new SQSClient({ ...common, endpoint: stack.awsEndpoint }),
    bucket: LOCAL_DEFAULTS.bucket,
  };
}

async function restart(env: ScenarioEnv, ctx: ScenarioContext): Promise<number> {
  ctx.progress('starting tlearn local again');
  const ms = await env.stack.start();
  ctx.progress(`restarted in ${(ms / 1000).toFixed(1)} s`);
  return ms;
}

/** kill -9 once a share of the images has features, then `npm start` again. */
const killDuringExtraction: Scenario = {
  name: 'kill9-extraction',
  fault: 'kill -9 during extraction, then start again',
  async run(ctx, env) {
    const images = await generateImages(ctx.images);
    ctx.progress(`uploading ${images.length} images`);
    await upload(env.s3, env.bucket, images);
    const share = Math.max(1, Math.floor(images.length * 0.2));
    await waitFor(
      `${share} features`,
      async () => {
        const s = (await observe(env)).status;
        return s && s.images.ready >= share && s.images.pending > 0 ? s : undefined;
      },
      ctx.timeoutMs,
    );
    ctx.progress('kill -9');
    const t0 = performance.now();
    await env.stack.kill9();
    const restartMs = await restart(env, ctx);
    const { healed, seen } = await waitHealed(env, images.length, ctx.timeoutMs);
    return {
      healed,
      ...(healed ? { healMs: performance.now() - t0 } : {}),
      restartMs,
      expected: images.length,
      seen,
      notes: [],
    };
  },
};

/** kill -9 while the PUTs are still going; the uploader then sends what failed again (as `aws s3 sync` would). */
const killDuringUpload: Scenario = {
  name: 'kill9-upload',
  fault: 'kill -9 during a bulk upload, then start again and re-sync',
  async run(ctx, env) {
    const images = await generateImages(ctx.images);
    ctx.progress(`uploading ${images.length} images, killing after a third`);
    let acks = 0;
    const third = Math.floor(images.length / 3);
    let t0 = 0;
    const killed = (async () => {
      while (acks < third) await new Promise((r) => setTimeout(r, 5));
      ctx.progress('kill -9');
      t0 = performance.now();
      await env.stack.kill9();
    })();
    const acked: string[] = [];
    const failed: LabelledImage[] = [];
    await mapWithConcurrency(images, UPLOAD_CONCURRENCY, async (img) => {
      try {
        await env.s3.send(
          new PutObjectCommand({
            Bucket: env.bucket,
            Key: keyOf(img),
            Body: img.data,
            ContentType: 'image/png',
          }),
        );
        acked.push(keyOf(img));
        acks++;
      } catch {
        failed.push(img);
      }
    });
    await killed;
    const restartMs = await restart(env, ctx);
    // Acknowledged PUTs the restarted bucket no longer has (the disk mirror writes behind).
    const lost: LabelledImage[] = [];
    await mapWithConcurrency(
      images.filter((i) => acked.includes(keyOf(i))),
      16,
      async (img) => {
        try {
          await env.s3.send(new HeadObjectCommand({ Bucket: env.bucket, Key: keyOf(img) }));
        } catch {
          lost.push(img);
        }
      },
    );
    ctx.progress(
      `${acked.length} acknowledged (${lost.length} missing after the restart), ${failed.length} failed: re-sync`,
    );
    await upload(env.s3, env.bucket, [...failed, ...lost]);
    const { healed, seen } = await waitHealed(env, images.length, ctx.timeoutMs);
    return {
      healed,
      ...(healed ? { healMs: performance.now() - t0 } : {}),
      restartMs,
      expected: images.length,
      seen,
      notes: [
        `${acked.length} PUTs acknowledged before the kill, ${lost.length} of them missing after the restart`,
      ],
    };
  },
};

/** kill -9 once the TrainHead task runs. */
const killDuringTraining: Scenario = {
  name: 'kill9-training',
  fault: 'kill -9 during training, then start again',
  async run(ctx, env) {
    const images = await generateImages(ctx.images);
    ctx.progress(`uploading ${images.length} images`);
    await upload(env.s3, env.bucket, images);
    ctx.progress('waiting for the TrainHead task');
    const notes: string[] = [];
    await waitFor(
      'a TrainHead task',
      async () => {
        for (const arn of await runningExecutions(env)) {
          const h = await env.sfn.send(
            new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true }),
          );
          const last = (h.events ?? []).find((e) => e.type === 'TaskStateEntered');
          if (last?.stateEnteredEventDetails?.name === 'TrainHead') return arn;
        }
        return undefined;
      },
      ctx.timeoutMs,
    );
    ctx.progress('kill -9');
    const t0 = performance.now();
    await env.stack.kill9();
    const restartMs = await restart(env, ctx);
    const { healed, seen } = await waitHealed(env, images.length, ctx.timeoutMs);
    return {
      healed,
      ...(healed ? { healMs: performance.now() - t0 } : {}),
      restartMs,
      expected: images.length,
      seen,
      notes,
    };
  },
};

/** StopExecution (as `aws stepfunctions stop-execution` does) after the last image got its feature. */
/**
 * Uploads, then StopExecution (as `aws stepfunctions stop-execution` does) in TrainHead once every
 * feature is written and every feature message consumed: no message is left to take the lock over
 * (the case a user met: the model stayed behind). Returns the images and when it stopped.
 */
async function uploadAndStopInTraining(
  ctx: ScenarioContext,
  env: ScenarioEnv,
): Promise<{ images: LabelledImage[]; stoppedAt: number }> {
  const images = await generateImages(ctx.images);
  ctx.progress(`uploading ${images.length} images`);
  await upload(env.s3, env.bucket, images);
  const featuresQueue =
    (await env.sqs.send(new GetQueueUrlCommand({ QueueName: 'tlearn-features' }))).QueueUrl ?? '';
  const arn = await waitFor(
    'a TrainHead task with every feature ready and no feature message left',
    async () => {
      const o = await observe(env);
      if (o.status?.images.pending !== 0) return undefined;
      const q = await env.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: featuresQueue,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      const left =
        Number(q.Attributes?.ApproximateNumberOfMessages ?? 1) +
        Number(q.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 1);
      if (left > 0) return undefined;
      for (const running of await runningExecutions(env)) {
        const h = await env.sfn.send(
          new GetExecutionHistoryCommand({ executionArn: running, reverseOrder: true }),
        );
        const last = (h.events ?? []).find((e) => e.type === 'TaskStateEntered');
        if (last?.stateEnteredEventDetails?.name === 'TrainHead') return running;
      }
      return undefined;
    },
    ctx.timeoutMs,
  );
  ctx.progress('StopExecution');
  const stoppedAt = performance.now();
  await env.sfn.send(
    new StopExecutionCommand({ executionArn: arn, error: 'Chaos', cause: 'stopped by the chaos suite' }),
  );
  return { images, stoppedAt };
}

/** StopExecution and nothing else: the lock must be released by the execution's end itself. */
const stopExecution: Scenario = {
  name: 'stop-execution',
  fault: 'StopExecution in TrainHead after every image has its feature',
  async run(ctx, env) {
    const { images, stoppedAt } = await uploadAndStopInTraining(ctx, env);
    const { healed, seen } = await waitHealed(env, images.length, ctx.timeoutMs);
    return {
      healed,
      ...(healed ? { healMs: performance.now() - stoppedAt } : {}),
      expected: images.length,
      seen,
      notes: [],
    };
  },
};

/** StopExecution, then a clean stop (Ctrl-C) and `npm start`: the start-up recovery heals it. */
const stopExecutionRestart: Scenario = {
  name: 'stop-then-restart',
  fault: 'StopExecution in TrainHead, then Ctrl-C and npm start',
  async run(ctx, env) {
    const { images, stoppedAt } = await uploadAndStopInTraining(ctx, env);
    ctx.progress('stopping the stack (SIGTERM)');
    await env.stack.stop();
    const restartMs = await restart(env, ctx);
    const { healed, seen } = await waitHealed(env, images.length, ctx.timeoutMs);
    return {
      healed,
      ...(healed ? { healMs: performance.now() - stoppedAt } : {}),
      restartMs,
      expected: images.length,
      seen,
      notes: [],
    };
  },
};

/** The uploader's connection to S3 fails: 500s, resets, responses lost after the write took effect. */
const connectionFaults: Scenario = {
  name: 'connection-faults',
  fault: 'S3 connection faults on the uploads (500, reset, response lost after the write)',
  async run(ctx, env) {
    const proxy = await startFaultProxy(env.stack.awsEndpoint, env.bucket);
    const s3 = new S3Client({
      region: LOCAL_DEFAULTS.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      endpoint: proxy.url,
      forcePathStyle: true,
      maxAttempts: 5,
    });
    try {
      const put = (seq: number, m: string) => m === 'PUT' && seq % 5 === 0;
      proxy.addRule({ match: (c) => put(c.seq, c.method) && c.seq % 3 === 0, action: 'lose-response' });
      proxy.addRule({ match: (c) => put(c.seq, c.method) && c.seq % 3 === 1, action: 'reset' });
      proxy.addRule({ match: (c) => put(c.seq, c.method) && c.seq % 3 === 2, action: 'error-500' });
      const images = await generateImages(ctx.images);
      ctx.progress(`uploading ${images.length} images through the fault proxy (1 PUT in 5 fails)`);
      const t0 = performance.now();
      const { failed } = await upload(s3, env.bucket, images);
      const faults = proxy.calls.filter((c) => typeof c.outcome === 'string').length;
      // What the SDK gave up on is sent again, as a re-run of `aws s3 sync` would.
      if (failed.length > 0) await upload(env.s3, env.bucket, failed);
      const { healed, seen } = await waitHealed(env, images.length, ctx.timeoutMs);
      return {
        healed,
        ...(healed ? { healMs: performance.now() - t0 } : {}),
        expected: images.length,
        seen,
        notes: [`${faults} faults injected, ${failed.length} PUTs given up by the SDK and sent again`],
      };
    } finally {
      s3.destroy();
      await proxy.stop();
    }
  },
};

/** A 120 MB `huge.jpg` of zeros next to the images. */
const oversizedObject: Scenario = {
  name: 'oversized-object',
  fault: 'a 120 MB huge.jpg of zeros in the dataset',
  async run(ctx, env) {
    const images = await generateImages(ctx.images);
    ctx.progress(`uploading ${images.length} images and a 120 MB huge.jpg`);
    const t0 = performance.now();
    // Multipart, as `aws s3 cp` sends a file this size: 24 parts of 5 MB.
    const Key = `datasets/${DATASET}/red/huge.jpg`;
    const { UploadId } = await env.s3.send(
      new CreateMultipartUploadCommand({ Bucket: env.bucket, Key, ContentType: 'image/jpeg' }),
    );
    const part = Buffer.alloc(5 * 1024 * 1024);
    const Parts: { ETag: string; PartNumber: number }[] = [];
    for (let PartNumber = 1; PartNumber <= 24; PartNumber++) {
      const out = await env.s3.send(
        new UploadPartCommand({ Bucket: env.bucket, Key, UploadId, PartNumber, Body: part }),
      );
      Parts.push({ ETag: out.ETag ?? '', PartNumber });
    }
    await env.s3.send(
      new CompleteMultipartUploadCommand({ Bucket: env.bucket, Key, UploadId, MultipartUpload: { Parts } }),
    );
    await upload(env.s3, env.bucket, images);
    const { healed, seen } = await waitHealed(env, images.length, ctx.timeoutMs);
    const failures = await getJson<{ failures: { key: string; code: string | null }[] }>(
      `${env.stack.apiUrl}/datasets/${DATASET}/failures`,
    );
    const code = failures.body?.failures.find((f) => f.key.endsWith('/huge.jpg'))?.code ?? 'no record';
    const gated = code === 'ImageTooLarge';
    return {
      healed: healed && gated,
      ...(healed && gated ? { healMs: performance.now() - t0 } : {}),
      expected: images.length,
      seen: `${seen}; huge.jpg: ${code}`,
      notes: [`huge.jpg recorded as ${code}${gated ? '' : ' (expected ImageTooLarge, without reading it)'}`],
    };
  },
};

/** Duplicate notifications, deletes and re-puts, and stale events delivered after newer ones. */
const duplicateEvents: Scenario = {
  name: 'duplicate-events',
  fault: 'duplicate and out-of-order S3 events (re-sent notifications, delete + re-put)',
  async run(ctx, env) {
    const images = await generateImages(ctx.images);
    ctx.progress(`uploading ${images.length} images`);
    await upload(env.s3, env.bucket, images);
    const queueUrl =
      (await env.sqs.send(new GetQueueUrlCommand({ QueueName: 'tlearn-ingest' }))).QueueUrl ?? '';
    const notify: NotificationContext = {
      region: LOCAL_DEFAULTS.region,
      configurationId: 'tlearn-ingest',
      sequencer: createSequencer(),
    };
    const send = (body: object) =>
      env.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(body) }));
    const t0 = performance.now();
    // Every image's notification again (S3 delivers at least once).
    const heads = new Map<string, { etag: string; size: number }>();
    await mapWithConcurrency(images, 16, async (img) => {
      const h = await env.s3.send(new HeadObjectCommand({ Bucket: env.bucket, Key: keyOf(img) }));
      heads.set(keyOf(img), { etag: (h.ETag ?? '').replaceAll('"', ''), size: h.ContentLength ?? 0 });
    });
    ctx.progress('sending every notification again');
    await mapWithConcurrency(images, 16, async (img) => {
      const h = heads.get(keyOf(img));
      if (h) await send(buildObjectCreatedEvent({ bucket: env.bucket, key: keyOf(img), ...h }, notify));
    });
    // Delete 10, put 5 of them back with other pixels; then the stale events arrive, newest first.
    const touched = images.slice(0, Math.min(10, images.length));
    const back = touched.slice(0, 5);
    ctx.progress(`deleting ${touched.length} images, putting ${back.length} back with new content`);
    for (const img of touched)
      await env.s3.send(new DeleteObjectCommand({ Bucket: env.bucket, Key: keyOf(img) }));
    for (const [i, img] of back.entries()) {
      const data = await makeImage('png', { width: 32, height: 32, seed: 1000 + i });
      await env.s3.send(
        new PutObjectCommand({ Bucket: env.bucket, Key: keyOf(img), Body: data, ContentType: 'image/png' }),
      );
    }
    for (const img of touched) {
      const h = heads.get(keyOf(img));
      if (h) await send(buildObjectCreatedEvent({ bucket: env.bucket, key: keyOf(img), ...h }, notify));
      await send(buildObjectRemovedEvent({ bucket: env.bucket, key: keyOf(img) }, notify));
    }
    const expected = images.length - (touched.length - back.length);
    const { healed, seen } = await waitHealed(env, expected, ctx.timeoutMs);
    // The re-put images' features must be of their new content.
    let staleFeatures = 0;
    for (const img of back) {
      const [imageHead, featureHead] = await Promise.all([
        env.s3.send(new HeadObjectCommand({ Bucket: env.bucket, Key: keyOf(img) })),
        env.s3
          .send(
            new HeadObjectCommand({
              Bucket: env.bucket,
              Key: `features/${DATASET}/${img.label}/${img.file}.npy`,
            }),
          )
          .catch(() => undefined),
      ]);
      if (featureHead?.Metadata?.['source-etag'] !== (imageHead.ETag ?? '').replaceAll('"', ''))
        staleFeatures++;
    }
    const ok = healed && staleFeatures === 0;
    return {
      healed: ok,
      ...(ok ? { healMs: performance.now() - t0 } : {}),
      expected,
      seen: `${seen}; stale features of re-put images: ${staleFeatures}`,
      notes: [
        `${images.length} duplicate notifications, ${touched.length} deletes, ${back.length} re-puts, ${touched.length * 2} stale events`,
      ],
    };
  },
};

/** Every scenario, in the order `npm run chaos` runs them. */
export const SCENARIOS: readonly Scenario[] = [
  killDuringExtraction,
  killDuringUpload,
  killDuringTraining,
  stopExecution,
  stopExecutionRestart,
  connectionFaults,
  oversizedObject,
  duplicateEvents,
];

/** Runs one scenario on a fresh stack and data dir; never throws (a failure is a result). */
export async function runScenario(scenario: Scenario, ctx: ScenarioContext): Promise<ScenarioResult> {
  const root = await mkdtemp(join(tmpdir(), `tlearn-chaos-${scenario.name}-`));
  const stack = await createChildStack({ dataDir: join(root, 'data'), logFile: join(root, 'stack.log') });
  const env: ScenarioEnv = { stack, ...clientsFor(stack) };
  let result: ScenarioResult;
  try {
    ctx.progress(`starting tlearn local (data dir ${root})`);
    await stack.start();
    result = { name: scenario.name, images: ctx.images, ...(await scenario.run(ctx, env)) };
  } catch (err) {
    result = {
      name: scenario.name,
      healed: false,
      images: ctx.images,
      expected: ctx.images,
      seen: err instanceof Error ? err.message : String(err),
      notes: [],
    };
  } finally {
    env.s3.destroy();
    env.sfn.destroy();
    env.sqs.destroy();
    await stack.stop();
  }
  // A scenario that did not heal keeps its data dir and the stack's log for a post-mortem.
  if (ctx.keep || !result.healed) result.notes.push(`kept: ${root} (stack.log)`);
  else await rm(root, { recursive: true, force: true });
  return result;
}
