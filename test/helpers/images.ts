/**
 * Deterministic test images, generated with sharp from raw pixels (no binary fixtures needed).
 *
 * - `makePixels()` / `makeImage()`: one image of a given size, colour or seeded pattern, in any
 *   accepted format (jpeg, png, webp, gif, tiff), optionally with an EXIF orientation.
 * - `makeLabelledImages()` / `writeLabelledImages()`: a small labelled dataset whose classes are
 *   visually separable (distinct colour families and stripe orientations), so a logistic head on
 *   features of a random-weight VGG16 can still tell them apart.
 * - `truncateImage()`, `pngDeclaringSize()`: broken inputs for the error paths.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { mulberry32 } from '../../lib/util/random.ts';

export type TestImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff';

export type Pattern = 'solid' | 'noise' | 'hstripes' | 'vstripes' | 'checker' | 'gradient';

export interface MakeImageOptions {
  /** @default 32 */
  width?: number;
  /** @default 32 */
  height?: number;
  /** Base colour, RGB or RGBA (0-255). @default derived from the seed */
  color?: readonly [number, number, number] | readonly [number, number, number, number];
  /** Seed of the pattern/noise (same seed, same pixels). @default 1 */
  seed?: number;
  /** @default 'solid' when `color` is given, else 'noise' */
  pattern?: Pattern;
  /** Amplitude of per-pixel noise added on top of the pattern (0-255). @default 0 */
  noise?: number;
  /** 1 = grey, 2 = grey + alpha, 3 = RGB, 4 = RGBA. @default 4 if color has alpha, else 3 */
  channels?: 1 | 2 | 3 | 4;
  /** EXIF orientation tag to write (1-8); pixels are stored as given. */
  orientation?: number;
  /** JPEG/WebP quality. @default 95 */
  quality?: number;
  /** Lossless WebP. @default false */
  lossless?: boolean;
}

/** Small fast PRNG (mulberry32): the same seed gives the same sequence on every machine. */
export const seededRandom = mulberry32;

const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** Raw interleaved pixels for `opts` (what `makeImage` encodes). */
export function makePixels(opts: MakeImageOptions = {}): {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
} {
  const width = opts.width ?? 32;
  const height = opts.height ?? 32;
  const seed = opts.seed ?? 1;
  const rand = seededRandom(seed);
  const base = opts.color ?? [rand() * 255, rand() * 255, rand() * 255];
  const alpha = base[3] ?? 255;
  const channels = opts.channels ?? (base.length === 4 ? 4 : 3);
  const pattern: Pattern = opts.pattern ?? (opts.color ? 'solid' : 'noise');
  const period = 4 + Math.floor(rand() * 4);
  const phase = Math.floor(rand() * period);
  const noise = opts.noise ?? 0;
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let k = 1; // brightness factor of the pattern at (x, y)
      if (pattern === 'hstripes') k = Math.floor((y + phase) / period) % 2 === 0 ? 1 : 0.45;
      else if (pattern === 'vstripes') k = Math.floor((x + phase) / period) % 2 === 0 ? 1 : 0.45;
      else if (pattern === 'checker')
        k = (Math.floor(x / period) + Math.floor(y / period)) % 2 === 0 ? 1 : 0.45;
      else if (pattern === 'gradient') k = 0.3 + (0.7 * x) / Math.max(1, width - 1);
      const rgb = [0, 1, 2].map((c) => {
        const v = pattern === 'noise' ? rand() * 255 : (base[c] ?? 0) * k;
        return clamp(noise > 0 ? v + (rand() * 2 - 1) * noise : v);
      }) as [number, number, number];
      const o = (y * width + x) * channels;
      if (channels === 1 || channels === 2) {
        data[o] = clamp(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
        if (channels === 2) data[o + 1] = alpha;
      } else {
        data[o] = rgb[0];
        data[o + 1] = rgb[1];
        data[o + 2] = rgb[2];
        if (channels === 4) data[o + 3] = alpha;
      }
    }
  }
  return { data, width, height, channels };
}

/** Encodes raw pixels in a format. */
export async function encodePixels(
  px: { data: Uint8Array; width: number; height: number; channels: 1 | 2 | 3 | 4 },
  format: TestImageFormat,
  opts: Pick<MakeImageOptions, 'orientation' | 'quality' | 'lossless'> = {},
): Promise<Buffer> {
  let img = sharp(px.data, { raw: { width: px.width, height: px.height, channels: px.channels } });
  // sharp writes sRGB unless told; keep grey inputs grey so grayscale decoding is really exercised.
  if (px.channels <= 2) img = img.toColourspace('b-w');
  if (opts.orientation !== undefined) img = img.withMetadata({ orientation: opts.orientation });
  const quality = opts.quality ?? 95;
  switch (format) {
    case 'jpeg':
      return img.jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer();
    case 'png':
      return img.png().toBuffer();
    case 'webp':
      return img.webp({ quality, lossless: opts.lossless ?? false }).toBuffer();
    case 'gif':
      return img.gif().toBuffer();
    case 'tiff':
      return img.tiff({ compression: 'lzw' }).toBuffer();
  }
}

/**
 * One deterministic test image.
 * @example await makeImage('png', { width: 2, height: 2, color: [255, 0, 0] })
 */
export async function makeImage(format: TestImageFormat, opts: MakeImageOptions = {}): Promise<Buffer> {
  return encodePixels(makePixels(opts), format, opts);
}

/** Colour families of the labelled classes (class i uses COLORS[i % n]). */
export const CLASS_COLORS: readonly (readonly [number, number, number])[] = [
  [220, 40, 40], // red
  [40, 180, 60], // green
  [40, 70, 220], // blue
  [230, 210, 40], // yellow
  [200, 50, 200], // magenta
  [40, 200, 210], // cyan
];

export interface LabelledImage {
  label: string;
  /** File name inside the label folder, e.g. `img-003.png`. */
  file: string;
  data: Buffer;
}

export interface LabelledImagesOptions {
  /** Class labels (or a count: 'class-0', 'class-1', …). @default ['cat', 'dog'] */
  labels?: readonly string[] | number;
  /** @default 4 */
  perClass?: number;
  /** @default 32 */
  width?: number;
  /** @default 32 */
  height?: number;
  /** @default 'png' */
  format?: TestImageFormat;
  /** @default 7 */
  seed?: number;
}

/**
 * A small labelled dataset with visually separable classes: class i has its own colour family
 * and stripe orientation (horizontal for even, vertical for odd); each image jitters the colour,
 * the stripe phase/period and adds mild noise from its own seed.
 */
export async function makeLabelledImages(opts: LabelledImagesOptions = {}): Promise<LabelledImage[]> {
  const labels =
    typeof opts.labels === 'number'
      ? Array.from({ length: opts.labels }, (_, i) => `class-${i}`)
      : (opts.labels ?? ['cat', 'dog']);
  const perClass = opts.perClass ?? 4;
  const format = opts.format ?? 'png';
  const ext = format === 'jpeg' ? 'jpg' : format;
  const out: LabelledImage[] = [];
  const rand = seededRandom(opts.seed ?? 7);
  for (const [ci, label] of labels.entries()) {
    const base = CLASS_COLORS[ci % CLASS_COLORS.length] ?? [128, 128, 128];
    for (let i = 0; i < perClass; i++) {
      const jitter = (v: number) => clamp(v + (rand() * 2 - 1) * 25);
      const data = await makeImage(format, {
        width: opts.width ?? 32,
        height: opts.height ?? 32,
        color: [jitter(base[0]), jitter(base[1]), jitter(base[2])],
        pattern: ci % 2 === 0 ? 'hstripes' : 'vstripes',
        noise: 12,
        seed: Math.floor(rand() * 2 ** 31),
      });
      out.push({ label, file: `img-${String(i).padStart(3, '0')}.${ext}`, data });
    }
  }
  return out;
}

/** Writes `makeLabelledImages()` as `{dir}/{label}/{file}`; returns what was written. */
export async function writeLabelledImages(
  dir: string,
  opts: LabelledImagesOptions = {},
): Promise<(LabelledImage & { path: string })[]> {
  const images = await makeLabelledImages(opts);
  return Promise.all(
    images.map(async (img) => {
      const path = join(dir, img.label, img.file);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, img.data);
      return { ...img, path };
    }),
  );
}

/** The first `fraction` of an encoded image (a truncated download). */
export function truncateImage(data: Uint8Array, fraction = 0.5): Buffer {
  return Buffer.from(data.subarray(0, Math.floor(data.length * fraction)));
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

/**
 * A valid-looking, tiny PNG (< 100 bytes) whose header declares `width` x `height` 8-bit RGB
 * pixels: a decompression bomb in miniature, for the pixel-limit check.
 */
export function pngDeclaringSize(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(64))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An animated GIF (or multi-page TIFF) with one solid frame per colour, in order. */
export async function makeMultiFrameImage(
  format: 'gif' | 'tiff' | 'webp',
  colors: readonly (readonly [number, number, number])[],
  opts: { width?: number; height?: number } = {},
): Promise<Buffer> {
  const width = opts.width ?? 8;
  const height = opts.height ?? 8;
  const frames = colors.map((color) => makePixels({ width, height, color }).data);
  const img = sharp(Buffer.concat(frames), {
    raw: { width, height: height * colors.length, channels: 3, pageHeight: height },
  });
  if (format === 'gif') return img.gif().toBuffer();
  if (format === 'webp') return img.webp({ lossless: true }).toBuffer();
  return img.tiff({ compression: 'lzw' }).toBuffer();
}
