import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpecMismatchError, ValidationError } from '../../../lib/errors.ts';
import {
  extractFiles,
  extractInBatches,
  findNewestBaseModel,
  parseWeightsFlag,
  resolveLocalWeights,
} from '../../../lib/features/extract-files.ts';
import { FeaturesManifest, listLocalImages, readFeatureDir } from '../../../lib/features/local-dataset.ts';
import { decodeNpy } from '../../../lib/features/npy.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage, truncateImage, writeLabelledImages } from '../../helpers/images.ts';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tlearn-extract-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const FIXED_NOW = () => new Date('2026-01-02T03:04:05.000Z');

describe('extractFiles', () => {
  it('writes one .npy per image, a manifest, and batches the forward passes', async () => {
    // prepare: 2 classes x 4 images; red-family cats, green-family dogs
    await writeLabelledImages(join(root, 'data'), {
      labels: ['cat', 'dog'],
      perClass: 4,
      width: 24,
      height: 20,
    });
    const { images } = await listLocalImages([join(root, 'data')]);
    const extractor = fakeExtractor();
    const out = join(root, 'features');

    // act
    const result = await extractFiles({ images, extractor, outDir: out, batchSize: 3, now: FIXED_NOW });

    // assess
    expect(result).toMatchObject({ written: 8, upToDate: 0, failed: [], labels: { cat: 4, dog: 4 } });
    expect(result.errorsPath).toBeUndefined();
    expect(extractor.batches).toEqual([3, 3, 2]);
    const cat0 = decodeNpy(await readFile(join(out, 'cat/img-000.png.npy')));
    expect(cat0.shape).toEqual([512]);
    // BGR order: a red-family image has its largest mean in the last (R) channel
    const [b, g, r] = cat0.data;
    expect(r).toBeGreaterThan(b ?? 0);
    expect(r).toBeGreaterThan(g ?? 0);
    const manifest = FeaturesManifest.parse(JSON.parse(await readFile(join(out, 'features.json'), 'utf8')));
    expect(manifest).toMatchObject({
      spec: 'vgg16/random-7/32x32/avg/caffe/bilinear',
      dims: 512,
      backend: 'cpu',
      createdAt: '2026-01-02T03:04:05.000Z',
      lastRun: { images: 8, written: 8, upToDate: 0, failed: 0, skipped: 0 },
      labels: { cat: 4, dog: 4 },
    });
  });

  it('round-trips through readFeatureDir with the labels and spec', async () => {
    await writeLabelledImages(join(root, 'data'), { labels: ['cat', 'dog'], perClass: 2 });
    const { images } = await listLocalImages([join(root, 'data')]);
    const out = join(root, 'features');
    await extractFiles({ images, extractor: fakeExtractor(), outDir: out });

    const fd = await readFeatureDir(out);

    expect(fd.spec).toBe('vgg16/random-7/32x32/avg/caffe/bilinear');
    expect(fd.labels).toEqual(['cat', 'cat', 'dog', 'dog']);
    expect(fd.files).toEqual(['cat/img-000.png', 'cat/img-001.png', 'dog/img-000.png', 'dog/img-001.png']);
    expect([fd.X.n, fd.X.d]).toEqual([4, 512]);
    // dogs are green-family: mean G (index 1) beats mean R (index 2); cats the other way round
    const row = (i: number) => fd.X.data.subarray(i * 512, i * 512 + 3);
    expect(row(0)[2]).toBeGreaterThan(row(0)[1] ?? 0);
    expect(row(3)[1]).toBeGreaterThan(row(3)[2] ?? 0);
  });

  it('records images that cannot be used in errors.jsonl and keeps going', async () => {
    // prepare
    await writeLabelledImages(join(root, 'data'), { labels: ['cat'], perClass: 2 });
    const broken = await makeImage('jpeg', { width: 64, height: 64, seed: 3 });
    await writeFile(join(root, 'data/cat/truncated.jpg'), truncateImage(broken, 0.4));
    await writeFile(join(root, 'data/cat/not-really.png'), 'hello, I am text');
    await writeFile(join(root, 'data/cat/empty.gif'), '');
    const { images } = await listLocalImages([join(root, 'data')]);
    const out = join(root, 'features');

    // act
    const result = await extractFiles({ images, extractor: fakeExtractor(), outDir: out });

    // assess
    expect(result.written).toBe(2);
    expect(result.failed.map((f) => [f.file, f.code])).toEqual([
      ['empty.gif', 'EmptyImage'],
      ['not-really.png', 'UnsupportedImageFormat'],
      ['truncated.jpg', 'CorruptImage'],
    ]);
    const lines = (await readFile(join(out, 'errors.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({
      path: join(root, 'data/cat/truncated.jpg'),
      label: 'cat',
      file: 'truncated.jpg',
      code: 'CorruptImage',
    });
    expect(lines[2].reason).toMatch(/^CorruptImage: jpeg image is truncated/);
    await expect(stat(join(out, 'cat/truncated.jpg.npy'))).rejects.toThrow();
  });

  it('keeps up-to-date features, recomputes changed images, and recomputes all with force', async () => {
    // prepare
    const written = await writeLabelledImages(join(root, 'data'), { labels: ['cat', 'dog'], perClass: 2 });
    const { images } = await listLocalImages([join(root, 'data')]);
    const out = join(root, 'features');
    await extractFiles({ images, extractor: fakeExtractor(), outDir: out });
    const changed = written[0]?.path ?? '';
    const future = new Date(Date.now() + 60_000);
    await utimes(changed, future, future);

    // act
    const again = fakeExtractor();
    const second = await extractFiles({ images, extractor: again, outDir: out });
    const forced = fakeExtractor();
    const third = await extractFiles({ images, extractor: forced, outDir: out, force: true });

    // assess
    expect([second.written, second.upToDate]).toEqual([1, 3]);
    expect(again.batches).toEqual([1]);
    expect([third.written, third.upToDate]).toEqual([4, 0]);
    expect(second.labels).toEqual({ cat: 2, dog: 2 });
  });

  it('refuses a folder holding features of another spec', async () => {
    await writeLabelledImages(join(root, 'data'), { labels: ['cat'], perClass: 1 });
    const { images } = await listLocalImages([join(root, 'data')]);
    const out = join(root, 'features');
    await extractFiles({ images, extractor: fakeExtractor({ weights: 'random-1' }), outDir: out });

    const err = await extractFiles({
      images,
      extractor: fakeExtractor({ weights: 'random-2' }),
      outDir: out,
    }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SpecMismatchError);
    expect((err as Error).message).toMatch(/holds features of spec vgg16\/random-1\/.*not vgg16\/random-2/);
  });

  it('refuses a folder with .npy files but no manifest', async () => {
    await mkdir(join(root, 'features/cat'), { recursive: true });
    await writeFile(join(root, 'features/cat/x.npy'), 'x');
    await expect(
      extractFiles({ images: [], extractor: fakeExtractor(), outDir: join(root, 'features') }),
    ).rejects.toThrow(/no features\.json/);
  });

  it('fails the run when the forward pass fails', async () => {
    await writeLabelledImages(join(root, 'data'), { labels: ['cat'], perClass: 2 });
    const { images } = await listLocalImages([join(root, 'data')]);
    const extractor = fakeExtractor({ fail: new Error('out of memory') });

    await expect(extractFiles({ images, extractor, outDir: join(root, 'features') })).rejects.toMatchObject({
      code: 'ExtractionFailed',
      message: expect.stringMatching(/out of memory/),
    });
  });
});

describe('extractInBatches', () => {
  it('yields results in input order, errors in place', async () => {
    const good = join(root, 'a.png');
    await writeFile(good, await makeImage('png', { width: 8, height: 8, color: [0, 0, 255] }));
    const items = [{ path: good }, { path: join(root, 'missing.png') }, { path: good }];

    const results = [];
    for await (const batch of extractInBatches(items, fakeExtractor(), { batchSize: 2 })) results.push(batch);

    expect(results.map((b) => b.length)).toEqual([2, 1]);
    const flat = results.flat();
    expect(flat.map((r) => 'vector' in r)).toEqual([true, false, true]);
    expect(flat[1]).toMatchObject({ item: { path: join(root, 'missing.png') }, error: { code: 'ENOENT' } });
  });
});

describe('weights resolution', () => {
  it('parses random, random:SEED and folders', async () => {
    await mkdir(join(root, 'vgg'), { recursive: true });
    await writeFile(join(root, 'vgg/model.json'), '{}');

    await expect(parseWeightsFlag('random')).resolves.toEqual({ kind: 'random', seed: 42 });
    await expect(parseWeightsFlag('random:7')).resolves.toEqual({ kind: 'random', seed: 7 });
    await expect(parseWeightsFlag(join(root, 'vgg'))).resolves.toEqual({
      kind: 'uri',
      uri: join(root, 'vgg'),
    });
    await expect(parseWeightsFlag('s3://b/base-models/x/')).resolves.toEqual({
      kind: 'uri',
      uri: 's3://b/base-models/x/',
    });
    await expect(parseWeightsFlag('random:x')).rejects.toThrow(ValidationError);
    await expect(parseWeightsFlag(join(root, 'nope'))).rejects.toThrow(/no such folder/);
    await expect(parseWeightsFlag(root)).rejects.toThrow(/has no model\.json/);
  });

  it('defaults to the newest imported base model, and explains how to get one when none', async () => {
    // prepare
    const base = join(root, 'base-models');
    for (const [name, t] of [
      ['vgg16-old', 1_000],
      ['vgg16-new', 2_000],
    ] as const) {
      await mkdir(join(base, name), { recursive: true });
      await writeFile(join(base, name, 'model.json'), '{}');
      await utimes(join(base, name, 'model.json'), t, t);
    }
    await mkdir(join(base, 'empty'), { recursive: true });

    // act + assess
    expect(await findNewestBaseModel(base)).toBe(join(base, 'vgg16-new'));
    await expect(resolveLocalWeights(undefined, { baseModelsDir: base })).resolves.toEqual({
      kind: 'uri',
      uri: join(base, 'vgg16-new'),
    });
    await expect(resolveLocalWeights('random:3', { baseModelsDir: base })).resolves.toEqual({
      kind: 'random',
      seed: 3,
    });
    const err = await resolveLocalWeights(undefined, { baseModelsDir: join(root, 'none') }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/tlearn base-model import/);
    expect((err as Error).message).toMatch(/--weights random/);
  });
});
