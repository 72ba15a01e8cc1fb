/**
 * Seeds the local stack's S3 emulator with a synthetic dataset for the scale benchmark: N image
 * objects (placeholder bytes, no extraction) and, for each, the feature `.npy` the extractor
 * would have written after it, with its metadata (`source-etag` = the image's ETag,
 * `feature-spec`, `label`) and ReLU-like sparsity (the measured share of non-zeros).
 *
 * The objects are written to the emulator's disk mirror (lib/local/disk-mirror.ts), which
 * `startLocalEmulator({dataDir})` restores straight into its store at start: 400,000 objects
 * through HTTP PUTs take over an hour on a busy 2-core machine, the mirror takes minutes.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { featureMetadata } from '../../lib/features/metadata.ts';
import { encodeNpy } from '../../lib/features/npy.ts';
import { createDiskMirror } from '../../lib/local/disk-mirror.ts';
import { featureDims, parseSpec } from '../../lib/model/spec.ts';
import { featureKey, parseImageKey } from '../../lib/storage/keys.ts';
import { MEASURED_DENSITY } from '../../lib/training/capacity.ts';
import { silentLog } from '../../lib/util/log.ts';

/** The spec of the seeded features: VGG16 flatten at 150x150 (8192 values). */
export const SCALE_SPEC = 'vgg16/random-1/150x150/flatten/caffe/bilinear';

/** What to seed. */
export interface ScaleSeedOptions {
  dataset: string;
  /** Images (and as many features). */
  n: number;
  /** Label folders; images are dealt round-robin. @default 10 */
  labels?: number;
  /** Feature spec. @default SCALE_SPEC */
  spec?: string;
  /** Share of non-zero feature values. @default MEASURED_DENSITY of the spec's pooling */
  density?: number;
  /** Called every 1,000 images with the count done. */
  onProgress?: (done: number) => void;
}

/** The image key of image i. */
export function scaleImageKey(dataset: string, labels: number, i: number): string {
  return `datasets/${dataset}/label-${i % labels}/img-${String(i).padStart(7, '0')}.png`;
}

/**
 * Feature vector of image i of class c: each value non-zero with probability `density`
 * (uniform 0..2, plus 1.5 on the columns j ≡ c mod classes so classes are separable), from a
 * PRNG seeded by i: deterministic.
 */
export function syntheticFeature(
  i: number,
  c: number,
  classes: number,
  d: number,
  density: number,
): Float32Array {
  let s = (i * 2654435761 + 1) >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const v = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    const r = rand();
    if (r < density) v[j] = (r / density) * 2 + (j % classes === c ? 1.5 : 0);
  }
  return v;
}

const md5 = (body: Uint8Array | string) => createHash('md5').update(body).digest('hex');

/**
 * Writes the dataset into the emulator data dir `dataDir` (bucket `bucket`), for
 * `startLocalEmulator({ dataDir })` to restore; returns the counts and the time it took.
 */
export async function seedScaleDataset(
  dataDir: string,
  bucket: string,
  opts: ScaleSeedOptions,
): Promise<{ images: number; features: number; bytes: number; ms: number }> {
  const started = performance.now();
  const labels = opts.labels ?? 10;
  const spec = opts.spec ?? SCALE_SPEC;
  const parsed = parseSpec(spec);
  const d = featureDims(parsed);
  const density = opts.density ?? MEASURED_DENSITY[parsed.pooling];
  const mirror = await createDiskMirror({
    root: join(dataDir, 's3'),
    tmpDir: join(dataDir, 'tmp', 's3'),
    log: silentLog,
  });
  const imagesAt = new Date(Date.now() - 60_000);
  const featuresAt = new Date(imagesAt.getTime() + 1000);
  let bytes = 0;
  for (let i = 0; i < opts.n; i++) {
    const key = scaleImageKey(opts.dataset, labels, i);
    const image = parseImageKey(key);
    if (!image.ok) throw new Error(`bad seeded key ${key}`);
    const imageBody = Buffer.from(`synthetic image ${i}`);
    const etag = md5(imageBody);
    mirror.write(bucket, {
      key,
      body: imageBody,
      etag,
      contentType: 'image/png',
      metadata: {},
      lastModified: imagesAt,
    });
    const body = encodeNpy(syntheticFeature(i, i % labels, labels, d, density));
    bytes += body.length;
    // Written after the image, as the extractor writes it: the feature is the newer object.
    mirror.write(bucket, {
      key: featureKey(image.image),
      body,
      etag: md5(body),
      contentType: 'application/octet-stream',
      metadata: featureMetadata(etag, spec, image.image.label),
      lastModified: featuresAt,
    });
    if ((i + 1) % 500 === 0) {
      await mirror.flush(); // bounds the queued bodies
      if ((i + 1) % 1000 === 0) opts.onProgress?.(i + 1);
    }
  }
  await mirror.flush();
  return { images: opts.n, features: opts.n, bytes, ms: performance.now() - started };
}
