import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../lib/cli/args.ts';
import { createExtractCommand, type ExtractorRequest } from '../../../lib/cli/commands/extract.ts';
import { readFeatureDir } from '../../../lib/features/local-dataset.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { nullStream, runCommand } from '../../helpers/cli.ts';
import { type FakeExtractor, fakeExtractor } from '../../helpers/fake-extractor.ts';
import { writeLabelledImages } from '../../helpers/images.ts';

let root: string;
let requests: ExtractorRequest[];
let extractors: FakeExtractor[];

function command() {
  return createExtractCommand({
    async loadExtractor(req) {
      requests.push(req);
      const seed = req.weights.kind === 'random' ? req.weights.seed : 0;
      const fake = fakeExtractor({ size: req.inputSize, pooling: req.pooling, weights: `random-${seed}` });
      extractors.push(fake);
      return fake;
    },
    log: silentLog,
    progressStream: nullStream,
    baseModelsDir: join(root, 'no-base-models'),
  });
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tlearn-cli-extract-'));
  requests = [];
  extractors = [];
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('tlearn extract', () => {
  it('extracts a labelled folder, prints a summary and exits 0', async () => {
    // prepare
    await writeLabelledImages(join(root, 'data'), { labels: ['cat', 'dog'], perClass: 3 });
    const out = join(root, 'features');

    // act
    const r = await runCommand(command(), [
      join(root, 'data'),
      '--out',
      out,
      '--weights',
      'random:5',
      '--size',
      '32',
      '--pooling',
      'avg',
      '--batch',
      '4',
    ]);

    // assess
    expect(r.code).toBe(0);
    expect(requests).toEqual([
      { weights: { kind: 'random', seed: 5 }, inputSize: 32, pooling: 'avg', log: silentLog },
    ]);
    expect(extractors[0]?.batches).toEqual([4, 2]);
    expect(extractors[0]?.disposed).toBe(true);
    expect(r.stdout).toMatch(/spec vgg16\/random-5\/32x32\/avg\/caffe\/bilinear/);
    expect(r.stdout).toMatch(/labels: cat 3, dog 3/);
    expect(r.stdout).toMatch(/written 6, up to date 0, failed 0, skipped 0/);
    expect(r.stdout).toMatch(/WARNING: seeded RANDOM weights/);
    const fd = await readFeatureDir(out);
    expect(fd.X.n).toBe(6);
  });

  it('exits 3 and lists the images that failed', async () => {
    await writeLabelledImages(join(root, 'data'), { labels: ['cat'], perClass: 2 });
    await writeFile(join(root, 'data/cat/broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]));
    const out = join(root, 'features');

    const r = await runCommand(command(), [join(root, 'data'), '--out', out, '--weights', 'random']);

    expect(r.code).toBe(3);
    expect(requests[0]?.weights).toEqual({ kind: 'random', seed: 42 });
    expect(requests[0]?.inputSize).toBe(150);
    expect(requests[0]?.pooling).toBe('flatten');
    expect(r.stdout).toMatch(/failed 1/);
    expect(r.stdout).toMatch(/broken\.jpg: CorruptImage: jpeg image is truncated or corrupt/);
    const errors = (await readFile(join(out, 'errors.jsonl'), 'utf8')).trim().split('\n');
    expect(errors).toHaveLength(1);
  });

  it('exits 1 when no image could be used', async () => {
    await writeLabelledImages(join(root, 'data'), { labels: ['cat'], perClass: 0 });
    await writeFile(join(root, 'cat.1.jpg'), 'not an image');

    const r = await runCommand(command(), [
      join(root, 'cat.1.jpg'),
      '--out',
      join(root, 'f'),
      '--weights',
      'random',
    ]);

    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/written 0, up to date 0, failed 1/);
  });

  it('exits 1 when the inputs hold no images at all, before loading a model', async () => {
    await writeFile(join(root, 'notes.txt'), 'x');

    const r = await runCommand(command(), [root, '--out', join(root, 'f'), '--weights', 'random']);

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no usable images/);
    expect(requests).toHaveLength(0);
  });

  it('explains how to get weights when none are imported and none are given', async () => {
    await writeLabelledImages(join(root, 'data'), { labels: ['cat'], perClass: 1 });

    await expect(command().run([join(root, 'data'), '--out', join(root, 'f')])).rejects.toThrow(
      /tlearn base-model import.*--weights random/s,
    );
    expect(requests).toHaveLength(0);
  });

  it('refuses to add features of another spec to a folder', async () => {
    await writeLabelledImages(join(root, 'data'), { labels: ['cat'], perClass: 1 });
    const args = [join(root, 'data'), '--out', join(root, 'f'), '--size', '32', '--pooling', 'avg'];
    expect((await runCommand(command(), [...args, '--weights', 'random:1'])).code).toBe(0);

    await expect(command().run([...args, '--weights', 'random:2'])).rejects.toThrow(/holds features of spec/);
  });

  it.each([
    [['--out', 'x'], /at least one image/],
    [['data'], /--out DIR is required/],
    [['data', '--out', 'x', '--pooling', 'mean'], /--pooling must be one of flatten, avg, max/],
    [['data', '--out', 'x', '--size', '16'], /--size must be at least 32/],
    [['data', '--out', 'x', '--batch', '0'], /--batch must be at least 1/],
    [['data', '--out', 'x', '--backend', 'gpu'], /--backend must be one of/],
    [['data', '--out', 'x', '--colour'], /Unknown option '--colour'/],
  ])('rejects bad usage %j', async (argv, message) => {
    const err = await command()
      .run(argv)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
  });
});
