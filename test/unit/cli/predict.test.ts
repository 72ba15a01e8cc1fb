import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../lib/cli/args.ts';
import type { ExtractorRequest } from '../../../lib/cli/commands/extract.ts';
import { createPredictCommand, loadHeadFile, REMOTE_UNAVAILABLE } from '../../../lib/cli/commands/predict.ts';
import { SpecMismatchError } from '../../../lib/errors.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { nullStream, runCommand } from '../../helpers/cli.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage } from '../../helpers/images.ts';

const SPEC = 'vgg16/random-7/32x32/avg/caffe/bilinear';
const DIMS = 512;

let root: string;
let requests: ExtractorRequest[];

/** A coefficient row that reads channel c (0 = B, 1 = G, 2 = R of the fake's mean colour). */
function channelRow(weights: Record<number, number>): number[] {
  const row = new Array(DIMS).fill(0);
  for (const [c, w] of Object.entries(weights)) row[Number(c)] = w;
  return row;
}

async function writeModel(dir: string, model: object): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.json'), JSON.stringify(model));
  return dir;
}

function command(remote?: () => Promise<{ runRemotePredict(argv: string[]): Promise<number> } | undefined>) {
  return createPredictCommand({
    async loadExtractor(req) {
      requests.push(req);
      const seed = req.weights.kind === 'random' ? req.weights.seed : 0;
      return fakeExtractor({ size: req.inputSize, pooling: req.pooling, weights: `random-${seed}` });
    },
    log: silentLog,
    progressStream: nullStream,
    baseModelsDir: join(root, 'no-base-models'),
    loadRemote: remote ?? (async () => undefined),
  });
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tlearn-cli-predict-'));
  requests = [];
  await writeFile(
    join(root, 'red.png'),
    await makeImage('png', { width: 40, height: 30, color: [230, 20, 20] }),
  );
  await writeFile(
    join(root, 'blue.jpg'),
    await makeImage('jpeg', { width: 30, height: 40, color: [20, 20, 230] }),
  );
  await writeFile(
    join(root, 'green.webp'),
    await makeImage('webp', { width: 16, height: 16, color: [20, 230, 20] }),
  );
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('tlearn predict --model', () => {
  it('labels images with a binary head and prints a table', async () => {
    // prepare: positive class 'red' when mean R beats mean B
    const model = await writeModel(join(root, 'model'), {
      classes: ['blue', 'red'],
      coef: [channelRow({ 0: -0.05, 2: 0.05 })],
      intercept: [0],
      spec: SPEC,
    });

    // act
    const r = await runCommand(command(), ['--model', model, join(root, 'red.png'), join(root, 'blue.jpg')]);

    // assess
    expect(r.code).toBe(0);
    // the head's spec decides the extractor: its seed, size and pooling
    expect(requests).toEqual([
      {
        weights: { kind: 'random', seed: 7 },
        inputSize: 32,
        pooling: 'avg',
        resize: 'bilinear',
        log: silentLog,
      },
    ]);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^IMAGE\s+LABEL\s+CONFIDENCE\s+SCORES$/);
    expect(lines[1]).toMatch(/red\.png\s+red\s+1\.000\s+red 1\.000 {2}blue 0\.000/);
    expect(lines[2]).toMatch(/blue\.jpg\s+blue\s+1\.000/);
  });

  it('prints JSON with softmax scores of a multi-class head, top K', async () => {
    // prepare
    const model = await writeModel(join(root, 'model'), {
      classes: ['blue', 'green', 'red'],
      coef: [channelRow({ 0: 0.02 }), channelRow({ 1: 0.02 }), channelRow({ 2: 0.02 })],
      intercept: [0, 0, 0],
      spec: SPEC,
      version: '20260101T000000Z-abcdef',
      extra: 'kept',
    });

    // act
    const r = await runCommand(command(), ['--model', model, root, '--json', '--top', '2']);

    // assess
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.model).toMatchObject({
      spec: SPEC,
      classes: ['blue', 'green', 'red'],
      version: '20260101T000000Z-abcdef',
    });
    const byImage = Object.fromEntries(
      json.predictions.map((p: { image: string; label: string }) => [p.image.slice(root.length + 1), p]),
    );
    expect(Object.keys(byImage).sort()).toEqual(['blue.jpg', 'green.webp', 'red.png']);
    expect(byImage['green.webp'].label).toBe('green');
    expect(byImage['red.png'].label).toBe('red');
    expect(byImage['blue.jpg'].label).toBe('blue');
    const red = byImage['red.png'];
    expect(red.scores).toHaveLength(2);
    expect(red.scores[0]).toEqual({ label: 'red', probability: red.confidence });
    // softmax of 0.02 * (R, G, B) caffe means (checked by hand from the image colour)
    const z = [20 - 103.939, 20 - 116.779, 230 - 123.68].map((v) => v * 0.02);
    const e = z.map((v) => Math.exp(v));
    expect(red.confidence).toBeCloseTo((e[2] ?? 0) / e.reduce((a, b) => a + b, 0), 2);
  });

  it('reports images it cannot read and exits 3', async () => {
    const model = await writeModel(join(root, 'model'), {
      classes: ['blue', 'red'],
      coef: [channelRow({ 2: 0.05 })],
      intercept: [0],
      spec: SPEC,
    });
    await writeFile(join(root, 'notes.jpg'), 'plain text');

    const r = await runCommand(command(), [
      '--model',
      model,
      join(root, 'red.png'),
      join(root, 'notes.jpg'),
      '--json',
    ]);

    expect(r.code).toBe(3);
    const failed = JSON.parse(r.stdout).predictions.find((p: { error?: unknown }) => p.error);
    expect(failed).toEqual({
      image: join(root, 'notes.jpg'),
      error: { code: 'UnsupportedImageFormat', message: expect.stringMatching(/'text' is not supported/) },
    });
  });

  it('stops with a spec mismatch when the weights differ from the head', async () => {
    const model = await writeModel(join(root, 'model'), {
      classes: ['blue', 'red'],
      coef: [channelRow({ 2: 1 })],
      intercept: [0],
      spec: SPEC,
    });

    const err = await command()
      .run(['--model', model, join(root, 'red.png'), '--weights', 'random:9'])
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SpecMismatchError);
    expect((err as Error).message).toMatch(
      /trained on features of spec vgg16\/random-7.*these weights give vgg16\/random-9.*--weights random:7/,
    );
  });

  it('without --model, hands the argv to the remote mode when it exists', async () => {
    const seen: string[][] = [];
    const remote = async () => ({
      async runRemotePredict(argv: string[]) {
        seen.push(argv);
        return 0;
      },
    });

    const r = await runCommand(command(remote), ['pets', 'a.jpg', '--top', '3']);

    expect(r.code).toBe(0);
    expect(seen).toEqual([['pets', 'a.jpg', '--top', '3']]);
  });

  it('without --model and without the remote mode, says so and exits 2', async () => {
    const r = await runCommand(command(), ['pets', 'a.jpg']);

    expect(r.code).toBe(2);
    expect(r.stderr).toBe(REMOTE_UNAVAILABLE);
    expect(r.stderr).toMatch(/use --model DIR/);
  });

  it('rejects a missing image list', async () => {
    await expect(command().run(['--model', root])).rejects.toThrow(UsageError);
  });
});

describe('loadHeadFile', () => {
  it.each([
    [{ classes: ['a'], coef: [[1]], intercept: [0], spec: SPEC }, /classes/],
    [
      { classes: ['a', 'b', 'c'], coef: [channelRow({})], intercept: [0], spec: SPEC },
      /3 classes needs 3 coefficient row/,
    ],
    [{ classes: ['a', 'b'], coef: [[1, 2, 3]], intercept: [0], spec: SPEC }, /must have 512 values/],
    [{ classes: ['a', 'b'], coef: [channelRow({})], intercept: [0], spec: 'resnet' }, /not a feature spec/],
  ])('rejects a malformed model.json (%#)', async (model, message) => {
    const dir = await writeModel(join(root, 'bad'), model);
    await expect(loadHeadFile(dir)).rejects.toThrow(message);
  });

  it('says what to do when the folder has no model.json', async () => {
    await expect(loadHeadFile(join(root, 'nothing'))).rejects.toThrow(/folder written by tlearn fit/);
  });
});
