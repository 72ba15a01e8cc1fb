import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_MANIFEST_FILE, type BundleManifest } from '../../../lib/bundling.ts';
import { unmatchedZipBundles } from '../../../scripts/check-bundles.ts';

describe('scripts/check-bundles.ts', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-check-bundles-'));
    const manifest: BundleManifest = {
      format: 'tlearn-bundles',
      formatVersion: 1,
      builtAt: '2026-12-07T06:00:00.000Z',
      functions: {
        'start-training': { kind: 'zip', handler: 'start-training/index.mjs', bytes: 3 },
        'train-head': { kind: 'zip', handler: 'train-head/index.mjs', bytes: 3 },
        api: { kind: 'image', handler: 'image/functions/api/handler.mjs', bytes: 3 },
      },
    };
    const files: Record<string, string> = {
      'dist/start-training/index.mjs': 'a=1',
      'dist/train-head/index.mjs': 'b=2',
      'dist/image/functions/api/handler.mjs': 'c=3',
      'cdk.out/asset.111/index.mjs': 'a=1',
      'cdk.out/asset.222/index.mjs': 'b=3',
      'cdk.out/asset.333/Dockerfile': 'FROM x',
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(tmp, path, '..'), { recursive: true });
      await writeFile(join(tmp, path), text);
    }
    await writeFile(join(tmp, 'dist', BUNDLE_MANIFEST_FILE), JSON.stringify(manifest));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('names the zip bundles that equal no synthesized asset byte for byte, and ignores the image ones', async () => {
    expect(await unmatchedZipBundles(join(tmp, 'dist'), join(tmp, 'cdk.out'))).toEqual(['train-head']);
  });
});
