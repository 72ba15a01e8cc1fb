import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONSOLE_IMAGE_DIR,
  IMAGE_CONTEXT_IGNORE,
  imageHandlerCmd,
} from '../../infra/constructs/tlearn-function.ts';
import { REPO_ROOT } from '../../infra/paths.ts';
import { IMAGE_BASE_MODEL_URI } from '../../infra/stack-props.ts';
import { imageBundleOptions } from '../../lib/bundling.ts';
import { ENV } from '../../lib/config.ts';
import { FUNCTION_NAMES, handlerEntry, IMAGE_FUNCTIONS } from '../../lib/functions.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

const dockerfile = readFileSync(join(REPO_ROOT, 'functions/Dockerfile'), 'utf8');

/** A Dockerfile variable reference, `${NAME}`. */
const ref = (name: string): string => `\${${name}}`;

function dirSize(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    total += entry.isDirectory() ? dirSize(p) : statSync(p).size;
  }
  return total;
}

describe('functions/Dockerfile', () => {
  it('builds on the Lambda Node 22 base image in stages', () => {
    const froms = dockerfile.match(/^FROM .*$/gm) ?? [];
    expect(dockerfile).toMatch(/^ARG BASE_IMAGE=public\.ecr\.aws\/lambda\/nodejs:22$/m);
    expect(froms).toEqual([`FROM ${ref('BASE_IMAGE')} AS build`, `FROM ${ref('BASE_IMAGE')}`]);
  });

  it('bundles exactly the container-image handlers to the files their CMD names', () => {
    const loop = dockerfile.match(/for fn in ([a-z -]+); do/);
    expect(loop?.[1]?.trim().split(/\s+/).sort()).toEqual([...IMAGE_FUNCTIONS].sort());
    expect(dockerfile).toContain(
      `node bin/run-ts.js bin/bundle-function.ts "functions/${ref('fn')}/handler.ts" \\\n        "/build/dist/functions/${ref('fn')}/handler.mjs"`,
    );
    expect(dockerfile).toContain(
      `COPY --from=build /build/dist/functions ${ref('LAMBDA_TASK_ROOT')}/functions`,
    );
    for (const name of IMAGE_FUNCTIONS)
      expect(imageHandlerCmd(name)).toEqual([`functions/${name}/handler.handler`]);
    const options = imageBundleOptions('functions/api/handler.ts', 'handler.mjs');
    expect(options.keepNames).toBe(true);
    expect(options.external).toEqual(
      expect.arrayContaining(['@tensorflow/*', 'sharp', 'onnxruntime-node', 'h5wasm']),
    );
  });

  it('imports the VGG16 weights at build time where BASE_MODEL_URI points', () => {
    const fetch = dockerfile.match(/base-model fetch --out (\S+);/);
    expect(`${fetch?.[1]}/model.json`).toBe(IMAGE_BASE_MODEL_URI);
    expect(dockerfile).toContain(`${ENV.BASE_MODEL_URI}=${IMAGE_BASE_MODEL_URI}`);
    expect(dockerfile).toContain('COPY --from=build /opt/base-models /opt/base-models');
  });

  it('runs only the tfjs-node install script, and proves tfjs-node and sharp load', () => {
    expect(dockerfile).toContain('npm ci --ignore-scripts');
    expect(dockerfile).toContain('npm rebuild @tensorflow/tfjs-node');
    expect(dockerfile).toContain(`node -e "require('@tensorflow/tfjs-node')"`);
    expect(dockerfile).toContain(`node -e "require('sharp')"`);
  });

  it('builds the web console and puts it where the API function looks for it', () => {
    expect(dockerfile).toContain('RUN node bin/run-ts.js console/build.ts --out /build/dist/console');
    expect(dockerfile).toContain(`COPY --from=build /build/dist/console ${ref('LAMBDA_TASK_ROOT')}/console`);
    // The folder that COPY fills: LAMBDA_TASK_ROOT is /var/task in every Lambda base image.
    expect(CONSOLE_IMAGE_DIR).toBe('/var/task/console');
  });

  it('has an entry file for every function of the stack', () => {
    for (const name of FUNCTION_NAMES) expect(existsSync(join(REPO_ROOT, handlerEntry(name)))).toBe(true);
  });
});

describe('.dockerignore', () => {
  it('is the allowlist the stack stages the image context with', () => {
    const lines = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && !l.startsWith('#'));
    expect(lines).toEqual([...IMAGE_CONTEXT_IGNORE]);
  });
});

describe('the staged image asset', () => {
  let testApp: TestApp;
  let manifest: {
    dockerImages: Record<string, { source: { directory: string; dockerFile: string; platform: string } }>;
  };
  let template: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

  beforeAll(() => {
    testApp = createTestApp();
    createTestStack(testApp.app, 'Image');
    const assembly = testApp.app.synth();
    manifest = JSON.parse(readFileSync(join(assembly.directory, 'Image.assets.json'), 'utf8'));
    template = JSON.parse(readFileSync(join(assembly.directory, 'Image.template.json'), 'utf8'));
  });
  afterAll(() => testApp.cleanup());

  it('is one image for every container function, built for linux/amd64 from functions/Dockerfile', () => {
    const images = Object.values(manifest.dockerImages);
    expect(images).toHaveLength(1);
    expect(images[0]?.source).toMatchObject({ dockerFile: 'functions/Dockerfile', platform: 'linux/amd64' });
    const imageUris = Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.PackageType === 'Image')
      .map((r) => JSON.stringify(r.Properties.Code));
    expect(imageUris).toHaveLength(IMAGE_FUNCTIONS.length);
    expect(new Set(imageUris).size).toBe(1);
  });

  it('holds only what the image build reads, and is small', () => {
    const source = Object.values(manifest.dockerImages)[0]?.source;
    const dir = join(testApp.outdir, source?.directory ?? 'missing');
    const top = readdirSync(dir).sort();
    expect(top).toEqual(
      [
        '.dockerignore',
        'bin',
        'console',
        'functions',
        'lib',
        'package-lock.json',
        'package.json',
        'tsconfig.json',
      ].sort(),
    );
    expect(existsSync(join(dir, 'functions/Dockerfile'))).toBe(true);
    expect(existsSync(join(dir, 'bin/tlearn.js'))).toBe(true);
    expect(dirSize(dir)).toBeLessThan(20 * 1024 * 1024);
  });
});
