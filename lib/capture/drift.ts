/**
 * The drift metric behind the CloudWatch alarm: on a schedule (no server), the PSI of each
 * dataset's predicted-label mix over a rolling window against each served version's held-out set,
 * from the monitoring records' keys (LIST calls only) and the versions' report.json. The largest
 * PSI of the run is what the function publishes; the alarm fires above {@link DRIFT_ALERT_PSI},
 * the threshold `GET /datasets/{d}/monitoring` answers with (docs/ARCHITECTURE.md "Closing the loop").
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { defaultMemoryMb } from '../functions.ts';
import { MONITORING_PREFIX, modelFileKey } from '../storage/keys.ts';
import { getJsonIfExists, listFolders } from '../storage/s3.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';
import {
  baselineFromReport,
  DRIFT_ALERT_PSI,
  type DriftBaseline,
  populationStabilityIndex,
  rollUpWindow,
  type VersionDay,
} from './monitoring.ts';

export { DRIFT_ALERT_PSI };

/** CloudWatch metric (namespace `Tlearn`) of the largest PSI of a run; the alarm watches it. */
export const DRIFT_METRIC_NAME = 'PredictionDriftPsi';
/** The function that publishes it (`functions/drift-metric/`; Powertools' `service` dimension). */
export const DRIFT_FUNCTION = 'drift-metric';

/**
 * The schedule and its window, shared by the CDK app and the local stack.
 * - `everyMinutes`: how often the function runs (the alarm's period is the same);
 * - `windowHours`: the rolling window of predictions each run scores (a day: a drift that lasts
 *   shows, a burst of one class in one hour does not page anyone);
 * - `minPredictions`: a version with fewer predictions in the window is not scored (the PSI of
 *   a handful of predictions says nothing);
 * - memory and timeout of the function (the report of a large dataset is tens of MB of JSON).
 */
export const DRIFT_SETTINGS = {
  everyMinutes: 60,
  windowHours: 24,
  minPredictions: 30,
  memorySize: defaultMemoryMb('drift-metric'),
  timeoutSeconds: 300,
} as const;

/** Datasets scored at once. */
const DATASET_CONCURRENCY = 4;

/** One version's drift over the window. */
export interface VersionDrift {
  dataset: string;
  version: string;
  predictions: number;
  labelPsi: number;
}

/** A version in the window that was not scored, and why. */
export interface SkippedVersion {
  dataset: string;
  version: string;
  predictions: number;
  reason: 'few-predictions' | 'no-baseline';
}

/** What one run measured. */
export interface DriftMeasurement {
  from: string;
  to: string;
  datasets: number;
  versions: VersionDrift[];
  skipped: SkippedVersion[];
  /** The largest drift (what is published), undefined when no version could be scored. */
  largest: VersionDrift | undefined;
  threshold: number;
}

/**
 * Scores one dataset's versions over the window: PSI of the predicted-label counts against each
 * version's held-out shares; versions with fewer than `minPredictions`, or without a baseline, are
 * skipped with their reason.
 */
export function driftOfWindow(
  dataset: string,
  stats: Readonly<Record<string, VersionDay>>,
  baselines: Readonly<Record<string, DriftBaseline | undefined>>,
  minPredictions: number,
): { versions: VersionDrift[]; skipped: SkippedVersion[] } {
  const versions: VersionDrift[] = [];
  const skipped: SkippedVersion[] = [];
  for (const [version, s] of Object.entries(stats)) {
    const base = baselines[version];
    if (s.predictions < minPredictions) {
      skipped.push({ dataset, version, predictions: s.predictions, reason: 'few-predictions' });
    } else if (base === undefined) {
      skipped.push({ dataset, version, predictions: s.predictions, reason: 'no-baseline' });
    } else {
      versions.push({
        dataset,
        version,
        predictions: s.predictions,
        labelPsi: populationStabilityIndex(s.labels, base.labelShare),
      });
    }
  }
  return { versions, skipped };
}

/** The largest drift of a run (ties: the version with more predictions). */
export function largestDrift(versions: readonly VersionDrift[]): VersionDrift | undefined {
  let best: VersionDrift | undefined;
  for (const v of versions) {
    if (
      best === undefined ||
      v.labelPsi > best.labelPsi ||
      (v.labelPsi === best.labelPsi && v.predictions > best.predictions)
    ) {
      best = v;
    }
  }
  return best;
}

/** What the baseline needs of a report.json (the rest of the document is not validated here). */
const ReportBaseline = z.object({
  classes: z.array(z.string()),
  confusionMatrix: z.array(z.array(z.number())).nullable(),
});

/** A version's held-out baseline from its report.json (undefined: no report, or no holdout). */
export async function readBaseline(
  s3: S3Client,
  bucket: string,
  dataset: string,
  version: string,
): Promise<DriftBaseline | undefined> {
  const report = await getJsonIfExists(
    s3,
    bucket,
    modelFileKey(dataset, version, 'report.json'),
    ReportBaseline,
  );
  return report ? baselineFromReport(report) : undefined;
}

/**
 * One run: every dataset with monitoring records, each version seen in the last
 * `windowHours` scored against its held-out set.
 *
 * @example const m = await measureDrift({ s3, bucket, log }, { now: new Date() }); m.largest?.labelPsi
 */
export async function measureDrift(
  deps: { s3: S3Client; bucket: string; log: Log },
  opts: { now: Date; windowHours?: number; minPredictions?: number },
): Promise<DriftMeasurement> {
  const windowHours = opts.windowHours ?? DRIFT_SETTINGS.windowHours;
  const minPredictions = opts.minPredictions ?? DRIFT_SETTINGS.minPredictions;
  const to = opts.now;
  const from = new Date(to.getTime() - windowHours * 3_600_000);
  const datasets = await listFolders(deps.s3, deps.bucket, MONITORING_PREFIX);
  const perDataset = await mapWithConcurrency(datasets, DATASET_CONCURRENCY, async (dataset) => {
    const stats = await rollUpWindow(deps.s3, deps.bucket, dataset, { from, to });
    const baselines: Record<string, DriftBaseline | undefined> = {};
    for (const [version, s] of Object.entries(stats)) {
      if (s.predictions < minPredictions) continue;
      try {
        baselines[version] = await readBaseline(deps.s3, deps.bucket, dataset, version);
      } catch (err) {
        // A report that does not parse gives no baseline (as in GET /datasets/{d}/monitoring).
        deps.log.warn('no drift baseline: report.json unreadable', { dataset, version, error: String(err) });
      }
    }
    return driftOfWindow(dataset, stats, baselines, minPredictions);
  });
  const versions = perDataset.flatMap((d) => d.versions);
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    datasets: datasets.length,
    versions,
    skipped: perDataset.flatMap((d) => d.skipped),
    largest: largestDrift(versions),
    threshold: DRIFT_ALERT_PSI,
  };
}

/**
 * The EventBridge scheduled event that starts a run (the local stack sends the same shape); its
 * `time` is the end of the window, so a late or retried delivery scores the hour it was meant for.
 */
export const DriftScheduleEvent = z.object({
  'detail-type': z.literal('Scheduled Event'),
  source: z.literal('aws.events'),
  time: z.string().datetime(),
});
export type DriftScheduleEvent = z.infer<typeof DriftScheduleEvent>;

/** A scheduled event for a time (what the local stack's schedule sends). */
export function driftScheduleEvent(
  at: Date,
  region: string,
  account: string,
): DriftScheduleEvent & Record<string, unknown> {
  return {
    version: '0',
    id: `local-${at.getTime()}`,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account,
    time: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [],
    detail: {},
  };
}
