/**
 * End to end: the local stack in this process on free ports, driven the way a user
 * drives it. A generated dataset is uploaded with the real `tlearn upload`, the pipeline extracts
 * and trains by itself, held-out images are predicted over HTTP and must match, to 1e-6, what the
 * offline `tlearn predict --model DIR` computes with the served head; a second upload adds a class
 * and the API serves the retrained model without a restart; `tlearn status`, `model`, `train
 * --wait` and `predict D` run against the real API; the stack stops with nothing left open.
 *
 * Kept fast for a loaded 2-core machine: 32x32 input, average pooling (512 features), seeded
 * random weights, 1 s settle, 30 images.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DatasetStatus } from '../../lib/api/datasets.ts';
import type { PredictionResponse } from '../../lib/api/predict.ts';
import { runModel } from '../../lib/cli/commands/model.ts';
import { createPredictCommand } from '../../lib/cli/commands/predict.ts';
import { runRemotePredict } from '../../lib/cli/commands/predict-remote.ts';
import { runStatus } from '../../lib/cli/commands/status.ts';
import { runTrain } from '../../lib/cli/commands/train.ts';
import { runUpload } from '../../lib/cli/commands/upload.ts';
import { EXIT } from '../../lib/cli/exit-codes.ts';
import { type CliContext, RANDOM_WEIGHTS_WARNING } from '../../lib/cli/remote.ts';
import { createTargetS3Client } from '../../lib/cli/target.ts';
import type { LocalStack } from '../../lib/local/stack.ts';
import { modelFileKey } from '../../lib/storage/keys.ts';
import { getObject } from '../../lib/storage/s3.ts';
import { silentLog } from '../../lib/util/log.ts';
import { makeLabelledImages } from '../helpers/images.ts';
import { pollUntil } from '../helpers/poll.ts';
import { startTestStack } from '../helpers/stack.ts';

const DATASET = 'colours';
const SEED = 11;
const FIRST_LABELS = ['red', 'green', 'blue'];
/** The second upload: the same images (unchanged, not sent again) plus a fourth class. */
const SECOND_LABELS = [...FIRST_LABELS, 'yellow'];
const PER_CLASS = 10;
/** The last images of each class are never uploaded: they are predicted. */
const HELD_OUT = 2;
const TOLERANCE = 1e-6;

type Offline = {
  model: { version?: string; spec: string; classes: string[] };
  predictions: { image: string; label: string; scores: { label: string; probability: number }[] }[];
};

/** A port answers a TCP connect, or refuses it. */
function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** Open handles of this process by kind (TCPServerWrap, TCPSocketWrap, Timeout, …). */
function openHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/** The kinds of which more are open now than in `before`. */
function leftOpen(before: Record<string, number>): Record<string, number> {
  const extra: Record<string, number> = {};
  for (const [kind, n] of Object.entries(openHandles()))
    if (n > (before[kind] ?? 0)) extra[kind] = n - (before[kind] ?? 0);
  return extra;
}

describe('the local stack end to end, driven by the CLI', () => {
  let tmp: string;
  let stack: LocalStack | undefined;
  let sfn: SFNClient | undefined;
  let handlesBefore: Record<string, number> = {};
  const printed: string[] = [];
  const dirs = { upload: '', heldOut: '', models: '', cwd: '' };
  const heldOut: { path: string; label: string }[] = [];
  let flags: string[] = [];
  let firstVersion = '';
  let secondVersion = '';

  const api = () => {
    if (!stack) throw new Error('the stack is not running');
    return stack;
  };

  /** A CLI context with an empty environment: only the flags name the target. */
  const cli = () => {
    const out: string[] = [];
    const err: string[] = [];
    const quiet = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });
    const ctx: CliContext = {
      env: {},
      cwd: dirs.cwd,
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      progress: quiet as unknown as NodeJS.WriteStream,
    };
    return { ctx, out, err };
  };

  async function getStatus(): Promise<DatasetStatus> {
    const res = await fetch(`${api().apiUrl}/datasets/${DATASET}`);
    if (res.status !== 200) throw new Error(`GET /datasets/${DATASET}: ${res.status} ${await res.text()}`);
    return (await res.json()) as DatasetStatus;
  }

  async function getModelCounts(): Promise<{ version: string; total: number }> {
    const res = await fetch(`${api().apiUrl}/datasets/${DATASET}/model`);
    if (res.status !== 200) throw new Error(`GET /model: ${res.status}`);
    const body = (await res.json()) as { model: { version: string }; report: { counts: { total: number } } };
    return { version: body.model.version, total: body.report.counts.total };
  }

  /** Waits for a served model trained on every uploaded image of `labels`, all features settled. */
  async function waitForModel(labels: readonly string[]): Promise<string> {
    const images = labels.length * (PER_CLASS - HELD_OUT);
    return pollUntil(
      `a promoted model of ${labels.join(', ')} trained on ${images} images`,
      async () => {
        const s = await getStatus();
        if (!s.featuresSettled || s.images.ready !== images || s.model?.classes.length !== labels.length)
          return undefined;
        const m = await getModelCounts();
        return m.total === images ? m.version : undefined;
      },
      60_000,
    );
  }

  /**
   * Waits until no training runs and the served model has not changed for a few seconds: feature
   * messages still queued could start one more training (start-training's batching window is 2 s).
   */
  async function waitForQuiet(): Promise<DatasetStatus> {
    let key = '';
    let since = Date.now();
    return pollUntil(
      'the pipeline to go quiet',
      async () => {
        const client = sfn;
        if (!client) throw new Error('no SFN client');
        const [s, running] = await Promise.all([
          getStatus(),
          client.send(
            new ListExecutionsCommand({ stateMachineArn: api().stateMachineArn, statusFilter: 'RUNNING' }),
          ),
        ]);
        const now = JSON.stringify([s.model?.version, s.lastTraining?.version, running.executions?.length]);
        if (!s.featuresSettled || (running.executions?.length ?? 0) > 0 || now !== key) {
          key = now;
          since = Date.now();
          return undefined;
        }
        return Date.now() - since >= 4000 ? s : undefined;
      },
      60_000,
      500,
    );
  }

  /** Predicts the held-out images over HTTP (raw bytes), all at once. */
  async function predictOverHttp(images = heldOut): Promise<{ path: string; body: PredictionResponse }[]> {
    return Promise.all(
      images.map(async ({ path }) => {
        const res = await fetch(`${api().apiUrl}/datasets/${DATASET}/predictions`, {
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: await readFile(path),
        });
        expect(res.status).toBe(200);
        return { path, body: (await res.json()) as PredictionResponse };
      }),
    );
  }

  /** `tlearn predict --model DIR --weights random:SEED --json IMAGE…` in this process. */
  async function predictOffline(modelDir: string, files: string[]): Promise<Offline> {
    const printedJson: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      printedJson.push(args.map(String).join(' '));
    });
    let code: number;
    try {
      code = await createPredictCommand({ log: silentLog }).run([
        '--model',
        modelDir,
        '--weights',
        `random:${SEED}`,
        '--top',
        '10',
        '--json',
        ...files,
      ]);
    } finally {
      spy.mockRestore();
    }
    expect(code).toBe(EXIT.OK);
    const json = printedJson.find((l) => l.startsWith('{') && l.includes('"predictions"'));
    if (json === undefined) throw new Error(`offline predict printed no JSON: ${printedJson.join('\n')}`);
    return JSON.parse(json) as Offline;
  }

  /** Downloads models/{d}/{version}/model.json from the stack's S3 into a folder of its own. */
  async function downloadModel(version: string): Promise<string> {
    const s3 = createTargetS3Client(
      { bucket: api().bucket, region: api().region, endpoint: api().awsEndpoint },
      10_000,
    );
    try {
      const obj = await getObject(s3, api().bucket, modelFileKey(DATASET, version, 'model.json'));
      const dir = join(dirs.models, version);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'model.json'), obj.body);
      return dir;
    } finally {
      s3.destroy();
    }
  }

  /**
   * Asserts every HTTP prediction equals the offline one of the very head that answered it (a
   * retraining may land between requests, so each version's model.json is fetched).
   */
  async function expectSameAsOffline(http: { path: string; body: PredictionResponse }[]): Promise<void> {
    const versions = [...new Set(http.map((p) => p.body.model.version))];
    for (const version of versions) {
      const mine = http.filter((p) => p.body.model.version === version);
      const offline = await predictOffline(
        await downloadModel(version),
        mine.map((p) => p.path),
      );
      expect(offline.model.version).toBe(version);
      expect(offline.model.spec).toBe(mine[0]?.body.model.spec);
      for (const { path, body } of mine) {
        const off = offline.predictions.find((p) => p.image === path);
        expect(off?.label, path).toBe(body.label);
        expect(off?.scores.map((s) => s.label).sort()).toEqual(body.scores.map((s) => s.label).sort());
        for (const s of body.scores) {
          const o = off?.scores.find((x) => x.label === s.label)?.probability ?? Number.NaN;
          expect(Math.abs(o - s.probability), `${path} ${s.label}`).toBeLessThanOrEqual(TOLERANCE);
        }
      }
    }
  }

  /** Writes the dataset of `labels`: uploads under upload/{label}/, held-out images flat. */
  async function writeDataset(labels: readonly string[]): Promise<void> {
    const images = await makeLabelledImages({ labels, perClass: PER_CLASS, seed: 5 });
    for (const img of images) {
      const index = Number(/(\d+)/.exec(img.file)?.[1]);
      if (index < PER_CLASS - HELD_OUT) {
        await mkdir(join(dirs.upload, img.label), { recursive: true });
        await writeFile(join(dirs.upload, img.label, img.file), img.data);
      } else {
        const path = join(dirs.heldOut, `${img.label}-${img.file}`);
        if (!heldOut.some((h) => h.path === path)) {
          await writeFile(path, img.data);
          heldOut.push({ path, label: img.label });
        }
      }
    }
  }

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-e2e-'));
    for (const d of ['upload', 'heldOut', 'models', 'cwd'] as const) {
      dirs[d] = join(tmp, d);
      await mkdir(dirs[d]);
    }
    handlesBefore = openHandles();
    stack = await startTestStack(join(tmp, 'data'), {
      weights: `random:${SEED}`,
      settleSeconds: 1,
      print: (t) => printed.push(t),
    });
    sfn = new SFNClient({
      region: stack.region,
      endpoint: stack.sfnEndpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    flags = [
      '--endpoint',
      stack.apiUrl,
      '--s3-endpoint',
      stack.awsEndpoint,
      '--bucket',
      stack.bucket,
      '--region',
      stack.region,
    ];
  });

  afterAll(async () => {
    sfn?.destroy();
    await stack?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('trains on a dataset uploaded with tlearn upload and predicts held-out images exactly as offline tlearn predict', async () => {
    await writeDataset(FIRST_LABELS);
    const upload = cli();

    const code = await runUpload([dirs.upload, '--dataset', DATASET, ...flags], upload.ctx);
    firstVersion = await waitForModel(FIRST_LABELS);
    const http = await predictOverHttp();

    expect(code).toBe(EXIT.OK);
    expect(upload.out[0]).toMatch(/^uploaded 24, unchanged 0, skipped 0, failed 0 /);
    expect(printed.join('\n')).toContain('stack is up');
    for (const { body } of http) {
      expect(body.dataset).toBe(DATASET);
      // Not a uniform answer (which any two implementations would agree on).
      expect(body.confidence).toBeGreaterThan(1 / FIRST_LABELS.length + 0.01);
      expect(body.model.spec).toBe(`vgg16/random-${SEED}/32x32/avg/caffe/bilinear`);
      expect(body.model.randomWeights).toBe(true);
      expect(body.scores.map((s) => s.label).sort()).toEqual([...FIRST_LABELS].sort());
      expect(body.scores.reduce((a, s) => a + s.probability, 0)).toBeCloseTo(1, 6);
    }
    await expectSameAsOffline(http);
  }, 120_000);

  it('tlearn status and tlearn model describe the served model', async () => {
    const quiet = await waitForQuiet();
    const version = quiet.model?.version ?? '';
    const status = cli();
    const model = cli();

    const statusCode = await runStatus([DATASET, ...flags], status.ctx);
    const modelCode = await runModel([DATASET, ...flags], model.ctx);

    expect(version >= firstVersion).toBe(true);
    expect(statusCode).toBe(EXIT.OK);
    expect(status.out).toContain('images    24   features: 24 ready, 0 failed, 0 pending');
    expect(status.out.join('\n')).toContain(`model     ${version}, trained `);
    expect(status.out).toContain(`          ${RANDOM_WEIGHTS_WARNING}`);
    expect(status.out.join('\n')).toMatch(new RegExp(`\\ntraining  ${version} at .*, promoted\\n`));
    // The newest execution, read from the local Step Functions server through the API.
    expect(quiet.lastExecution).toMatchObject({ status: 'SUCCEEDED', trigger: 'auto', error: null });
    expect(quiet.lastExecution?.name.startsWith(`${DATASET}-`)).toBe(true);
    expect(status.out.at(-1)).toMatch(new RegExp(`^execution ${DATASET}-\\S+ SUCCEEDED \\(auto trigger`));
    expect(modelCode).toBe(EXIT.OK);
    expect(model.out).toContain(`model     ${version}`);
    expect(model.out).toContain('classes   blue, green, red');
    expect(model.out).toContain('confusion matrix (rows: true label, columns: predicted)');
  }, 90_000);

  it('retrains after a second upload and serves the new model without a restart', async () => {
    await writeDataset(SECOND_LABELS);
    const upload = cli();

    const code = await runUpload([dirs.upload, '--dataset', DATASET, ...flags], upload.ctx);
    secondVersion = await waitForModel(SECOND_LABELS);
    const http = await pollUntil(
      'predictions from the retrained model',
      async () => {
        const r = await predictOverHttp();
        return r.every((p) => p.body.model.version >= secondVersion) ? r : undefined;
      },
      15_000,
    );

    expect(code).toBe(EXIT.OK);
    expect(upload.out[0]).toMatch(/^uploaded 8, unchanged 24, skipped 0, failed 0 /);
    expect(secondVersion > firstVersion).toBe(true);
    for (const { path, body } of http) {
      expect(body.scores.map((s) => s.label).sort()).toEqual([...SECOND_LABELS].sort());
      // The new class is far from the others (its colour): the retrained head must know it.
      if (path.includes('yellow-')) expect(body.label, path).toBe('yellow');
    }
    await expectSameAsOffline(http);
  }, 120_000);

  it('tlearn train --wait promotes a new model, which tlearn predict D then uses', async () => {
    const before = await waitForQuiet();
    const train = cli();
    const predict = cli();

    const code = await runTrain(
      [DATASET, '--wait', '--interval', '0.5', '--wait-timeout', '60', ...flags],
      train.ctx,
    );
    const promoted = /^promoted model (\S+) /.exec(train.out.at(-1) ?? '')?.[1] ?? '';
    const predicted = await pollUntil(
      'tlearn predict to use the trained model',
      async () => {
        const p = cli();
        const c = await runRemotePredict([DATASET, ...heldOut.map((h) => h.path), '--json', ...flags], p.ctx);
        const rows = JSON.parse(p.out.join('\n')) as { file: string; prediction: PredictionResponse }[];
        Object.assign(predict, p);
        return c === EXIT.OK && rows.every((r) => r.prediction.model.version >= promoted) ? rows : undefined;
      },
      15_000,
    );

    expect(code).toBe(EXIT.OK);
    expect(train.out[0]).toMatch(new RegExp(`^started training of '${DATASET}' at \\S+: arn:aws:states:`));
    expect(promoted > (before.model?.version ?? '')).toBe(true);
    expect(train.err).toContain(RANDOM_WEIGHTS_WARNING);
    expect(predicted).toHaveLength(heldOut.length);
    for (const r of predicted) {
      expect(r.prediction.scores).toHaveLength(SECOND_LABELS.length);
      if (r.file.includes('yellow-')) expect(r.prediction.label).toBe('yellow');
    }
    expect(predict.err).toContain(RANDOM_WEIGHTS_WARNING);
  }, 90_000);

  it('stops cleanly: stop() resolves, every port refuses, no server, socket or timer is left open', async () => {
    const s = api();
    const ports = [s.apiUrl, s.awsEndpoint, s.sfnEndpoint].map((u) => Number(new URL(u).port));
    // While it runs: its three servers (API, S3 + SQS, Step Functions) and their sockets.
    const running = leftOpen(handlesBefore);
    sfn?.destroy();
    sfn = undefined;

    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      s.stop().then(() => 'stopped'),
      new Promise((r) => {
        timer = setTimeout(() => r('timed out'), 60_000);
      }),
    ]);
    clearTimeout(timer);
    stack = undefined;
    const refused = await Promise.all(ports.map(portRefuses));
    // Sockets closed by the servers' stop finish closing on this side within a few ticks.
    const left = await pollUntil(
      'every handle of the stack to close',
      async () => {
        const extra = leftOpen(handlesBefore);
        return Object.keys(extra).length === 0 ? extra : undefined;
      },
      5_000,
      100,
    ).catch(() => leftOpen(handlesBefore));
    const runningDuring = running;

    expect(stopped).toBe('stopped');
    expect(refused).toEqual([true, true, true]);
    expect(runningDuring.TCPServerWrap).toBe(3);
    expect(left).toEqual({});
  }, 90_000);
});
