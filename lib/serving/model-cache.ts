/**
 * Per-dataset cache of the promoted classifier head, so a prediction costs one small S3 HEAD at
 * most (none within the refresh interval) instead of reading model.json every time.
 *
 * - Freshness: `current.json` is checked at most every `refreshSeconds` (0 = every request) by a
 *   HEAD; only when its ETag changed is it read again, and only when the version changed is the
 *   new model.json read. A newly promoted model is served without a restart.
 * - Atomic swap: an entry is replaced whole, after the new model.json parsed and its shapes were
 *   checked, so a request never sees a half-loaded model.
 * - One load per dataset at a time: concurrent requests share the same in-flight promise.
 * - Spec guard: a model trained on another feature spec than the extractor's is refused (409).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { SpecMismatchError } from '../errors.ts';
import { isRandomWeights } from '../model/spec.ts';
import { currentModelKey, modelFileKey } from '../storage/keys.ts';
import { headObject } from '../storage/s3.ts';
import type { Thresholds } from '../training/thresholds.ts';
import type { Head } from '../training/types.ts';
import { type Log, silentLog } from '../util/log.ts';
import { headFromModelFile, missingModelError, readCurrentPointer, readModelFile } from './store.ts';

/**
 * Reads one model version (model.json) into a {@link LoadedModel}: what the cache serves, and what
 * a batch (lib/batch/) pins for all of its rows.
 */
export async function loadModelVersion(
  s3: S3Client,
  bucket: string,
  dataset: string,
  version: string,
  at: { promotedAt: string; loadedAt: string },
): Promise<LoadedModel> {
  const doc = await readModelFile(s3, bucket, dataset, version);
  const head = headFromModelFile(doc, modelFileKey(dataset, version, 'model.json'));
  return Object.freeze({
    dataset,
    version,
    head,
    spec: doc.spec,
    randomWeights: doc.randomWeights || isRandomWeights(doc.spec),
    trainedAt: doc.trainedAt,
    ...(doc.thresholds ? { thresholds: doc.thresholds } : {}),
    ...at,
  });
}

/** A promoted model, fully loaded. Immutable once built. */
export interface LoadedModel {
  readonly dataset: string;
  readonly version: string;
  readonly head: Head;
  readonly spec: string;
  readonly randomWeights: boolean;
  readonly trainedAt: string;
  /** Per-class confidence thresholds (`?threshold=auto`), when the training had a holdout. */
  readonly thresholds?: Thresholds;
  readonly promotedAt: string;
  /** When this process loaded it (ISO-8601). */
  readonly loadedAt: string;
}

/** One line of `/health`'s cache state. */
export interface CachedModelState {
  dataset: string;
  version: string;
  spec: string;
  loadedAt: string;
  /** When current.json was last checked (ISO-8601). */
  checkedAt: string;
}

export interface ModelCacheOptions {
  s3: S3Client;
  bucket: string;
  /** Minimum seconds between checks of current.json per dataset (0 = check on every request). */
  refreshSeconds: number;
  /** Datasets kept; the least recently used is dropped beyond it. @default 32 */
  maxEntries?: number;
  log?: Log;
  /** Clock in ms (tests). @default Date.now */
  now?: () => number;
}

/** The cache the API's prediction route reads through. */
export interface ModelCache {
  /**
   * The promoted model of a dataset, checked against the extractor's spec.
   * Throws NotFoundError (unknown dataset), ConflictError `NoPromotedModel` (nothing promoted yet),
   * SpecMismatchError (model of another spec), or a 500 for a broken promotion.
   */
  get(dataset: string, expectedSpec: string): Promise<LoadedModel>;
  /** What is loaded, for /health. */
  state(): CachedModelState[];
}

interface Entry {
  model: LoadedModel;
  pointerEtag: string;
  checkedAt: number;
}

/**
 * Creates a model cache over the bucket.
 *
 * @example
 * const cache = createModelCache({ s3, bucket, refreshSeconds: 5 });
 * const model = await cache.get('pets', extractor.specId);
 * const probs = predictProba(model.head, features);
 */
export function createModelCache(opts: ModelCacheOptions): ModelCache {
  const { s3, bucket } = opts;
  const log = opts.log ?? silentLog;
  const now = opts.now ?? Date.now;
  const refreshMs = Math.max(0, opts.refreshSeconds) * 1000;
  const maxEntries = Math.max(1, opts.maxEntries ?? 32);
  const entries = new Map<string, Entry>();
  const inflight = new Map<string, Promise<LoadedModel>>();

  function remember(dataset: string, entry: Entry): void {
    // Map keeps insertion order: re-inserting marks the dataset as most recently used.
    entries.delete(dataset);
    entries.set(dataset, entry);
    while (entries.size > maxEntries) {
      const oldest = entries.keys().next().value;
      if (oldest === undefined) break;
      entries.delete(oldest);
    }
  }

  async function refresh(dataset: string, previous: Entry | undefined): Promise<LoadedModel> {
    const checkedAt = now();
    if (previous) {
      // Cheap path: the pointer did not change since the last check.
      const head = await headObject(s3, bucket, currentModelKey(dataset));
      if (head && head.etag === previous.pointerEtag) {
        remember(dataset, { ...previous, checkedAt });
        return previous.model;
      }
    }
    const current = await readCurrentPointer(s3, bucket, dataset);
    if (current === undefined) {
      entries.delete(dataset);
      throw await missingModelError(s3, bucket, dataset);
    }
    const { pointer, etag } = current;
    if (previous && previous.model.version === pointer.version) {
      remember(dataset, { ...previous, pointerEtag: etag, checkedAt });
      return previous.model;
    }
    const model = await loadModelVersion(s3, bucket, dataset, pointer.version, {
      promotedAt: pointer.promotedAt,
      loadedAt: new Date(now()).toISOString(),
    });
    const { head } = model;
    remember(dataset, { model, pointerEtag: etag, checkedAt });
    log.info('model loaded', {
      dataset,
      version: model.version,
      previousVersion: previous?.model.version,
      classes: head.classes.length,
    });
    return model;
  }

  function checkSpec(model: LoadedModel, expectedSpec: string): LoadedModel {
    if (model.spec !== expectedSpec) {
      throw new SpecMismatchError(
        `the promoted model ${model.version} of dataset '${model.dataset}' was trained on features of spec '${model.spec}', but this API extracts '${expectedSpec}'; re-extract the dataset's features with this base model and train again (POST /datasets/${model.dataset}/trainings)`,
      );
    }
    return model;
  }

  return {
    async get(dataset, expectedSpec) {
      const entry = entries.get(dataset);
      if (entry && now() - entry.checkedAt < refreshMs) {
        remember(dataset, entry); // a hit makes it the most recently used
        return checkSpec(entry.model, expectedSpec);
      }
      let pending = inflight.get(dataset);
      if (pending === undefined) {
        pending = refresh(dataset, entry).finally(() => inflight.delete(dataset));
        inflight.set(dataset, pending);
      }
      return checkSpec(await pending, expectedSpec);
    },
    state() {
      return [...entries.values()].map((e) => ({
        dataset: e.model.dataset,
        version: e.model.version,
        spec: e.model.spec,
        loadedAt: e.model.loadedAt,
        checkedAt: new Date(e.checkedAt).toISOString(),
      }));
    },
  };
}
