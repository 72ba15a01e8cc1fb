import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError, SpecMismatchError, ValidationError } from '../../../lib/errors.ts';
import {
  FEATURES_MANIFEST,
  type FeaturesManifest,
  listImageFiles,
  listLocalImages,
  readFeatureDir,
  readFeaturesManifest,
} from '../../../lib/features/local-dataset.ts';
import { encodeNpy } from '../../../lib/features/npy.ts';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tlearn-local-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function touch(rel: string, content: string | Uint8Array = 'x'): Promise<string> {
  const path = join(root, rel);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
  return path;
}

function manifest(spec: string, dims: number): FeaturesManifest {
  const at = '2026-01-01T00:00:00.000Z';
  return { format: 'tlearn-features', version: 1, spec, dims, createdAt: at, updatedAt: at };
}

describe('listLocalImages', () => {
  it('takes labels from folders and Kaggle names, and says why other files are skipped', async () => {
    // prepare
    await touch('data/cat/1.jpg');
    await touch('data/cat/sub/2.PNG');
    await touch('data/dog/3.webp');
    await touch('data/dog.7.jpg');
    await touch('data/photo.jpg');
    await touch('data/cat/notes.txt');
    await touch('data/cat/.DS_Store');
    await touch('data/.git/cat/9.jpg');

    // act
    const { images, skipped } = await listLocalImages([join(root, 'data')]);

    // assess
    expect(images.map((i) => [i.label, i.file])).toEqual([
      ['cat', '1.jpg'],
      ['cat', 'sub/2.PNG'],
      ['dog', '3.webp'],
      ['dog', 'dog.7.jpg'],
    ]);
    expect(images[1]?.path).toBe(join(root, 'data/cat/sub/2.PNG'));
    const reasons = Object.fromEntries(skipped.map((s) => [s.path.slice(root.length + 1), s.reason]));
    expect(reasons).toEqual({
      'data/.git': 'hidden-file',
      'data/cat/.DS_Store': 'hidden-file',
      'data/cat/notes.txt': 'not-an-image',
      'data/photo.jpg': 'invalid-label',
    });
    expect(skipped.find((s) => s.reason === 'invalid-label')?.detail).toMatch(/cat\.12\.jpg/);
  });

  it('labels a single file by its Kaggle name, else by its folder', async () => {
    const kaggle = await touch('x/cat.3.jpg');
    const inFolder = await touch('x/dog/5.jpg');

    const { images } = await listLocalImages([inFolder, kaggle]);

    expect(images).toEqual([
      { path: kaggle, label: 'cat', file: 'cat.3.jpg' },
      { path: inFolder, label: 'dog', file: '5.jpg' },
    ]);
  });

  it('keeps the first of two images with the same label and file', async () => {
    await touch('a/cat/1.jpg');
    await touch('b/cat/1.jpg');

    const { images, skipped } = await listLocalImages([join(root, 'a'), join(root, 'b')]);

    expect(images.map((i) => i.path)).toEqual([join(root, 'a/cat/1.jpg')]);
    expect(skipped).toMatchObject([{ path: join(root, 'b/cat/1.jpg'), reason: 'duplicate' }]);
  });

  it('throws NotFoundError for a missing input', async () => {
    await expect(listLocalImages([join(root, 'nope')])).rejects.toThrow(NotFoundError);
  });
});

describe('listImageFiles', () => {
  it('keeps files as given and walks folders for images', async () => {
    const given = await touch('one.bin');
    await touch('dir/a.jpg');
    await touch('dir/deep/b.tiff');
    await touch('dir/c.txt');

    const { files, skipped } = await listImageFiles([given, join(root, 'dir')]);

    expect(files).toEqual([given, join(root, 'dir/a.jpg'), join(root, 'dir/deep/b.tiff')]);
    expect(skipped.map((s) => s.reason)).toEqual(['not-an-image']);
  });
});

describe('readFeatureDir', () => {
  it('reads label folders into one contiguous matrix, sorted by label then file', async () => {
    // prepare
    await touch('f/dog/b.jpg.npy', encodeNpy(new Float32Array([4, 5, 6])));
    await touch('f/cat/z.jpg.npy', encodeNpy(new Float32Array([1, 2, 3])));
    await touch('f/cat/sub/a.png.npy', encodeNpy(new Float32Array([7, 8, 9]), [1, 3]));
    await touch('f/stray.npy', encodeNpy(new Float32Array([0, 0, 0])));
    await touch('f/errors.jsonl', '{}\n');

    // act
    const fd = await readFeatureDir(join(root, 'f'));

    // assess
    expect(fd.X.n).toBe(3);
    expect(fd.X.d).toBe(3);
    expect(fd.X.data).toBeInstanceOf(Float32Array);
    expect(Array.from(fd.X.data)).toEqual([7, 8, 9, 1, 2, 3, 4, 5, 6]);
    expect(fd.labels).toEqual(['cat', 'cat', 'dog']);
    expect(fd.files).toEqual(['cat/sub/a.png', 'cat/z.jpg', 'dog/b.jpg']);
    expect(fd.spec).toBeUndefined();
    expect(fd.skipped).toMatchObject([{ reason: 'invalid-label', detail: 'not inside a label folder' }]);
  });

  it('returns the spec recorded in features.json and checks the dims against it', async () => {
    // prepare
    const spec = 'vgg16/random-1/32x32/avg/caffe/bilinear';
    await touch(`f/${FEATURES_MANIFEST}`, JSON.stringify(manifest(spec, 512)));
    await touch('f/cat/1.npy', encodeNpy(new Float32Array(512).fill(1)));
    await touch('g/spec.txt', `${spec}\n`);
    await touch('g/cat/1.npy', encodeNpy(new Float32Array(3)));

    // act
    const fd = await readFeatureDir(join(root, 'f'));

    // assess
    expect(fd.spec).toBe(spec);
    expect(fd.X.d).toBe(512);
    expect(await readFeaturesManifest(join(root, 'g'))).toEqual({ spec });
    await expect(readFeatureDir(join(root, 'g'))).rejects.toThrow(SpecMismatchError);
  });

  it('names the file when vectors of different lengths are mixed', async () => {
    await touch('f/cat/1.npy', encodeNpy(new Float32Array(4)));
    await touch('f/dog/2.npy', encodeNpy(new Float32Array(5)));

    const err = await readFeatureDir(join(root, 'f')).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(/dog\/2\.npy has 5 values, other features have 4/);
  });

  it('names a corrupt .npy file', async () => {
    await touch('f/cat/1.npy', encodeNpy(new Float32Array(4)));
    await touch('f/cat/2.npy', 'not numpy');

    await expect(readFeatureDir(join(root, 'f'))).rejects.toThrow(/cat\/2\.npy.*missing \\x93NUMPY magic/);
  });

  it('says to run tlearn extract when there are no features', async () => {
    await touch('f/readme.txt');
    await expect(readFeatureDir(join(root, 'f'))).rejects.toThrow(/run tlearn extract first/);
  });

  it('rejects a malformed features.json', async () => {
    await touch(`f/${FEATURES_MANIFEST}`, '{"spec": 3}');
    await touch('f/cat/1.npy', encodeNpy(new Float32Array(4)));
    await expect(readFeatureDir(join(root, 'f'))).rejects.toThrow(/not a tlearn features manifest/);
  });
});
