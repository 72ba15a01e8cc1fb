/**
 * Per-dataset settings (`settings/{d}/settings.json`): today the capture policy of production
 * predictions (docs/ARCHITECTURE.md "Closing the loop"). Read on the prediction path through a
 * short per-process cache, so a prediction costs no extra S3 read while the cache is warm.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { datasetSettingsKey } from '../storage/keys.ts';
import { getJsonIfExists, putJson } from '../storage/s3.ts';

const Rate = z.number().min(0, 'must be from 0 to 1').max(1, 'must be from 0 to 1');

/** What share of predictions is kept for review. */
export const CapturePolicy = z
  .object({
    /** Share of all predictions captured at random (0 = none, 1 = every one). */
    sample: Rate.default(0),
    /** Every prediction whose top probability is below this is captured (null: none by confidence). */
    belowConfidence: Rate.nullable().default(null),
  })
  .strict();
export type CapturePolicy = z.infer<typeof CapturePolicy>;

/** The settings document; unknown fields are refused so a typo is a 400, not a silent no-op. */
export const DatasetSettings = z
  .object({
    capture: CapturePolicy.default({}),
    /** Whether each prediction writes a monitoring record (lib/capture/monitoring.ts). */
    monitoring: z.boolean().default(true),
  })
  .strict();
export type DatasetSettings = z.infer<typeof DatasetSettings>;

/** A dataset without a settings document captures nothing. */
export const DEFAULT_SETTINGS: DatasetSettings = {
  capture: { sample: 0, belowConfidence: null },
  monitoring: true,
};

/** How long a process trusts a settings document it read (a change reaches every container within this). */
export const SETTINGS_CACHE_MS = 30_000;

/** Reads a dataset's settings (the defaults when none were written). */
export async function readDatasetSettings(
  s3: S3Client,
  bucket: string,
  dataset: string,
): Promise<DatasetSettings> {
  return (
    (await getJsonIfExists(s3, bucket, datasetSettingsKey(dataset), DatasetSettings)) ?? DEFAULT_SETTINGS
  );
}

/** Writes a dataset's settings whole (already validated by {@link DatasetSettings}). */
export async function writeDatasetSettings(
  s3: S3Client,
  bucket: string,
  dataset: string,
  settings: DatasetSettings,
): Promise<void> {
  await putJson(s3, bucket, datasetSettingsKey(dataset), settings);
}

/** A per-process cache of settings documents (one per dataset, {@link SETTINGS_CACHE_MS}). */
export interface SettingsCache {
  get(dataset: string): Promise<DatasetSettings>;
  /** Forgets a dataset's entry (after this process wrote it). */
  invalidate(dataset: string): void;
}

/** Creates a {@link SettingsCache} over the bucket. */
export function createSettingsCache(
  s3: S3Client,
  bucket: string,
  opts: { ttlMs?: number; now?: () => number } = {},
): SettingsCache {
  const ttl = opts.ttlMs ?? SETTINGS_CACHE_MS;
  const now = opts.now ?? Date.now;
  const entries = new Map<string, { at: number; value: Promise<DatasetSettings> }>();
  return {
    get(dataset) {
      const hit = entries.get(dataset);
      if (hit && now() - hit.at < ttl) return hit.value;
      const value = readDatasetSettings(s3, bucket, dataset);
      entries.set(dataset, { at: now(), value });
      // A failed read is not cached: the next prediction asks again.
      value.catch(() => entries.delete(dataset));
      return value;
    },
    invalidate(dataset) {
      entries.delete(dataset);
    },
  };
}
