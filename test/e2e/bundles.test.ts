/**
 * The deployed artifacts, run locally: `npm run bundle` (bin/bundle.ts) builds every function as
 * deploy does into a folder outside the repository (so nothing but the bundles' own production
 * node_modules can be loaded from them), and the local stack runs one upload → model → prediction
 * → batch over the inbox through those bundles. A bundling mistake (a missing external, a file
 * looked up next to the bundle, an ESM/CJS interop default, a dev dependency imported at run
 * time) fails here instead of on Lambda.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleAll } from '../../bin/bundle.ts';
import { REPO_ROOT } from '../../infra/paths.ts';
import type { PredictionResponse } from '../../lib/api/predict.ts';
import type { BatchRow, BatchStatus } from '../../lib/batch/layout.ts';
import { BUNDLE_MANIFEST_FILE, type BundleManifest } from '../../lib/bundling.ts';
import { createTargetS3Client } from '../../lib/cli/target.ts';
import { FUNCTION_NAMES, IMAGE_FUNCTIONS } from '../../lib/functions.ts';
import { leakyModulePaths } from '../../lib/local/bundles.ts';
import { LOCAL_DEFAULTS } from '../../lib/local/defaults.ts';
import { imageKey } from '../../lib/storage/keys.ts';
import { getObject, putObject } from '../../lib/storage/s3.ts';
import { makeLabelledImages } from '../helpers/images.ts';
import { pollUntil } from '../helpers/poll.ts';

const DATASET = 'bundled';
const { bucket: BUCKET, region: REGION } = LOCAL_DEFAULTS;

describe('the Lambda bundles on the local stack', () => {
  let tmp: string;
  let dist: string;
  let manifest: BundleManifest;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-bundles-'));
    dist = join(tmp, 'dist');
    manifest = await bundleAll(dist);
  }, 120_000);

  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes every function of the app, zip assets without node_modules and the image beside its production dependencies only', async () => {
    expect(Object.keys(manifest.functions).sort()).toEqual([...FUNCTION_NAMES].sort());
    for (const [name, f] of Object.entries(manifest.functions)) {
      expect(f.kind, name).toBe(
        IMAGE_FUNCTIONS.includes(name as (typeof FUNCTION_NAMES)[number]) ? 'image' : 'zip',
      );
      // Nothing outside the folder is reachable by Node's package lookup from a bundle.
      expect(leakyModulePaths(dist, join(dist, f.handler)), name).toEqual([]);
    }
    expect(existsSync(join(dist, 'image/node_modules/sharp/package.json'))).toBe(true);
    expect(existsSync(join(dist, 'image/console/index.html'))).toBe(true);
    // Dev dependencies (the local stack's emulator, esbuild, the CDK) are not installed.
    for (const dev of ['fauxqs', 'esbuild', 'aws-cdk-lib', 'vitest', 'tsx'])
      expect(existsSync(join(dist, 'image/node_modules', dev)), dev).toBe(false);
  });

  it('refuses, in a real Node process, a bundle that imports a package its asset does not ship', async () => {
    const broken = join(tmp, 'broken');
    await mkdir(join(broken, 'check-readiness'), { recursive: true });
    // Every other bundle as built, so the stack fails on this one whatever order it loads them in.
    for (const entry of await readdir(dist))
      if (entry !== 'check-readiness' && entry !== BUNDLE_MANIFEST_FILE)
        await symlink(join(dist, entry), join(broken, entry));
    await writeFile(
      join(broken, 'check-readiness/index.mjs'),
      "import sharp from 'sharp';\nexport const handler = async () => sharp.versions;\n",
    );
    const brokenManifest = structuredClone(manifest);
    brokenManifest.functions['check-readiness'] = {
      kind: 'zip',
      handler: 'check-readiness/index.mjs',
      bytes: 0,
    };
    await writeFile(join(broken, BUNDLE_MANIFEST_FILE), JSON.stringify(brokenManifest));
    // Not in this process: the test runner resolves imports its own way (from the repo root).
    const script = `import { importBundleHandlers } from './lib/local/bundles.ts';
await importBundleHandlers(${JSON.stringify(broken)}, ['check-readiness'], 1);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const [code] = (await once(child, 'exit')) as [number | null];

    expect(code).toBe(1);
    expect(stderr).toMatch(/cannot load the check-readiness bundle .*Cannot find package 'sharp'/);

    // The whole stack on those bundles stops with the error and an exit code; it does not hang
    // (its Step Functions endpoint once waited for a runner that was never made).
    const started = await startBundledStack(broken, join(tmp, 'broken-data')).then(
      (stack) => stack.stop().then(() => 'started'),
      (err: Error) => err.message,
    );
    expect(started).toMatch(/tlearn local --bundles exited with [1-9]/);
    expect(started).toMatch(/cannot load the check-readiness bundle .*Cannot find package 'sharp'/);
  });

  it('trains, predicts and scores a batch over the inbox with `tlearn local --bundles`', async () => {
    const stack = await startBundledStack(dist, join(tmp, 'data'));
    const { apiUrl } = stack;
    const s3 = createTargetS3Client({ bucket: BUCKET, region: REGION, endpoint: stack.awsEndpoint }, 10_000);
    try {
      expect(stack.output()).toContain(
        `handlers: the Lambda bundles in ${dist} (${FUNCTION_NAMES.length} functions`,
      );
      const images = await makeLabelledImages({ labels: ['red', 'green'], perClass: 6, seed: 5 });
      const inbox: { key: string; data: Buffer }[] = [];
      for (const [i, img] of images.entries()) {
        if (i % 6 < 4) await putObject(s3, BUCKET, imageKey(DATASET, img.label, img.file), img.data);
        else inbox.push({ key: `inbox/2026-12-07/${img.label}-${img.file}`, data: img.data });
      }
      await pollUntil(
        'a promoted model',
        async () => ((await fetch(`${apiUrl}/datasets/${DATASET}/model`)).status === 200 ? true : undefined),
        90_000,
        250,
        () => stack.output().slice(-2000),
      );

      const first = inbox[0];
      if (first === undefined) throw new Error('no inbox image');
      const predicted = await fetch(`${apiUrl}/datasets/${DATASET}/predictions`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: first.data,
      });
      expect(predicted.status).toBe(200);
      const single = (await predicted.json()) as PredictionResponse;
      expect(['red', 'green']).toContain(single.label);

      for (const img of inbox) await putObject(s3, BUCKET, img.key, img.data);
      const started = await fetch(`${apiUrl}/datasets/${DATASET}/batches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prefix: 'inbox/2026-12-07/' }),
      });
      expect(started.status).toBe(202);
      const { id } = (await started.json()) as { id: string };
      const status = await pollUntil(
        'the batch to finish',
        async () => {
          const body = (await (
            await fetch(`${apiUrl}/datasets/${DATASET}/batches/${id}`)
          ).json()) as BatchStatus;
          return body.status === 'running' ? undefined : body;
        },
        60_000,
      );
      expect(status.status).toBe('succeeded');
      expect(status.counts).toEqual({ total: inbox.length, done: inbox.length, failed: 0 });
      const rows = Buffer.from((await getObject(s3, BUCKET, status.results.jsonl)).body)
        .toString('utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as BatchRow);
      const row = rows.find((r) => r.key === first.key);
      expect(row?.label).toBe(single.label);
      expect(row?.confidence).toBeCloseTo(single.confidence, 6);

      // The console the image serves, built with the bundles; one tfjs in the process (the bundles').
      const page = await fetch(`${apiUrl}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      expect(stack.output()).not.toMatch(/already registered|Platform node has already been set/);
    } finally {
      s3.destroy();
      expect(await stack.stop()).toBe(0);
    }
  }, 180_000);
});

/** `tlearn local --bundles` as a user runs it, in its own process, on free loopback ports. */
async function startBundledStack(bundles: string, dataDir: string) {
  // The child's environment is its own: no TLEARN_* or AWS settings of this process leak in.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('TLEARN_') && !k.startsWith('AWS_')),
  );
  const child = spawn(
    process.execPath,
    [
      join(REPO_ROOT, 'bin/tlearn.js'),
      'local',
      '--bundles',
      bundles,
      ...['--data-dir', dataDir, '--port', '0', '--aws-port', '0', '--sfn-port', '0'],
      ...[
        '--weights',
        'random:11',
        '--size',
        '32',
        '--pooling',
        'avg',
        '--settle',
        '1',
        '--no-demo',
        '--no-fetch',
      ],
    ],
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const append = (c: Buffer) => {
    output += c.toString();
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const url = (label: string) => new RegExp(`${label}\\s+(http://127\\.0\\.0\\.1:\\d+)`).exec(output)?.[1];
  const started = await Promise.race([
    pollUntil(
      'the local stack to listen',
      async () => (url('API') && url('S3 \\+ SQS') ? true : undefined),
      120_000,
      100,
      () => output.slice(-2000),
    ),
    exited.then(([code]) => {
      throw new Error(`tlearn local --bundles exited with ${code}:\n${output.slice(-3000)}`);
    }),
  ]);
  expect(started).toBe(true);
  return {
    apiUrl: url('API') ?? '',
    awsEndpoint: url('S3 \\+ SQS') ?? '',
    output: () => output,
    async stop(): Promise<number | null> {
      child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
  };
}
