/**
 * Labelled images and feature folders on a local disk: what `tlearn extract` reads and what
 * `tlearn fit` trains on. Labels follow the S3 layout rules exactly (they are derived with
 * `parseImageKey`), so a folder behaves the same uploaded or extracted locally:
 *
 * ```
 * DIR/{label}/{file}        label from the folder (nested folders stay part of the file name)
 * DIR/{label}.{n}.{ext}     Kaggle style, directly in a given folder: label up to the first '.'
 * ```
 *
 * A feature folder (written by `tlearn extract`) mirrors it: `OUT/{label}/{file}.npy`, plus
 * `OUT/features.json` (spec, dims, counts) and `OUT/errors.jsonl` (images that failed).
 */
import { type Dirent, promises as fs } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { NotFoundError, SpecMismatchError, ValidationError } from '../errors.ts';
import { featureDims, parseSpec } from '../model/spec.ts';
import { IMAGE_EXTENSIONS, isValidLabel, parseImageKey, type SkipReason } from '../storage/keys.ts';
import type { Matrix } from '../training/types.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import { parseJsonFile } from '../util/json-file.ts';
import { decodeNpy } from './npy.ts';

/** A labelled image file on disk. */
export interface LocalImage {
  /** Path as found (the input joined with the walked relative path). */
  path: string;
  label: string;
  /** File name under the label: `1.jpg`, `sub/1.jpg` (nested folders kept) or `cat.12.jpg` (Kaggle). */
  file: string;
}

/** Why a file found on disk is not used. */
export type LocalSkipReason = SkipReason | 'duplicate';

export interface LocalSkip {
  path: string;
  reason: LocalSkipReason;
  detail: string;
}

export interface LocalImageList {
  /** Sorted by label, then file (byte order), so runs are reproducible. */
  images: LocalImage[];
  skipped: LocalSkip[];
}

const toPosix = (p: string): string => p.split(sep).join('/');

const byLabelThenFile = (a: { label: string; file: string }, b: { label: string; file: string }): number =>
  a.label < b.label ? -1 : a.label > b.label ? 1 : a.file < b.file ? -1 : a.file > b.file ? 1 : 0;

async function statOrThrow(path: string) {
  try {
    return await fs.stat(path);
  } catch (err) {
    throw new NotFoundError(`no such file or folder: ${path}`, { cause: err });
  }
}

/**
 * Files under `root` as paths relative to it (posix separators), depth first, sorted. Hidden
 * folders (`.git`, `.tlearn`…) are reported as skipped instead of entered; symlinked folders are
 * followed once (a link cycle is not walked twice).
 */
async function walkFiles(root: string, skipped: LocalSkip[]): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = async (dir: string): Promise<void> => {
    const real = await fs.realpath(dir);
    if (seen.has(real)) return;
    seen.add(real);
    const entries: Dirent[] = await fs.readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const target = await fs.stat(path).catch(() => undefined);
        isDir = target?.isDirectory() ?? false;
        isFile = target?.isFile() ?? false;
      }
      if (isDir) {
        if (entry.name.startsWith('.')) {
          skipped.push({ path, reason: 'hidden-file', detail: `hidden folder '${entry.name}' not entered` });
          continue;
        }
        await visit(path);
      } else if (isFile) {
        out.push(toPosix(relative(root, path)));
      }
    }
  };
  await visit(root);
  return out;
}

/**
 * Walks input files and folders into labelled images, using the S3 layout's label rules.
 * - a folder: `DIR/{label}/…/{file}` or Kaggle-named files directly in it (`cat.12.jpg` → `cat`);
 * - a file: its Kaggle name if it has one, else its parent folder's name.
 * Hidden files, non-images, invalid labels and duplicates (same label and file twice) come back in
 * `skipped` with a reason, never as errors. A missing input throws NotFoundError.
 *
 * @example const { images, skipped } = await listLocalImages(['data/train']);
 */
export async function listLocalImages(inputs: readonly string[]): Promise<LocalImageList> {
  const skipped: LocalSkip[] = [];
  const images: LocalImage[] = [];
  const taken = new Map<string, string>();
  const add = (path: string, label: string, file: string): void => {
    const id = `${label}/${file}`;
    const first = taken.get(id);
    if (first !== undefined) {
      skipped.push({
        path,
        reason: 'duplicate',
        detail: `same label and file as ${first} ('${id}'); its features would overwrite each other`,
      });
      return;
    }
    taken.set(id, path);
    images.push({ path, label, file });
  };
  for (const input of inputs) {
    const st = await statOrThrow(input);
    if (st.isDirectory()) {
      for (const rel of await walkFiles(input, skipped)) {
        const path = join(input, rel);
        const parsed = parseImageKey(`datasets/local/${rel}`);
        if (parsed.ok) add(path, parsed.image.label, parsed.image.file);
        else skipped.push({ path, reason: parsed.reason, detail: parsed.detail });
      }
    } else {
      const name = basename(input);
      const kaggle = parseImageKey(`datasets/local/${name}`);
      if (kaggle.ok) {
        add(input, kaggle.image.label, kaggle.image.file);
        continue;
      }
      const parent = basename(dirname(resolve(input)));
      const inFolder = parseImageKey(`datasets/local/${parent}/${name}`);
      if (inFolder.ok) add(input, inFolder.image.label, inFolder.image.file);
      else skipped.push({ path: input, reason: inFolder.reason, detail: inFolder.detail });
    }
  }
  images.sort(byLabelThenFile);
  return { images, skipped };
}

/**
 * Image files among inputs, without labels (for prediction): files as given (any extension: the
 * decoder decides), folders walked for files with an image extension. Hidden files are skipped.
 */
export async function listImageFiles(
  inputs: readonly string[],
): Promise<{ files: string[]; skipped: LocalSkip[] }> {
  const skipped: LocalSkip[] = [];
  const files: string[] = [];
  for (const input of inputs) {
    const st = await statOrThrow(input);
    if (!st.isDirectory()) {
      files.push(input);
      continue;
    }
    for (const rel of await walkFiles(input, skipped)) {
      const path = join(input, rel);
      const name = rel.slice(rel.lastIndexOf('/') + 1);
      if (name.startsWith('.'))
        skipped.push({ path, reason: 'hidden-file', detail: `hidden file '${name}'` });
      else if (!IMAGE_EXTENSIONS.some((ext) => name.toLowerCase().endsWith(ext)))
        skipped.push({ path, reason: 'not-an-image', detail: `'${name}' has no image extension` });
      else files.push(path);
    }
  }
  return { files, skipped };
}

/** Name of the manifest `tlearn extract` writes next to the features. */
export const FEATURES_MANIFEST = 'features.json';
/** Plain-text alternative: the spec string on the first line. */
export const SPEC_TXT = 'spec.txt';
/** One JSON object per line for every image that could not be used. */
export const ERRORS_JSONL = 'errors.jsonl';

/** `features.json`: what a feature folder holds. */
export const FeaturesManifest = z.object({
  format: z.literal('tlearn-features'),
  version: z.literal(1),
  /** `specToString(spec)` of every `.npy` in the folder. */
  spec: z.string(),
  dims: z.number().int().positive(),
  backend: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** Counts of the last run. */
  lastRun: z
    .object({
      images: z.number().int(),
      written: z.number().int(),
      upToDate: z.number().int(),
      failed: z.number().int(),
      skipped: z.number().int(),
    })
    .optional(),
  /** `.npy` files per label after the last run. */
  labels: z.record(z.number().int()).optional(),
});
export type FeaturesManifest = z.infer<typeof FeaturesManifest>;

/**
 * Reads `features.json` (or `spec.txt`) of a feature folder: undefined when neither exists;
 * ValidationError when one exists but is malformed.
 */
export async function readFeaturesManifest(
  dir: string,
): Promise<{ spec: string; manifest?: FeaturesManifest } | undefined> {
  const manifestPath = join(dir, FEATURES_MANIFEST);
  const text = await fs.readFile(manifestPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (text !== undefined) {
    const manifest = parseJsonFile(text, FeaturesManifest, manifestPath, 'a tlearn features manifest');
    parseSpec(manifest.spec);
    return { spec: manifest.spec, manifest };
  }
  const specTxt = await fs.readFile(join(dir, SPEC_TXT), 'utf8').catch(() => undefined);
  if (specTxt === undefined) return undefined;
  const spec = specTxt.split('\n')[0]?.trim() ?? '';
  parseSpec(spec);
  return { spec };
}

/** Feature vectors of a folder as one dense matrix (what `tlearn fit` trains on). */
export interface FeatureDir {
  /** n rows of d float32 values, contiguous, in the order of `labels` and `files`. */
  X: Matrix;
  /** Label of each row. */
  labels: string[];
  /** Source of each row: `{label}/{file}` (the `.npy` path relative to the folder, without `.npy`). */
  files: string[];
  /** Spec string from `features.json`/`spec.txt`; undefined when the folder has neither. */
  spec: string | undefined;
  /** `.npy` files not used (outside a label folder, invalid label). */
  skipped: LocalSkip[];
}

/**
 * Reads every `{label}/**\/*.npy` under `dir` into one contiguous matrix, rows sorted by label then
 * file. All vectors must have the same length, and that length must match the spec's dims when the
 * folder records a spec. Throws NotFoundError when the folder has no features, ValidationError for
 * a malformed or odd-sized file (naming it), SpecMismatchError when dims and spec disagree.
 *
 * @example
 * const { X, labels, spec } = await readFeatureDir('features/');
 * // X.n rows of X.d values: X.data.subarray(i * X.d, (i + 1) * X.d) is row i, labelled labels[i]
 */
export async function readFeatureDir(dir: string, opts: { concurrency?: number } = {}): Promise<FeatureDir> {
  const st = await statOrThrow(dir);
  if (!st.isDirectory()) throw new ValidationError(`${dir} is not a folder of features`);
  const meta = await readFeaturesManifest(dir);
  const skipped: LocalSkip[] = [];
  const entries: { label: string; file: string; path: string }[] = [];
  for (const rel of await walkFiles(dir, skipped)) {
    if (!rel.endsWith('.npy')) continue;
    const slash = rel.indexOf('/');
    const path = join(dir, rel);
    const label = slash > 0 ? rel.slice(0, slash) : '';
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    if (slash < 0) {
      skipped.push({ path, reason: 'invalid-label', detail: 'not inside a label folder' });
    } else if (name.startsWith('.')) {
      skipped.push({ path, reason: 'hidden-file', detail: `hidden file '${name}'` });
    } else if (!isValidLabel(label)) {
      skipped.push({ path, reason: 'invalid-label', detail: `label '${label}' is not valid` });
    } else {
      entries.push({ label, file: rel.slice(0, -'.npy'.length), path });
    }
  }
  if (entries.length === 0)
    throw new NotFoundError(
      `no features under ${dir} (expected {label}/{file}.npy); run tlearn extract first`,
    );
  entries.sort(byLabelThenFile);
  const read = async (path: string): Promise<Float32Array> => {
    try {
      return decodeNpy(await fs.readFile(path)).data;
    } catch (err) {
      throw new ValidationError(`cannot read features ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const first = await read(entries[0]?.path ?? '');
  const d = first.length;
  if (d === 0) throw new ValidationError(`${entries[0]?.path} holds an empty vector`);
  if (meta) {
    const want = featureDims(parseSpec(meta.spec));
    if (want !== d)
      throw new SpecMismatchError(
        `${entries[0]?.path} has ${d} values but the folder's spec ${meta.spec} gives ${want}`,
      );
  }
  const n = entries.length;
  const data = new Float32Array(n * d);
  data.set(first, 0);
  await mapWithConcurrency(entries.slice(1), opts.concurrency ?? 16, async (entry, i) => {
    const v = await read(entry.path);
    if (v.length !== d)
      throw new ValidationError(
        `${entry.path} has ${v.length} values, other features have ${d}: the folder mixes feature specs`,
      );
    data.set(v, (i + 1) * d);
  });
  return {
    X: { data, n, d },
    labels: entries.map((e) => e.label),
    files: entries.map((e) => e.file),
    spec: meta?.spec,
    skipped,
  };
}
