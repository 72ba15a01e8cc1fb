/**
 * The demo dataset of the local stack: small PNGs in three visually distinct families (warm
 * discs on dark, green squares on light, blue stripes), generated from seeded pixels with sharp,
 * so a classifier on VGG16 features tells them apart even with seeded random weights and nothing
 * is downloaded.
 */
import sharp from 'sharp';
import { mulberry32 } from '../util/random.ts';

/** The demo's classes (labels). */
export const DEMO_LABELS = ['circle', 'square', 'stripes'] as const;
export type DemoLabel = (typeof DEMO_LABELS)[number];

/** One generated image. */
export interface DemoImage {
  label: DemoLabel;
  /** File name, e.g. `circle-07.png`. */
  file: string;
  png: Buffer;
}

const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** Raw RGB pixels of one image of `label`, varied by `seed` (position, size, hue, noise). */
export function demoPixels(label: DemoLabel, size: number, seed: number): Buffer {
  const rnd = mulberry32(seed * 7919 + DEMO_LABELS.indexOf(label) * 104_729);
  const px = Buffer.alloc(size * size * 3);
  const jitter = (amp: number) => (rnd() - 0.5) * 2 * amp;
  const set = (x: number, y: number, rgb: readonly [number, number, number]) => {
    const i = (y * size + x) * 3;
    const n = jitter(12);
    px[i] = clamp(rgb[0] + n);
    px[i + 1] = clamp(rgb[1] + n);
    px[i + 2] = clamp(rgb[2] + n);
  };
  if (label === 'circle') {
    const bg: [number, number, number] = [20 + jitter(15), 20 + jitter(15), 30 + jitter(15)];
    const fg: [number, number, number] = [220 + jitter(30), 80 + jitter(60), 30 + jitter(25)];
    const r = size * (0.22 + rnd() * 0.15);
    const cx = size / 2 + jitter(size * 0.15);
    const cy = size / 2 + jitter(size * 0.15);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) set(x, y, (x - cx) ** 2 + (y - cy) ** 2 <= r * r ? fg : bg);
  } else if (label === 'square') {
    const bg: [number, number, number] = [225 + jitter(20), 225 + jitter(20), 215 + jitter(20)];
    const fg: [number, number, number] = [40 + jitter(25), 170 + jitter(40), 60 + jitter(30)];
    const half = size * (0.2 + rnd() * 0.15);
    const cx = size / 2 + jitter(size * 0.12);
    const cy = size / 2 + jitter(size * 0.12);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        set(x, y, Math.abs(x - cx) <= half && Math.abs(y - cy) <= half ? fg : bg);
  } else {
    const a: [number, number, number] = [30 + jitter(20), 70 + jitter(30), 200 + jitter(40)];
    const b: [number, number, number] = [190 + jitter(30), 210 + jitter(30), 240 + jitter(15)];
    const period = Math.max(4, Math.round(size * (0.12 + rnd() * 0.1)));
    const phase = Math.floor(rnd() * period);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) set(x, y, Math.floor((y + phase) / (period / 2)) % 2 === 0 ? a : b);
  }
  return px;
}

/**
 * Generates `perClass` PNGs of each demo label (`{label}-{nn}.png`), `size`×`size` pixels.
 * Deterministic: the same arguments give the same bytes.
 */
export async function makeDemoImages(opts: {
  perClass: number;
  size?: number;
  firstSeed?: number;
}): Promise<DemoImage[]> {
  const size = opts.size ?? 96;
  const first = opts.firstSeed ?? 1;
  const out: DemoImage[] = [];
  for (const label of DEMO_LABELS) {
    for (let i = 0; i < opts.perClass; i++) {
      const seed = first + i;
      const png = await sharp(demoPixels(label, size, seed), {
        raw: { width: size, height: size, channels: 3 },
      })
        .png()
        .toBuffer();
      out.push({ label, file: `${label}-${String(seed).padStart(2, '0')}.png`, png });
    }
  }
  return out;
}
