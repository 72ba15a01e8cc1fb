import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ImageDecodeError } from '../../lib/errors.ts';
import { imageInfo, preprocessImage } from '../../lib/images/preprocess.ts';
import {
  CORPUS_DIR,
  type CorpusEntry,
  corpusManifest,
  makeBadImageCorpus,
} from '../../scripts/fixtures/make-bad-images.ts';
import { makeImage, makeMultiFrameImage, pngDeclaringSize, seededRandom } from '../helpers/images.ts';
import { expectProbes } from './support.ts';

const corpus = await makeBadImageCorpus();
const rejected = corpus.filter((e) => !e.expect.ok);
const accepted = corpus.filter((e) => e.expect.ok);

/** preprocessImage's outcome: the pixels, or the error it threw. */
async function outcome(bytes: Uint8Array, size: readonly [number, number]): Promise<Float32Array | unknown> {
  return preprocessImage(bytes, { size }).then(
    (x) => x,
    (err: unknown) => err,
  );
}

async function expectOutcome(entry: CorpusEntry, bytes: Uint8Array = entry.bytes): Promise<void> {
  const size = entry.expect.ok ? entry.expect.size : ([32, 32] as const);
  const got = await outcome(bytes, size);
  if (entry.expect.ok) {
    expect(got, `${entry.file}: ${String(got)}`).toBeInstanceOf(Float32Array);
    const x = got as Float32Array;
    expect(x.length).toBe(size[0] * size[1] * 3);
    expectProbes(x, size, entry.expect.probes);
  } else {
    expect(got, `${entry.file} should be refused`).toBeInstanceOf(ImageDecodeError);
    expect(got).toMatchObject({ code: entry.expect.code, status: 422 });
    // The message tells a user what is wrong, without a stack or a libvips dump.
    const message = (got as Error).message;
    expect(message.length).toBeGreaterThan(10);
    expect(message).not.toMatch(/\n|at .*\.ts:\d+/);
  }
}

describe('the bad-image corpus through preprocessImage', () => {
  it('covers every decode error code and the accepted oddities', () => {
    // Prepare / act: the corpus itself. Assess: every decode error code and accepted oddity is in it.
    const codes = new Set(rejected.map((e) => (e.expect.ok ? '' : e.expect.code)));
    expect([...codes].sort()).toEqual([
      'CorruptImage',
      'EmptyImage',
      'ImageTooLarge',
      'UnsupportedImageFormat',
    ]);
    const files = corpus.map((e) => e.file);
    for (const o of [3, 6, 8]) expect(files).toContain(`exif-orientation-${o}.jpg`);
    for (const f of ['empty.jpg', 'text.jpg', 'truncated.jpg', 'truncated.png', 'animated.gif', '16bit.png'])
      expect(files).toContain(f);
    for (const f of ['cmyk.jpg', 'grey-alpha.png', 'vector.svg', 'photo.avif', 'photo.heic'])
      expect(files).toContain(f);
    // The bombs are tiny files: the point is that their headers lie.
    for (const e of corpus.filter((c) => c.file.startsWith('bomb-')))
      expect(e.bytes.length).toBeLessThan(1000);
  });

  it.each(rejected.map((e) => [e.file, e] as const))(
    'refuses %s with its ImageDecodeError code',
    async (_f, entry) => {
      await expectOutcome(entry);
    },
  );

  it.each(accepted.map((e) => [e.file, e] as const))(
    'decodes %s to the right upright pixels',
    async (_f, entry) => {
      await expectOutcome(entry);
    },
  );

  it('refuses a decompression bomb from its header alone, without allocating its pixels', async () => {
    // Prepare
    const bomb = pngDeclaringSize(50_000, 50_000);
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();

    // Act
    const info = await imageInfo(bomb).then(
      () => undefined,
      (e: unknown) => e,
    );

    // Assess: 2.5 gigapixels would be 7.5 GB of RGB; the refusal is instant and allocates nothing.
    expect(info).toMatchObject({ code: 'ImageTooLarge' });
    expect((info as Error).message).toMatch(/50000x50000/);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 1024 * 1024);
  });

  it('answers every seeded mutation of valid images with pixels or an ImageDecodeError, nothing else', async () => {
    // Prepare: valid images of every accepted format, then bit flips, 0xFF runs and truncations.
    const bases = [
      await makeImage('jpeg', { width: 24, height: 16, seed: 3 }),
      await makeImage('png', { width: 24, height: 16, seed: 3 }),
      await makeImage('webp', { width: 24, height: 16, seed: 3 }),
      await makeMultiFrameImage('gif', [
        [255, 0, 0],
        [0, 0, 255],
      ]),
      await makeImage('tiff', { width: 24, height: 16, seed: 3 }),
    ];
    const rand = seededRandom(2026);
    const others: string[] = [];
    const seen = new Map<string, number>();
    let slowest = 0;

    // Act
    for (const base of bases) {
      for (let n = 0; n < 40; n++) {
        const b = Buffer.from(base);
        if (n % 3 === 0) {
          for (let k = 0; k < 1 + Math.floor(rand() * 8); k++)
            b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
        } else if (n % 3 === 1) {
          const at = 8 + Math.floor(rand() * (b.length - 8));
          b.fill(0xff, at, Math.min(b.length, at + 1 + Math.floor(rand() * 16)));
        }
        const input = n % 3 === 2 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
        const t = performance.now();
        const got = await outcome(input, [32, 32]);
        slowest = Math.max(slowest, performance.now() - t);
        const kind =
          got instanceof Float32Array ? 'ok' : got instanceof ImageDecodeError ? got.code : 'other';
        seen.set(kind, (seen.get(kind) ?? 0) + 1);
        if (kind === 'other') others.push(String(got));
      }
    }

    // Assess: a mutation either still decodes or is a client error the extractor records (never a
    // retryable crash that would leave the image pending forever).
    expect(others).toEqual([]);
    expect(seen.get('ok') ?? 0).toBeGreaterThan(10);
    expect(seen.get('CorruptImage') ?? 0).toBeGreaterThan(10);
    expect(slowest).toBeLessThan(5000);
  });
});

describe('the committed copy of the corpus in test/fixtures/bad', () => {
  it('matches what scripts/fixtures/make-bad-images.ts generates: the same files with the same expectations', async () => {
    // Prepare
    const manifest = JSON.parse(await readFile(join(CORPUS_DIR, 'manifest.json'), 'utf8')) as unknown;
    const onDisk = (await readdir(CORPUS_DIR)).filter((f) => f !== 'manifest.json');

    // Act / assess: regenerate with `node bin/run-ts.js scripts/fixtures/make-bad-images.ts` if this fails.
    expect(manifest).toEqual(JSON.parse(JSON.stringify(corpusManifest(corpus))));
    expect(onDisk.sort()).toEqual(corpus.map((e) => e.file).sort());
  });

  it('gives each committed file the outcome its manifest entry names', async () => {
    for (const entry of corpus) {
      const bytes = await readFile(join(CORPUS_DIR, entry.file));
      await expectOutcome(entry, bytes);
    }
  });
});
