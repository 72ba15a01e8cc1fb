import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryFetchBaseWeights } from '../../../lib/local/fetch-weights.ts';
import {
  type LocalStack,
  randomWeightsNotice,
  resolveStackWeights,
  startLocalStack,
} from '../../../lib/local/stack.ts';
import { silentLog } from '../../../lib/util/log.ts';

async function readRecords(dir: string): Promise<{ name: string; error?: string }[]> {
  const files = await readdir(dir);
  return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(dir, f), 'utf8'))));
}

describe('the local stack, end to end with the real handlers', () => {
  let dataDir: string;
  let stack: LocalStack | undefined;
  const printed: string[] = [];

  const start = () =>
    startLocalStack({
      dataDir,
      apiPort: 0,
      awsPort: 0,
      sfnPort: 0,
      weights: 'random:7',
      inputSize: 32,
      settleSeconds: 1,
      demoPerClass: 4,
      log: silentLog,
      print: (t) => printed.push(t),
      onDemoProgress: () => {},
    });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tlearn-stack-'));
  });
  afterAll(async () => {
    try {
      await stack?.stop();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('trains the demo dataset to a promoted model and serves a prediction', async () => {
    stack = await start();

    const outcome = await stack.demo;
    const sample = await readFile(outcome?.sampleFile ?? '');
    const res = await fetch(`${stack.apiUrl}/datasets/demo/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: sample,
    });
    const body = (await res.json()) as { label: string; model: { version: string; spec: string } };

    expect(stack.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(outcome?.uploaded).toBe(true);
    expect(outcome?.report.classes).toEqual(['circle', 'square', 'stripes']);
    expect(outcome?.report.spec).toContain('random-7');
    expect(res.status).toBe(200);
    expect(['circle', 'square', 'stripes']).toContain(body.label);
    expect(body.model.spec).toContain('random-7');
    expect(printed.join('\n')).toMatch(
      /curl -s --data-binary @.*circle\.png -H 'content-type: image\/png' http:\/\/127\.0\.0\.1:\d+\/datasets\/demo\/predictions/,
    );
    expect(printed.join('\n')).toMatch(/RANDOM WEIGHTS/);
  }, 240_000);

  it('stops cleanly and comes back from the data dir with its model, without re-extracting', async () => {
    await stack?.stop();
    // After the stop: executions of later windows may still have been running before it.
    const recordsDir = join(dataDir, 'sfn', 'executions');
    const before = await readRecords(recordsDir);
    const interrupted = before.filter((r) => r.error === 'Local.StackStopped').map((r) => r.name);
    const featuresDir = join(dataDir, 's3', 'tlearn-local', 'features', 'demo');
    const featureMetas = async () =>
      Promise.all(
        (await readdir(featuresDir, { recursive: true }))
          .filter((f) => f.endsWith('.npy.meta.json'))
          .sort()
          .map((f) => readFile(join(featuresDir, f), 'utf8')),
      );
    const featuresBefore = await featureMetas();

    stack = await start();
    const outcome = await stack.demo;
    const health = await fetch(`${stack.apiUrl}/health`);
    await new Promise((r) => setTimeout(r, 1500)); // an extraction or training would have started by now
    await stack.stop();
    const after = await readRecords(recordsDir);
    const added = after.filter((r) => !before.some((b) => b.name === r.name)).map((r) => r.name);

    expect(featuresBefore).toHaveLength(12);
    expect(await featureMetas()).toEqual(featuresBefore);
    expect(outcome?.uploaded).toBe(false);
    expect(outcome?.version).toMatch(/^\d{8}T\d{6}Z-/);
    expect(health.status).toBe(200);
    // The only new executions are those resuming trainings the stop interrupted.
    expect(added).toHaveLength(interrupted.length);
    for (const name of added) expect(interrupted.some((i) => name.startsWith(`${i}-r`))).toBe(true);
  }, 240_000);
});

describe('base weights of the local stack', () => {
  it('takes the newest imported model under {dataDir}/base-models/, else falls back to random:42', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tlearn-weights-'));
    try {
      const none = await resolveStackWeights(undefined, dir);
      await mkdir(join(dir, 'base-models', 'vgg16-abc'), { recursive: true });
      await writeFile(join(dir, 'base-models', 'vgg16-abc', 'model.json'), '{}');
      const found = await resolveStackWeights(undefined, dir);
      const asked = await resolveStackWeights('random:5', dir);

      expect(none).toMatchObject({ source: { kind: 'random', seed: 42 }, fallback: true });
      expect(found).toMatchObject({
        source: { kind: 'uri', uri: join(dir, 'base-models', 'vgg16-abc') },
        fallback: false,
      });
      expect(asked).toMatchObject({ source: { kind: 'random', seed: 5 }, fallback: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tries to fetch the real weights once before falling back, and says why it failed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tlearn-weights-'));
    try {
      const calls: string[] = [];
      const failed = await resolveStackWeights(undefined, dir, {
        fetch: async (d) => {
          calls.push(d);
          return { ok: false, reason: 'Unavailable: cannot reach storage.googleapis.com (ENOTFOUND)' };
        },
      });
      const fetched = await resolveStackWeights(undefined, dir, {
        fetch: async (d) => ({ ok: true, dir: join(d, 'vgg16-keras') }),
      });

      expect(calls).toEqual([join(dir, 'base-models')]);
      expect(failed).toMatchObject({ source: { kind: 'random', seed: 42 }, fallback: true });
      expect(failed.fetchError).toContain('ENOTFOUND');
      expect(fetched).toMatchObject({
        source: { kind: 'uri', uri: join(dir, 'base-models', 'vgg16-keras') },
        fallback: false,
      });
      expect(randomWeightsNotice(dir, 42, failed.fetchError)).toContain('fetching them failed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails a fetch from an unreachable host fast, without throwing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tlearn-weights-'));
    try {
      // Port 9 on loopback: nothing listens there, so the connection is refused at once.
      const outcome = await tryFetchBaseWeights(join(dir, 'base-models'), {
        url: 'http://127.0.0.1:9/vgg16.h5',
        log: silentLog,
      });

      expect(outcome.ok).toBe(false);
      expect(!outcome.ok && outcome.reason).toMatch(/127\.0\.0\.1:9|ECONNREFUSED|Unavailable/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('announces the random fallback in one block naming the variable and how to get real weights', () => {
    const notice = randomWeightsNotice('/data', 42);

    expect(notice).toContain('TLEARN_WEIGHTS=random:42');
    expect(notice).toContain('tlearn base-model import');
    expect(notice.split('\n')[0]).toMatch(/^\+-+\+$/);
  });
});

// Parity of the local API Gateway stand-in with the synthesized REST API: gateway-parity.test.ts.
