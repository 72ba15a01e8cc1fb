/**
 * Batch feature extraction of local image files (`tlearn extract`): decode + preprocess with
 * bounded concurrency, forward passes in batches through a FeatureExtractor, one `.npy` per image.
 * The output folder is the local mirror of the S3 `features/{d}/` prefix:
 *
 * ```
 * OUT/{label}/{file}.npy   float32 vector (.npy v1.0)
 * OUT/features.json        spec, dims, counts (a folder never mixes specs)
 * OUT/errors.jsonl         one line per image that could not be used: path, label, file, code, reason
 * ```
 * Re-running is incremental: an existing `.npy` newer than its image is kept (`force` recomputes).
 * Every file is written to a temporary name and renamed, so an interrupted run leaves no torn files.
 */
import { promises as fs } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describeError, SpecMismatchError, TlearnError, ValidationError } from '../errors.ts';
import { DEFAULT_LIMIT_INPUT_PIXELS, preprocessImage } from '../images/preprocess.ts';
import type { FeatureExtractor, WeightsSource } from '../model/types.ts';
import { type Log, silentLog } from '../util/log.ts';
import {
  ERRORS_JSONL,
  FEATURES_MANIFEST,
  FeaturesManifest,
  type LocalImage,
  readFeaturesManifest,
} from './local-dataset.ts';
import { encodeNpy } from './npy.ts';

/** An image that could not be used, as written to `errors.jsonl`. */
export interface FailedImage {
  path: string;
  label: string;
  file: string;
  /** Error code: `CorruptImage`, `UnsupportedImageFormat`, `EmptyImage`, `ImageTooLarge`, `Unreadable`… */
  code: string;
  /** `code: message`, for people. */
  reason: string;
}

export interface ExtractFilesOptions {
  images: readonly LocalImage[];
  /** A loaded extractor; its spec decides the preprocessing size and resize kernel. */
  extractor: FeatureExtractor;
  outDir: string;
  /** Images per forward pass. @default 8 */
  batchSize?: number;
  /** Images decoded at once (sharp runs on libuv's thread pool). @default 4 */
  concurrency?: number;
  /** Recompute features that are already up to date. @default false */
  force?: boolean;
  /** @default DEFAULT_LIMIT_INPUT_PIXELS */
  limitInputPixels?: number;
  /** Images skipped before extraction (hidden files, non-images…), counted in the manifest. */
  skippedCount?: number;
  /** Called with the number of images just done (written, up to date or failed). */
  onProgress?: (count: number, note?: string) => void;
  log?: Log;
  /** Clock for the manifest's timestamps. */
  now?: () => Date;
}

export interface ExtractFilesResult {
  spec: string;
  dims: number;
  /** Features computed and written by this run. */
  written: number;
  /** Features already present and newer than their image (not recomputed). */
  upToDate: number;
  failed: FailedImage[];
  /** `.npy` files per label in the folder after the run. */
  labels: Record<string, number>;
  manifestPath: string;
  /** Set when some images failed. */
  errorsPath: string | undefined;
}

/** The `.npy` path of an image in a feature folder. */
export function featurePath(outDir: string, image: Pick<LocalImage, 'label' | 'file'>): string {
  return join(outDir, image.label, `${image.file}.npy`);
}

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await fs.writeFile(tmp, data);
  try {
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Whether a folder holds any `.npy` in a label folder (a quick check, stops at the first). */
async function holdsFeatures(dir: string): Promise<boolean> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.some((e) => e.isFile() && e.name.endsWith('.npy'));
}

async function countFeatures(dir: string): Promise<Record<string, number>> {
  const labels: Record<string, number> = {};
  const top = await fs.readdir(dir, { withFileTypes: true });
  for (const entry of top) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const files = await fs.readdir(join(dir, entry.name), { recursive: true, withFileTypes: true });
    const n = files.filter((f) => f.isFile() && f.name.endsWith('.npy') && !f.name.startsWith('.')).length;
    if (n > 0) labels[entry.name] = n;
  }
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * Makes sure `outDir` can take features of `spec`: creates it, refuses a folder that holds features
 * of another spec (or `.npy` files without a manifest), and writes the manifest up front so even an
 * interrupted run leaves a folder that says what it holds. Returns the existing manifest, if any.
 */
export async function prepareFeatureDir(
  outDir: string,
  spec: string,
  dims: number,
  now: Date,
  backend?: string,
): Promise<FeaturesManifest> {
  await fs.mkdir(outDir, { recursive: true });
  const existing = await readFeaturesManifest(outDir);
  if (existing !== undefined && existing.spec !== spec) {
    throw new SpecMismatchError(
      `${outDir} holds features of spec ${existing.spec}, not ${spec}; features of two specs are never mixed: choose another --out (or the same --weights/--size/--pooling as before)`,
    );
  }
  if (existing === undefined && (await holdsFeatures(outDir))) {
    throw new SpecMismatchError(
      `${outDir} holds .npy files but no ${FEATURES_MANIFEST} saying their spec; choose an empty --out`,
    );
  }
  const at = now.toISOString();
  const manifest: FeaturesManifest = {
    format: 'tlearn-features',
    version: 1,
    spec,
    dims,
    ...(backend ? { backend } : {}),
    createdAt: existing?.manifest?.createdAt ?? at,
    updatedAt: at,
    ...(existing?.manifest?.lastRun ? { lastRun: existing.manifest.lastRun } : {}),
    ...(existing?.manifest?.labels ? { labels: existing.manifest.labels } : {}),
  };
  await writeAtomic(join(outDir, FEATURES_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** One item's outcome in `extractInBatches`. */
export type BatchResult<T> = { item: T; vector: Float32Array } | { item: T; error: unknown };

export interface ExtractInBatchesOptions {
  /** Images per forward pass. @default 8 */
  batchSize?: number;
  /** Images decoded at once (sharp runs on libuv's thread pool). @default 4 */
  concurrency?: number;
  /** @default DEFAULT_LIMIT_INPUT_PIXELS */
  limitInputPixels?: number;
}

/**
 * Reads, preprocesses (per the extractor's spec) and runs images through the extractor in
 * batches, yielding each batch's results in input order. An image that cannot be read or decoded
 * yields `{ item, error }` and never stops the run; a failing forward pass throws (it would fail
 * for every image). The next batch is decoded while the current one runs through the network.
 *
 * @example for await (const batch of extractInBatches(paths.map((path) => ({ path })), extractor)) …
 */
export async function* extractInBatches<T extends { path: string }>(
  items: readonly T[],
  extractor: FeatureExtractor,
  opts: ExtractInBatchesOptions = {},
): AsyncGenerator<BatchResult<T>[]> {
  const batchSize = opts.batchSize ?? 8;
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ValidationError(`batch size must be a whole number ≥ 1 (got ${batchSize})`);
  const { spec, dims } = extractor;
  const limitInputPixels = opts.limitInputPixels ?? DEFAULT_LIMIT_INPUT_PIXELS;

  type Prepared = { item: T; input: Float32Array } | { item: T; error: unknown };
  // Never rejects (errors are per item), so a prefetch left pending cannot become unhandled.
  const prepare = async (batch: readonly T[]): Promise<Prepared[]> => {
    const out: Prepared[] = new Array(batch.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < batch.length; i = next++) {
        const item = batch[i] as T;
        try {
          const bytes = await fs.readFile(item.path);
          out[i] = {
            item,
            input: await preprocessImage(bytes, { size: spec.input, resize: spec.resize, limitInputPixels }),
          };
        } catch (error) {
          out[i] = { item, error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, batch.length) }, worker));
    return out;
  };

  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += batchSize) batches.push(items.slice(i, i + batchSize));
  let pending = batches[0] ? prepare(batches[0]) : undefined;
  for (let b = 0; pending !== undefined; b++) {
    const prepared = await pending;
    const following = batches[b + 1];
    pending = following ? prepare(following) : undefined;
    const ok = prepared.filter((p): p is { item: T; input: Float32Array } => 'input' in p);
    let vectors: Float32Array[] = [];
    if (ok.length > 0) {
      try {
        vectors = await extractor.extractBatch(ok.map((p) => p.input));
      } catch (err) {
        throw new TlearnError('ExtractionFailed', `the forward pass failed: ${describeError(err)}`, 500, {
          cause: err,
        });
      }
      if (vectors.length !== ok.length || vectors.some((v) => v.length !== dims)) {
        throw new TlearnError(
          'ExtractionFailed',
          `the extractor returned ${vectors.length} vectors of ${vectors[0]?.length} values for ${ok.length} images of ${dims}`,
        );
      }
    }
    let k = 0;
    yield prepared.map((p) =>
      'input' in p
        ? { item: p.item, vector: vectors[k++] as Float32Array }
        : { item: p.item, error: p.error },
    );
  }
}

async function isUpToDate(image: LocalImage, npy: string): Promise<boolean> {
  const [src, out] = await Promise.all([
    fs.stat(image.path).catch(() => undefined),
    fs.stat(npy).catch(() => undefined),
  ]);
  return src !== undefined && out !== undefined && out.mtimeMs >= src.mtimeMs;
}

/** Error code of anything thrown while reading/decoding an image (`Unreadable` for file errors). */
export function errorCode(err: unknown): string {
  if (err instanceof TlearnError) return err.code;
  if ((err as NodeJS.ErrnoException | undefined)?.syscall !== undefined) return 'Unreadable';
  return err instanceof Error ? err.name : 'Error';
}

/**
 * Extracts features of local images into `{outDir}/{label}/{file}.npy` and writes the folder's
 * `features.json` and `errors.jsonl`. Images that cannot be read or decoded are recorded and
 * skipped, never fatal (a stale `.npy` of such an image is removed); a failing forward pass or an
 * unwritable folder is fatal. Throws SpecMismatchError when `outDir` holds features of another spec.
 *
 * @example
 * const { images } = await listLocalImages(['data/']);
 * const extractor = await loadExtractor({ weights, inputSize: 150, pooling: 'flatten' });
 * const result = await extractFiles({ images, extractor, outDir: 'features/' });
 */
export async function extractFiles(opts: ExtractFilesOptions): Promise<ExtractFilesResult> {
  const { extractor, images } = opts;
  const outDir = resolve(opts.outDir);
  const log = opts.log ?? silentLog;
  const now = opts.now ?? (() => new Date());
  const manifest = await prepareFeatureDir(
    outDir,
    extractor.specId,
    extractor.dims,
    now(),
    extractor.backend,
  );

  const failed: FailedImage[] = [];
  let upToDate = 0;
  let written = 0;
  const todo: LocalImage[] = [];
  for (const image of images) {
    if (!opts.force && (await isUpToDate(image, featurePath(outDir, image)))) {
      upToDate++;
      opts.onProgress?.(1, 'up to date');
    } else {
      todo.push(image);
    }
  }
  if (upToDate > 0) log.info(`${upToDate} feature(s) already up to date`, { outDir });

  const batches = extractInBatches(todo, extractor, {
    ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
    ...(opts.limitInputPixels !== undefined ? { limitInputPixels: opts.limitInputPixels } : {}),
  });
  for await (const batch of batches) {
    await Promise.all(
      batch.map(async (r) => {
        const path = featurePath(outDir, r.item);
        if ('error' in r) {
          const f: FailedImage = {
            path: r.item.path,
            label: r.item.label,
            file: r.item.file,
            code: errorCode(r.error),
            reason: describeError(r.error),
          };
          failed.push(f);
          log.warn(`skipping ${f.path}: ${f.reason}`);
          await fs.rm(path, { force: true }); // the image changed and broke: its old feature is stale
          return;
        }
        await fs.mkdir(dirname(path), { recursive: true });
        await writeAtomic(path, encodeNpy(r.vector));
        written++;
      }),
    );
    opts.onProgress?.(batch.length);
  }

  const errorsPath = join(outDir, ERRORS_JSONL);
  if (failed.length > 0) {
    failed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    await writeAtomic(errorsPath, failed.map((f) => `${JSON.stringify(f)}\n`).join(''));
  } else {
    await fs.rm(errorsPath, { force: true }); // stale failures of an earlier run
  }
  const labels = await countFeatures(outDir);
  const final: FeaturesManifest = {
    ...manifest,
    updatedAt: now().toISOString(),
    lastRun: {
      images: images.length,
      written,
      upToDate,
      failed: failed.length,
      skipped: opts.skippedCount ?? 0,
    },
    labels,
  };
  const manifestPath = join(outDir, FEATURES_MANIFEST);
  await writeAtomic(manifestPath, `${JSON.stringify(FeaturesManifest.parse(final), null, 2)}\n`);
  return {
    spec: extractor.specId,
    dims: extractor.dims,
    written,
    upToDate,
    failed,
    labels,
    manifestPath,
    errorsPath: failed.length > 0 ? errorsPath : undefined,
  };
}

/** Seed used by `--weights random` without a seed. */
export const DEFAULT_RANDOM_SEED = 42;

/** Where `tlearn base-model import|fetch` put their output by default. */
export const LOCAL_BASE_MODELS_DIR = join('.tlearn', 'base-models');

/**
 * Parses a `--weights` value: `random` (seed 42), `random:SEED`, or a tfjs model location
 * (folder, path to model.json, `file://…`, `s3://…`). Local paths must exist.
 */
export async function parseWeightsFlag(raw: string): Promise<WeightsSource> {
  const random = /^random(?::(\d{1,10}))?$/.exec(raw);
  if (random) {
    const seed = random[1] === undefined ? DEFAULT_RANDOM_SEED : Number(random[1]);
    if (seed > 0xffff_ffff)
      throw new ValidationError(`--weights random seed must be below 2^32 (got ${seed})`);
    return { kind: 'random', seed };
  }
  if (raw.startsWith('random'))
    throw new ValidationError(`--weights '${raw}': say random or random:SEED (a whole number)`);
  if (raw.startsWith('s3://') || raw.startsWith('file://')) return { kind: 'uri', uri: raw };
  const path = resolve(raw);
  const st = await fs.stat(path).catch(() => undefined);
  if (st === undefined) throw new ValidationError(`--weights ${raw}: no such folder or model.json`);
  if (st.isDirectory()) {
    const hasModel = await fs.stat(join(path, 'model.json')).catch(() => undefined);
    if (hasModel === undefined)
      throw new ValidationError(`--weights ${raw}: the folder has no model.json (a tfjs layers model)`);
  }
  return { kind: 'uri', uri: path };
}

/**
 * The most recently written base model under `root` (a folder holding `*\/model.json`, as
 * `tlearn base-model import|fetch` write them), or undefined.
 */
export async function findNewestBaseModel(
  root: string = resolve(LOCAL_BASE_MODELS_DIR),
): Promise<string | undefined> {
  const entries = await fs.readdir(root, { withFileTypes: true }).catch(() => []);
  let best: { dir: string; mtime: number } | undefined;
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = join(root, entry.name);
    const st = await fs.stat(join(dir, 'model.json')).catch(() => undefined);
    if (st && (best === undefined || st.mtimeMs > best.mtime)) best = { dir, mtime: st.mtimeMs };
  }
  return best?.dir;
}

/**
 * The weights a local command uses: the `--weights` flag when given, else the newest base model
 * under `./.tlearn/base-models/`; throws ValidationError explaining how to get one otherwise.
 */
export async function resolveLocalWeights(
  flag: string | undefined,
  opts: { baseModelsDir?: string } = {},
): Promise<WeightsSource> {
  if (flag !== undefined) return parseWeightsFlag(flag);
  const root = opts.baseModelsDir ?? resolve(LOCAL_BASE_MODELS_DIR);
  const newest = await findNewestBaseModel(root);
  if (newest === undefined) {
    throw new ValidationError(
      `no base model weights: none under ${root}. Import the Keras VGG16 file with ` +
        '`tlearn base-model import vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5` (or `tlearn base-model fetch` ' +
        'where the internet is reachable), point --weights at a tfjs model folder, or pass ' +
        '--weights random[:SEED] to use seeded random weights (features then only match other random ones)',
    );
  }
  return { kind: 'uri', uri: newest };
}
