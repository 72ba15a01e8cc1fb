/**
 * The S3 layout (docs/ARCHITECTURE.md "S3 layout"), in one place. Every function, the CLI, the
 * local stack and the tests derive keys here, never by string concatenation elsewhere.
 *
 * ```
 * datasets/{d}/{label}/{file}          training image (label from the folder)
 * datasets/{d}/{file}                  Kaggle style: label = file name up to the first '.'
 * features/{d}/{label}/{file}.npy      float32 feature vector (.npy v1.0)
 * features/{d}/{label}/{file}.error.json   why an image could not be used
 * models/{d}/{version}/model.json | report.json | report.html
 * models/{d}/current.json              promoted version pointer
 * ```
 */

import { z } from 'zod';

export const DATASETS_PREFIX = 'datasets/';
export const FEATURES_PREFIX = 'features/';
export const MODELS_PREFIX = 'models/';
export const BASE_MODELS_PREFIX = 'base-models/';
/** Copies of the console's large static files (lib/api/console-assets.ts). */
export const CONSOLE_ASSETS_PREFIX = 'console/';

/** Dataset names: lower-case letters, digits and '-', 1-63 chars, starting with a letter or digit. */
export const DATASET_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * The dataset name rule as a zod schema, with messages that say it: every schema that takes a
 * dataset name (API paths and bodies, queue messages, state machine inputs) uses this one.
 * Marked pure so that a bundle taking only `DATASET_NAME_RE` (the console's) leaves zod out.
 */
export const DatasetName = /* @__PURE__ */ (() =>
  z
    .string()
    .max(63, 'a dataset name has at most 63 characters')
    .regex(
      DATASET_NAME_RE,
      `a dataset name must match ${DATASET_NAME_RE} (lower-case letters, digits, '-')`,
    ))();

/** Extensions the extractor accepts (the decoder decides finally; this filters obvious non-images). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff'] as const;

/** Why a key was skipped instead of processed. */
export type SkipReason =
  | 'not-a-dataset-key'
  | 'invalid-dataset-name'
  | 'invalid-label'
  | 'hidden-file'
  | 'folder-marker'
  | 'not-an-image'
  | 'nested-too-deep'
  | 'key-too-long'
  | 'malformed-key';

/** A training image's place in the layout. */
export interface ImageRef {
  dataset: string;
  label: string;
  /** Everything after the label folder (or the file name, Kaggle style), verbatim. */
  file: string;
  /** The full S3 key `datasets/…`. */
  key: string;
}

export type ParsedImageKey =
  | { ok: true; image: ImageRef }
  | { ok: false; reason: SkipReason; detail: string };

/** Whether a string is a valid dataset name. */
export function isValidDatasetName(name: string): boolean {
  return DATASET_NAME_RE.test(name);
}

/** Whether a string is a valid label: 1-100 chars, no '/', not '.' or '..', no control chars. */
export function isValidLabel(label: string): boolean {
  return (
    label.length >= 1 &&
    label.length <= 100 &&
    !label.includes('/') &&
    label !== '.' &&
    label !== '..' &&
    ![...label].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === '\u007f')
  );
}

function hasImageExtension(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * Parses an (already URL-decoded) S3 key under `datasets/`. Never throws: keys that break the
 * rules come back with a reason, so one bad key never crashes a batch.
 *
 * @example parseImageKey('datasets/pets/cat/1.jpg') // { ok: true, image: { dataset: 'pets', label: 'cat', file: '1.jpg', … } }
 * @example parseImageKey('datasets/pets/cat.12.jpg') // label 'cat' (Kaggle style)
 */
export function parseImageKey(key: string): ParsedImageKey {
  // A lone UTF-16 surrogate cannot be UTF-8 encoded, so it can never name an S3 object.
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(key)) {
    return { ok: false, reason: 'malformed-key', detail: 'key is not valid Unicode (lone surrogate)' };
  }
  if (!key.startsWith(DATASETS_PREFIX))
    return { ok: false, reason: 'not-a-dataset-key', detail: `key does not start with '${DATASETS_PREFIX}'` };
  // S3 keys are at most 1024 bytes; the feature key adds 'features/' - 'datasets/' + '.error.json'.
  if (Buffer.byteLength(key, 'utf8') > 1024 - 11)
    return {
      ok: false,
      reason: 'key-too-long',
      detail: 'key leaves no room for its feature key (S3 limit 1024 bytes)',
    };
  const rest = key.slice(DATASETS_PREFIX.length);
  const parts = rest.split('/');
  const dataset = parts[0] ?? '';
  if (!isValidDatasetName(dataset)) {
    return {
      ok: false,
      reason: 'invalid-dataset-name',
      detail: `dataset '${dataset.slice(0, 80)}' must match ${DATASET_NAME_RE}`,
    };
  }
  if (key.endsWith('/')) return { ok: false, reason: 'folder-marker', detail: 'key is a folder marker' };
  const baseName = parts[parts.length - 1] ?? '';
  if (baseName.startsWith('.'))
    return { ok: false, reason: 'hidden-file', detail: `hidden file '${baseName}'` };
  if (!hasImageExtension(baseName)) {
    return {
      ok: false,
      reason: 'not-an-image',
      detail: `'${baseName}' has no image extension (${IMAGE_EXTENSIONS.join(' ')})`,
    };
  }
  if (parts.length === 2) {
    // Kaggle style: label is the file name up to the first '.'.
    const dot = baseName.indexOf('.');
    const label = baseName.slice(0, dot);
    if (!isValidLabel(label) || dot <= 0 || baseName.indexOf('.', dot + 1) < 0) {
      return {
        ok: false,
        reason: 'invalid-label',
        detail: `cannot take a label from '${baseName}': put it in a label folder or name it like 'cat.12.jpg'`,
      };
    }
    return { ok: true, image: { dataset, label, file: baseName, key } };
  }
  const label = parts[1] ?? '';
  if (!isValidLabel(label))
    return {
      ok: false,
      reason: 'invalid-label',
      detail: `label '${label.slice(0, 80)}' is not valid (1-100 chars, not '.' or '..')`,
    };
  // Nested folders below the label are kept verbatim as part of the file name.
  const file = parts.slice(2).join('/');
  if (parts.slice(2).some((p) => p === '' || p === '.' || p === '..')) {
    return { ok: false, reason: 'invalid-label', detail: `key has an empty, '.' or '..' path segment` };
  }
  return { ok: true, image: { dataset, label, file, key } };
}

/** Image key for a dataset, label and file (folder layout). */
export function imageKey(dataset: string, label: string, file: string): string {
  return `${DATASETS_PREFIX}${dataset}/${label}/${file}`;
}

/** `features/{d}/{label}/{file}.npy`: where an image's feature vector lives. */
export function featureKey(image: Pick<ImageRef, 'dataset' | 'label' | 'file'>): string {
  return `${FEATURES_PREFIX}${image.dataset}/${image.label}/${image.file}.npy`;
}

/** `features/{d}/{label}/{file}.error.json`: why an image could not be used. */
export function featureErrorKey(image: Pick<ImageRef, 'dataset' | 'label' | 'file'>): string {
  return `${FEATURES_PREFIX}${image.dataset}/${image.label}/${image.file}.error.json`;
}

/** Parsed feature-side key. */
export interface FeatureRef {
  dataset: string;
  label: string;
  file: string;
  kind: 'npy' | 'error';
}

/** Parses `features/{d}/{label}/{file}.npy|.error.json`; undefined for anything else. */
export function parseFeatureKey(key: string): FeatureRef | undefined {
  if (!key.startsWith(FEATURES_PREFIX)) return undefined;
  const parts = key.slice(FEATURES_PREFIX.length).split('/');
  if (parts.length < 3) return undefined;
  const [dataset = '', label = ''] = parts;
  const tail = parts.slice(2).join('/');
  if (tail.endsWith('.error.json'))
    return { dataset, label, file: tail.slice(0, -'.error.json'.length), kind: 'error' };
  if (tail.endsWith('.npy')) return { dataset, label, file: tail.slice(0, -'.npy'.length), kind: 'npy' };
  return undefined;
}

/** Prefix of all images of a dataset. */
export function datasetPrefix(dataset: string): string {
  return `${DATASETS_PREFIX}${dataset}/`;
}

/** Prefix of all features of a dataset. */
export function featuresPrefix(dataset: string): string {
  return `${FEATURES_PREFIX}${dataset}/`;
}

/** Prefix of all model versions of a dataset. */
export function modelsPrefix(dataset: string): string {
  return `${MODELS_PREFIX}${dataset}/`;
}

/** `models/{d}/{version}/{file}` */
export function modelFileKey(
  dataset: string,
  version: string,
  file: 'model.json' | 'report.json' | 'report.html' | 'quality.json',
): string {
  return `${MODELS_PREFIX}${dataset}/${version}/${file}`;
}

/** `models/{d}/current.json`: the promoted version pointer. */
export function currentModelKey(dataset: string): string {
  return `${MODELS_PREFIX}${dataset}/current.json`;
}

/** Model versions sort by time: `YYYYMMDDTHHMMSSZ-{shortid}`. */
export const MODEL_VERSION_RE = /^\d{8}T\d{6}Z-[a-z0-9]{6,12}$/;

/** Makes a new model version id from a time and a random short id. */
export function newModelVersion(now: Date, shortId: string): string {
  const iso = now.toISOString(); // 2026-11-28T10:34:18.123Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return `${stamp}-${shortId}`;
}

/** Captured production predictions (lib/capture/captures.ts): image + `.json`, lifecycle-expired. */
export const CAPTURES_PREFIX = 'captures/';
/** Per-prediction monitoring records and their daily rollups (lib/capture/monitoring.ts). */
export const MONITORING_PREFIX = 'monitoring/';
/** Per-dataset settings documents (lib/capture/settings.ts). */
export const SETTINGS_PREFIX = 'settings/';
/** Images to rank for labelling: features extracted, never trained on (lib/capture/suggestions.ts). */
export const UNLABELLED_PREFIX = 'unlabelled/';

/** `settings/{d}/settings.json`: a dataset's settings (capture policy). */
export function datasetSettingsKey(dataset: string): string {
  return `${SETTINGS_PREFIX}${dataset}/settings.json`;
}

/** `captures/{d}/`: every capture of a dataset. */
export function capturesPrefix(dataset: string): string {
  return `${CAPTURES_PREFIX}${dataset}/`;
}

/** `monitoring/{d}/`: every monitoring record and rollup of a dataset. */
export function monitoringPrefix(dataset: string): string {
  return `${MONITORING_PREFIX}${dataset}/`;
}

/** `unlabelled/{d}/`: a dataset's pool of images to label. */
export function unlabelledPrefix(dataset: string): string {
  return `${UNLABELLED_PREFIX}${dataset}/`;
}

/** Feature vectors of the unlabelled pool: `unlabelled-features/{d}/{file}.npy` (never trained on). */
export const POOL_FEATURES_PREFIX = 'unlabelled-features/';

/** `unlabelled-features/{d}/`: the pool's features of a dataset. */
export function poolFeaturesPrefix(dataset: string): string {
  return `${POOL_FEATURES_PREFIX}${dataset}/`;
}

/**
 * Prefixes whose object events go to the ingest queue (the CDK bucket notifications and the local
 * stack's): training images and the unlabelled pool.
 */
export const INGEST_PREFIXES: readonly string[] = [DATASETS_PREFIX, UNLABELLED_PREFIX];

/** Prefix of the training locks (lib/pipeline/training-lock.ts; IAM grants are scoped to it). */
export const LOCKS_PREFIX = 'locks/';

/** `locks/{d}/training.json` */
export function trainingLockKey(dataset: string): string {
  return `${LOCKS_PREFIX}${dataset}/training.json`;
}

/** Root of every batch (lib/batch/layout.ts holds the shapes of its objects). */

export const BATCHES_PREFIX = 'batches/';

/** A batch id: `YYYYMMDDTHHMMSSZ-{shortid}` (sorts by time). */
export const BATCH_ID_RE = /^\d{8}T\d{6}Z-[a-z0-9]{6,12}$/;

/** `batches/{d}/{id}/`. */
export function batchPrefix(dataset: string, id: string): string {
  return `${BATCHES_PREFIX}${dataset}/${id}/`;
}

/** `batches/{d}/{id}/input/`: where a client uploads the images of a batch. */
export function batchInputPrefix(dataset: string, id: string): string {
  return `${batchPrefix(dataset, id)}input/`;
}

/** The keys of one batch's objects. */
export function batchKeys(dataset: string, id: string) {
  const p = batchPrefix(dataset, id);
  return {
    manifest: `${p}manifest.json`,
    partsPrefix: `${p}parts/`,
    part: (n: number) => `${p}parts/${String(n).padStart(5, '0')}.jsonl`,
    jsonl: `${p}results.jsonl`,
    csv: `${p}results.csv`,
    summary: `${p}summary.json`,
    failed: `${p}failed.json`,
  };
}

/** The chunk number of a part key, or undefined for anything else. */
export function partNumber(key: string): number | undefined {
  const m = /\/parts\/(\d{5})\.jsonl$/.exec(key);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/**
 * The dataset and batch id of a batch's upload prefix (`batches/{d}/{id}/input/`), or undefined
 * for any other string.
 */
export function parseBatchInputPrefix(prefix: string): { dataset: string; id: string } | undefined {
  if (!prefix.startsWith(BATCHES_PREFIX) || !prefix.endsWith('/input/')) return undefined;
  const [dataset, id, ...rest] = prefix.slice(BATCHES_PREFIX.length, -'/input/'.length).split('/');
  if (rest.length > 0 || dataset === undefined || id === undefined) return undefined;
  return DATASET_NAME_RE.test(dataset) && BATCH_ID_RE.test(id) ? { dataset, id } : undefined;
}

/**
 * Every top-level prefix of the bucket's layout (the inbox aside, a user setting): what an inbox
 * may not overlap (lib/batch/settings.ts) and what the functions' S3 grants are scoped to
 * (infra/nag.ts).
 */
export const LAYOUT_PREFIXES: readonly string[] = [
  DATASETS_PREFIX,
  FEATURES_PREFIX,
  MODELS_PREFIX,
  BASE_MODELS_PREFIX,
  LOCKS_PREFIX,
  BATCHES_PREFIX,
  CONSOLE_ASSETS_PREFIX,
  SETTINGS_PREFIX,
  CAPTURES_PREFIX,
  MONITORING_PREFIX,
  UNLABELLED_PREFIX,
  POOL_FEATURES_PREFIX,
];
