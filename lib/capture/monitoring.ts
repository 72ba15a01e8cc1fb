/**
 * Prediction monitoring without a server: each prediction writes one empty object whose key holds
 * the record (`monitoring/{d}/records/{day}/{version}/{hhmmss}-{rand}~{confidence}~{abstained}~{label}`),
 * so a day's statistics come from LIST calls alone (1,000 records a call), never a GET per record.
 * A day that is over is rolled up once into `monitoring/{d}/rollups/{day}.json` (written on the
 * first read after midnight UTC, `If-None-Match`), so a 30-day view is ~30 GETs plus today's listing.
 * Drift compares a version's predictions with its own held-out set (report.json).
 * See docs/ARCHITECTURE.md "Closing the loop".
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { monitoringPrefix } from '../storage/keys.ts';
import { getJsonIfExists, isConditionFailed, listObjects, putObject } from '../storage/s3.ts';

/** Confidence histogram bins: [0, 0.1), [0.1, 0.2) … [0.9, 1]. */
export const CONFIDENCE_BINS = 10;
/** Drift score above which the console (and the CloudWatch alarm) flags a version. */
export const DRIFT_ALERT_PSI = 0.25;
/** Probability floor for PSI so a class absent on one side gives a large, finite term. */
const PSI_EPSILON = 1e-4;

/** One served prediction, as monitoring keeps it. */
export interface PredictionRecord {
  version: string;
  label: string;
  confidence: number;
  abstained: boolean;
  at: Date;
}

const day = (at: Date) => at.toISOString().slice(0, 10);

function recordsPrefix(dataset: string, d: string): string {
  return `${monitoringPrefix(dataset)}records/${d}/`;
}

function rollupKey(dataset: string, d: string): string {
  return `${monitoringPrefix(dataset)}rollups/${d}.json`;
}

/** The record's object key: everything is in the name (the label last, URI-encoded). */
export function recordKey(dataset: string, r: PredictionRecord): string {
  const t = r.at.toISOString().slice(11, 19).replace(/:/g, '');
  const rand = randomBytes(5).toString('hex');
  const conf = Math.round(Math.min(1, Math.max(0, r.confidence)) * 10_000);
  return `${recordsPrefix(dataset, day(r.at))}${r.version}/${t}-${rand}~${conf}~${r.abstained ? 1 : 0}~${encodeURIComponent(r.label)}`;
}

/** Parses a record key back (undefined for anything else under the prefix). */
export function parseRecordKey(key: string): Omit<PredictionRecord, 'at'> | undefined {
  const parts = key.split('/');
  const name = parts[parts.length - 1] ?? '';
  const version = parts[parts.length - 2] ?? '';
  const m = /^\d{6}-[0-9a-f]{10}~(\d{1,5})~([01])~(.+)$/.exec(name);
  if (!m || version === '') return undefined;
  try {
    return {
      version,
      confidence: Number(m[1]) / 10_000,
      abstained: m[2] === '1',
      label: decodeURIComponent(m[3] ?? ''),
    };
  } catch {
    return undefined;
  }
}

/** Writes one prediction's record (an empty object). */
export async function recordPrediction(
  s3: S3Client,
  bucket: string,
  dataset: string,
  record: PredictionRecord,
): Promise<void> {
  await putObject(s3, bucket, recordKey(dataset, record), new Uint8Array(0));
}

/** One model version's predictions on one day. */
export const VersionDay = z.object({
  predictions: z.number().int().nonnegative(),
  abstained: z.number().int().nonnegative(),
  /** Predicted (top) label → count. */
  labels: z.record(z.number().int().nonnegative()),
  /** Counts per confidence bin ({@link CONFIDENCE_BINS}). */
  confidence: z.array(z.number().int().nonnegative()).length(CONFIDENCE_BINS),
  confidenceSum: z.number().nonnegative(),
});
export type VersionDay = z.infer<typeof VersionDay>;

/** A day's rollup: version → its statistics. */
export const DayRollup = z.object({
  day: z.string(),
  versions: z.record(VersionDay),
});
export type DayRollup = z.infer<typeof DayRollup>;

function emptyVersionDay(): VersionDay {
  return {
    predictions: 0,
    abstained: 0,
    labels: {},
    confidence: Array(CONFIDENCE_BINS).fill(0),
    confidenceSum: 0,
  };
}

function add(stats: VersionDay, r: Omit<PredictionRecord, 'at' | 'version'>): void {
  stats.predictions += 1;
  if (r.abstained) stats.abstained += 1;
  stats.labels[r.label] = (stats.labels[r.label] ?? 0) + 1;
  const bin = Math.min(CONFIDENCE_BINS - 1, Math.floor(r.confidence * CONFIDENCE_BINS));
  stats.confidence[bin] = (stats.confidence[bin] ?? 0) + 1;
  stats.confidenceSum += r.confidence;
}

/** Rolls a day up from its records' keys (LIST calls only). */
export async function rollUpDay(
  s3: S3Client,
  bucket: string,
  dataset: string,
  d: string,
): Promise<DayRollup> {
  const versions: Record<string, VersionDay> = {};
  await addDayRecords(s3, bucket, dataset, d, versions);
  return { day: d, versions };
}

/** Adds the records of day `d` (those `keep` accepts) to `versions`, per version. */
async function addDayRecords(
  s3: S3Client,
  bucket: string,
  dataset: string,
  d: string,
  versions: Record<string, VersionDay>,
  keep: (key: string) => boolean = () => true,
): Promise<void> {
  for await (const o of listObjects(s3, bucket, recordsPrefix(dataset, d))) {
    if (!keep(o.key)) continue;
    const r = parseRecordKey(o.key);
    if (!r) continue;
    const stats = versions[r.version] ?? emptyVersionDay();
    versions[r.version] = stats;
    add(stats, r);
  }
}

/**
 * Statistics per version of the records from `from` to `to`, both included, at second precision
 * (the records' names hold their time to the second, so a record of `to`'s own second counts):
 * what a rolling window, e.g. the last 24 hours, needs. LIST calls only, over the day
 * folders the window touches.
 */
export async function rollUpWindow(
  s3: S3Client,
  bucket: string,
  dataset: string,
  window: { from: Date; to: Date },
): Promise<Record<string, VersionDay>> {
  const versions: Record<string, VersionDay> = {};
  const first = day(window.from);
  const last = day(window.to);
  const days: string[] = [];
  for (let t = Date.parse(`${first}T00:00:00Z`); day(new Date(t)) <= last; t += 86_400_000) {
    days.push(day(new Date(t)));
  }
  for (const d of days) {
    await addDayRecords(s3, bucket, dataset, d, versions, (key) => {
      const at = recordTime(key, d);
      return at !== undefined && at >= window.from.getTime() && at <= window.to.getTime();
    });
  }
  return versions;
}

/** A record's time (ms) from its day folder and the `hhmmss` its name starts with. */
export function recordTime(key: string, d: string): number | undefined {
  const m = /\/(\d{2})(\d{2})(\d{2})-[0-9a-f]{10}~[^/]*$/.exec(key);
  if (!m) return undefined;
  const t = Date.parse(`${d}T${m[1]}:${m[2]}:${m[3]}Z`);
  return Number.isNaN(t) ? undefined : t;
}

/** A day's statistics: its stored rollup, else from its records (stored when the day is over). */
export async function readDay(
  s3: S3Client,
  bucket: string,
  dataset: string,
  d: string,
  today: string,
): Promise<DayRollup> {
  if (d < today) {
    const stored = await getJsonIfExists(s3, bucket, rollupKey(dataset, d), DayRollup);
    if (stored) return stored;
  }
  const rollup = await rollUpDay(s3, bucket, dataset, d);
  if (d < today && Object.keys(rollup.versions).length > 0) {
    try {
      await putObject(s3, bucket, rollupKey(dataset, d), `${JSON.stringify(rollup)}\n`, {
        contentType: 'application/json',
        ifNoneMatch: '*',
      });
    } catch (err) {
      // Another reader stored the same rollup first.
      if (!isConditionFailed(err)) throw err;
    }
  }
  return rollup;
}

/** What a version's held-out set looked like (the reference for drift). */
export interface DriftBaseline {
  /** Predicted label → share of the held-out set. */
  labelShare: Record<string, number>;
  /** Mean top probability on the held-out set, when the report has its predictions. */
  meanConfidence: number | null;
}

/**
 * The baseline from a report: predicted-label shares from the confusion matrix's columns, the
 * mean top probability from the held-out predictions when present.
 */
export function baselineFromReport(report: {
  classes: readonly string[];
  confusionMatrix: readonly (readonly number[])[] | null;
  predictions?: ReadonlyArray<{ probabilities: readonly number[] }> | undefined;
}): DriftBaseline | undefined {
  const cm = report.confusionMatrix;
  if (!cm) return undefined;
  const totals = report.classes.map((_, j) => cm.reduce((s, row) => s + (row[j] ?? 0), 0));
  const n = totals.reduce((a, b) => a + b, 0);
  if (n === 0) return undefined;
  const labelShare = Object.fromEntries(report.classes.map((c, j) => [c, (totals[j] ?? 0) / n]));
  const preds = report.predictions ?? [];
  const meanConfidence =
    preds.length > 0 ? preds.reduce((s, p) => s + Math.max(...p.probabilities), 0) / preds.length : null;
  return { labelShare, meanConfidence };
}

/**
 * Population stability index of predicted-label shares against the baseline:
 * Σ (a − e) · ln(a / e), shares floored at 1e-4. Rule of thumb: < 0.1 stable, 0.1-0.25 moving,
 * > 0.25 drifted.
 */
export function populationStabilityIndex(
  actual: Record<string, number>,
  expected: Record<string, number>,
): number {
  const labels = new Set([...Object.keys(actual), ...Object.keys(expected)]);
  const total = Object.values(actual).reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let psi = 0;
  for (const l of labels) {
    const a = Math.max(PSI_EPSILON, (actual[l] ?? 0) / total);
    const e = Math.max(PSI_EPSILON, expected[l] ?? 0);
    psi += (a - e) * Math.log(a / e);
  }
  return psi;
}

/** One version over the window, with drift against its held-out set. */
export interface VersionSummary extends VersionDay {
  version: string;
  abstainRate: number;
  meanConfidence: number | null;
  drift: {
    /** PSI of predicted-label shares vs the held-out set (null without a baseline). */
    labelPsi: number | null;
    /** Mean top probability served minus on the held-out set. */
    meanConfidenceShift: number | null;
    /** PSI above {@link DRIFT_ALERT_PSI}. */
    alert: boolean;
    /** {@link DRIFT_ALERT_PSI}, so a client needs no copy of it. */
    threshold: number;
  };
  /** The same statistics day by day (days without predictions are left out). */
  days: Array<VersionDay & { day: string; labelPsi: number | null }>;
}

function merge(into: VersionDay, from: VersionDay): void {
  into.predictions += from.predictions;
  into.abstained += from.abstained;
  for (const [l, c] of Object.entries(from.labels)) into.labels[l] = (into.labels[l] ?? 0) + c;
  from.confidence.forEach((c, i) => {
    into.confidence[i] = (into.confidence[i] ?? 0) + c;
  });
  into.confidenceSum += from.confidenceSum;
}

/** The days of a window ending today (UTC), oldest first. */
export function windowDays(now: Date, days: number): string[] {
  const out: string[] = [];
  for (let i = days - 1; i >= 0; i--) out.push(day(new Date(now.getTime() - i * 86_400_000)));
  return out;
}

/**
 * Per model version over the last `days` days: predictions, label and confidence histograms,
 * abstain rate and drift. `baseline(version)` gives a version's held-out reference (or undefined).
 */
export async function summarizeMonitoring(
  s3: S3Client,
  bucket: string,
  dataset: string,
  opts: { days: number; now: Date; baseline: (version: string) => Promise<DriftBaseline | undefined> },
): Promise<{ days: string[]; versions: VersionSummary[] }> {
  const days = windowDays(opts.now, opts.days);
  const today = day(opts.now);
  const rollups = await Promise.all(days.map((d) => readDay(s3, bucket, dataset, d, today)));
  const byVersion = new Map<string, { total: VersionDay; days: Array<VersionDay & { day: string }> }>();
  for (const r of rollups) {
    for (const [version, stats] of Object.entries(r.versions)) {
      const entry = byVersion.get(version) ?? { total: emptyVersionDay(), days: [] };
      byVersion.set(version, entry);
      merge(entry.total, stats);
      entry.days.push({ ...stats, day: r.day });
    }
  }
  const versions = await Promise.all(
    [...byVersion.entries()].map(async ([version, { total, days: perDay }]): Promise<VersionSummary> => {
      const base = await opts.baseline(version);
      const meanConfidence = total.predictions > 0 ? total.confidenceSum / total.predictions : null;
      const labelPsi = base ? populationStabilityIndex(total.labels, base.labelShare) : null;
      return {
        version,
        ...total,
        abstainRate: total.predictions > 0 ? total.abstained / total.predictions : 0,
        meanConfidence,
        drift: {
          labelPsi,
          meanConfidenceShift:
            base?.meanConfidence != null && meanConfidence !== null
              ? meanConfidence - base.meanConfidence
              : null,
          alert: labelPsi !== null && labelPsi > DRIFT_ALERT_PSI,
          threshold: DRIFT_ALERT_PSI,
        },
        days: perDay.map((d) => ({
          ...d,
          labelPsi: base ? populationStabilityIndex(d.labels, base.labelShare) : null,
        })),
      };
    }),
  );
  versions.sort((a, b) => (a.version < b.version ? 1 : -1));
  return { days, versions };
}
