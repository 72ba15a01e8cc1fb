import { randomBytes } from 'node:crypto';
import { totalmem } from 'node:os';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ModelConfig, TrainingConfig } from '../config.ts';
import { type TrainerRuntime, trainingUsageDocument } from '../cost/training.ts';
import { countS3Requests, type S3RequestCounts } from '../cost/usage.ts';
import { describeError, InsufficientDataError, NotFoundError, SpecMismatchError } from '../errors.ts';
import type { TrainingInput } from '../features/messages.ts';
import { FEATURE_META } from '../features/metadata.ts';
import { decodeNpy } from '../features/npy.ts';
import { type FeatureSpec, featureDims, parseSpec, specPrecision } from '../model/spec.ts';
import { trainHeadWithQuality } from '../quality/assess.ts';
import { renderReportHtml } from '../report/model-report.ts';
import { modelFileKey, newModelVersion } from '../storage/keys.ts';
import { getObject, putJson, putObject } from '../storage/s3.ts';
import {
  checkTrainerCapacity,
  denserThanMeasuredMessage,
  MEASURED_DENSITY,
  matrixBudgetBytes,
  TrainingTooLargeError,
} from '../training/capacity.ts';
import { type CompactMatrix, CompactMatrixBuilder } from '../training/compact-matrix.ts';
import type { ModelDocument, ReportDocument } from '../training/model-document.ts';
import { DEFAULT_TRAIN_OPTIONS } from '../training/train.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { Log } from '../util/log.ts';
import { type ImageEntry, scanDataset, scanFingerprint } from './readiness.ts';

/**
 * train-head's domain logic: the dataset's ready features → one contiguous matrix → `trainHead`
 * → a new model version under `models/{d}/{version}/`. `model.json` is written last, so a
 * version that has a `model.json` is complete (promote relies on it).
 */

/** What the trainer should treat as the deployment's feature spec (fields that are known). */
export type SpecExpectation = Partial<
  Pick<FeatureSpec, 'weights' | 'input' | 'pooling' | 'resize' | 'precision'>
>;

/**
 * The spec fields a deployment's model config pins down without loading any weights: input size,
 * pooling, the resize kernel the extractor uses, the precision (an int8 deployment trains on
 * `…/int8` features only, an fp32 one never on them), and the weights id when they are seeded random
 * (`random-<seed>`); real weights are identified by a hash only the loaded weights give.
 */
export function specExpectationFromModelConfig(
  cfg: ModelConfig,
  resize: FeatureSpec['resize'],
): SpecExpectation {
  return {
    input: [cfg.inputSize, cfg.inputSize],
    pooling: cfg.pooling,
    resize,
    precision: cfg.precision,
    ...(cfg.weights.kind === 'random' ? { weights: `random-${cfg.weights.seed}` } : {}),
  };
}

/** Input of a training (the state machine's execution input, defined once in lib/features/messages.ts). */
export type TrainJobInput = TrainingInput;

/** Dependencies of `runTrainingJob`. */
export interface TrainJobDeps {
  s3: S3Client;
  bucket: string;
  training: TrainingConfig;
  log: Log;
  /** Features of other specs are excluded (and reported); without it, the majority spec wins. */
  expect?: SpecExpectation;
  now?: () => Date;
  /** Random part of the version id. @default 8 random [a-z0-9] */
  shortId?: () => string;
  /** Region, memory and architecture of the trainer, for the report's `usage` (none without it). */
  runtime?: TrainerRuntime;
}

/** Features of one spec that were left out, and why. */
export interface Exclusion {
  /** `pending`: not extracted when readiness stopped waiting; `failed`: unusable (error record). */
  reason: 'other-spec' | 'stale' | 'vanished' | 'corrupt' | 'pending' | 'failed';
  count: number;
  spec?: string;
}

/** train-head's result (the state machine's `$.training`). */
export interface TrainJobResult {
  dataset: string;
  version: string;
  trigger: TrainingInput['trigger'];
  requestedAt: string;
  spec: string;
  classes: string[];
  accuracy: number | null;
  logLoss: number | null;
  nTrain: number;
  nTest: number;
  converged: boolean;
  nIter: number;
  /** Features left out of the training (other spec, changed since the readiness check, …). */
  excluded: Exclusion[];
  /**
   * `scanFingerprint` of the listing this model was trained from (lib/pipeline/readiness.ts):
   * Finish trains again only when the dataset's fingerprint moved past it.
   */
  fingerprint: string;
  timingsMs: { load: number; fit: number; total: number };
  /** The compact feature matrix: bytes held, and the share of non-zero values it found. */
  matrix: { bytes: number; density: number };
}

/** The loaded training data. */
export interface LoadedFeatures {
  /** The features, non-zeros only (see compact-matrix.ts). */
  X: CompactMatrix;
  labels: string[];
  spec: string;
  excluded: Exclusion[];
  /** Image key of each row (the report's held-out predictions, the quality pass). */
  keys: string[];
  /** Image ETag of each row (content identity, for exact duplicates). */
  etags: string[];
}

function shortRandomId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(8)].map((b) => alphabet[b % alphabet.length]).join('');
}

function matches(spec: string, expect: SpecExpectation | undefined): boolean {
  if (!expect) return true;
  let s: FeatureSpec;
  try {
    s = parseSpec(spec);
  } catch {
    return false;
  }
  return (
    (expect.weights === undefined || s.weights === expect.weights) &&
    (expect.pooling === undefined || s.pooling === expect.pooling) &&
    (expect.resize === undefined || s.resize === expect.resize) &&
    (expect.precision === undefined || specPrecision(s) === expect.precision) &&
    (expect.input === undefined || (s.input[0] === expect.input[0] && s.input[1] === expect.input[1]))
  );
}

function describeExpectation(expect: SpecExpectation): string {
  const parts = [
    expect.weights && `weights ${expect.weights}`,
    expect.input && `input ${expect.input[0]}x${expect.input[1]}`,
    expect.pooling && `pooling ${expect.pooling}`,
    expect.resize && `resize ${expect.resize}`,
    expect.precision && `precision ${expect.precision}`,
  ].filter(Boolean);
  return parts.join(', ');
}

/**
 * Reads the features of `entries` with bounded concurrency straight into one compact matrix
 * (non-zeros only, rows in entry order; each `.npy` is decoded and compacted as it arrives, so
 * the peak is the compact matrix plus the GETs in flight), keeping only one feature spec: the
 * expected one, else the majority. Rows of the first spec seen go straight into the matrix; rows
 * of other specs are kept aside (they are rare: a deployment change) and only used if their spec
 * wins. A feature whose `source-etag` no longer matches its image (replaced since the readiness
 * check), that vanished, or that does not decode is left out and reported.
 *
 * The number of images is known before loading, so a training that cannot fit `memoryBytes` at
 * the measured feature density fails before the first GET when the expected spec gives the
 * width, else after the first feature; a matrix that grows past its budget anyway (denser
 * features than measured) fails as soon as it does.
 *
 * @throws TrainingTooLargeError naming the limit and the remedies (`--pooling avg`, more memory)
 * @throws SpecMismatchError when no feature has the expected spec, or two specs tie
 */
export async function loadFeatures(
  s3: S3Client,
  bucket: string,
  entries: readonly ImageEntry[],
  opts: { concurrency: number; expect?: SpecExpectation; log: Log; memoryBytes?: number },
): Promise<LoadedFeatures> {
  const n = entries.length;
  const memoryBytes = opts.memoryBytes ?? totalmem();
  const classes = new Set(entries.map((e) => e.image.label)).size;
  const shapeOf = (d: number, pooling: FeatureSpec['pooling'] | undefined) => ({
    d,
    classes,
    density: pooling ? MEASURED_DENSITY[pooling] : 1,
  });
  const { expect } = opts;
  if (expect?.input && expect.pooling) {
    const d = featureDims({ input: expect.input, pooling: expect.pooling });
    checkTrainerCapacity(n, memoryBytes, shapeOf(d, expect.pooling));
  }
  const newBuilder = (rows: number, d: number, pooling: FeatureSpec['pooling'] | undefined) => {
    const shape = shapeOf(d, pooling);
    checkTrainerCapacity(rows, memoryBytes, shape);
    const budget = matrixBudgetBytes(memoryBytes, rows, shape);
    return new CompactMatrixBuilder(rows, d, {
      maxBytes: budget,
      onLimit: () => new TrainingTooLargeError(denserThanMeasuredMessage(rows, memoryBytes, shape, budget)),
    });
  };
  // The first spec seen decides the compact matrix's row width.
  let primary: { spec: string; d: number; builder: CompactMatrixBuilder } | undefined;
  const rowSpec: (string | undefined)[] = new Array(n).fill(undefined);
  const aside = new Map<number, Float32Array>();
  const counts = new Map<string, number>();
  const bad = { stale: 0, vanished: 0, corrupt: 0 };

  await mapWithConcurrency(entries, opts.concurrency, async (entry, i) => {
    let obj: Awaited<ReturnType<typeof getObject>>;
    try {
      obj = await getObject(s3, bucket, entry.featureKey);
    } catch (err) {
      if (err instanceof NotFoundError) {
        bad.vanished += 1;
        return;
      }
      throw err;
    }
    if (obj.metadata[FEATURE_META.sourceEtag] !== entry.etag) {
      bad.stale += 1;
      return;
    }
    const spec = obj.metadata[FEATURE_META.spec] ?? '';
    let vector: Float32Array;
    let d: number;
    let parsed: FeatureSpec;
    try {
      parsed = parseSpec(spec);
      d = featureDims(parsed);
      vector = decodeNpy(obj.body).data;
      if (vector.length !== d) throw new Error(`${vector.length} values, spec says ${d}`);
    } catch (err) {
      opts.log.warn('feature does not decode; left out', {
        key: entry.featureKey,
        error: describeError(err),
      });
      bad.corrupt += 1;
      return;
    }
    if (!matches(spec, opts.expect)) {
      counts.set(spec, (counts.get(spec) ?? 0) + 1);
      return;
    }
    primary ??= { spec, d, builder: newBuilder(n, d, parsed.pooling) };
    if (spec === primary.spec) primary.builder.setRow(i, vector);
    else aside.set(i, vector.slice());
    rowSpec[i] = spec;
    counts.set(spec, (counts.get(spec) ?? 0) + 1);
  });

  const candidates = [...counts].filter(([spec]) => matches(spec, opts.expect)).sort((a, b) => b[1] - a[1]);
  const [best, second] = candidates;
  if (!best) {
    const found = [...counts.keys()];
    if (opts.expect && found.length > 0) {
      throw new SpecMismatchError(
        `no feature of dataset matches the deployment's extractor (${describeExpectation(opts.expect)}); found ${found.map((s) => `'${s}'`).join(', ')}: re-extract the images with the current extractor`,
      );
    }
    throw new InsufficientDataError(
      'no usable features to train on: upload images and wait for their extraction',
    );
  }
  if (second && second[1] === best[1]) {
    throw new SpecMismatchError(
      `features of two specs in equal numbers (${best[1]} each): '${best[0]}' and '${second[0]}'; re-extract the images with one extractor, or set the trainer's model config to choose`,
    );
  }
  const chosen = best[0];
  const kept: number[] = [];
  const labels: string[] = [];
  const keys: string[] = [];
  const etags: string[] = [];
  for (let i = 0; i < n; i++) {
    if (rowSpec[i] !== chosen) continue;
    kept.push(i);
    labels.push(entries[i]?.image.label ?? '');
    keys.push(entries[i]?.image.key ?? '');
    etags.push(entries[i]?.etag ?? '');
  }
  let X: CompactMatrix;
  if (primary && primary.spec === chosen) {
    X = primary.builder.finish(kept);
  } else {
    const parsed = parseSpec(chosen);
    const builder = newBuilder(kept.length, featureDims(parsed), parsed.pooling);
    kept.forEach((i, r) => {
      const v = aside.get(i);
      if (v) builder.setRow(r, v);
    });
    X = builder.finish();
  }
  const excluded: Exclusion[] = [...counts]
    .filter(([spec]) => spec !== chosen)
    .map(([spec, count]) => ({ reason: 'other-spec' as const, spec, count }));
  for (const reason of ['stale', 'vanished', 'corrupt'] as const) {
    if (bad[reason] > 0) excluded.push({ reason, count: bad[reason] });
  }
  return { X, labels, spec: chosen, excluded, keys, etags };
}

function describeExclusions(excluded: readonly Exclusion[], spec: string): string | undefined {
  if (excluded.length === 0) return undefined;
  const parts = excluded.map((e) =>
    e.reason === 'other-spec'
      ? `${e.count} feature(s) of spec '${e.spec}'`
      : e.reason === 'pending' || e.reason === 'failed'
        ? `${e.count} image(s) ${e.reason === 'pending' ? 'still being extracted' : 'that could not be used (error records)'}`
        : `${e.count} feature(s) ${e.reason === 'stale' ? 'of images replaced since the readiness check' : e.reason === 'vanished' ? 'deleted during loading' : 'that did not decode'}`,
  );
  return `Left out: ${parts.join('; ')}. Trained on spec '${spec}'.`;
}

/**
 * Trains a new model version of a dataset from its ready features and writes `report.json`,
 * `report.html` and, last, `model.json` under `models/{d}/{version}/`.
 *
 * @throws InsufficientDataError (fewer than 2 labels or 2 images per label), SpecMismatchError;
 *   their messages say what to do and end up as the state machine's Fail cause.
 */
export async function runTrainingJob(input: TrainJobInput, deps: TrainJobDeps): Promise<TrainJobResult> {
  // S3 requests are counted per run (for the report's usage), even with runs in parallel.
  return (await countS3Requests(deps.s3, (s3Counts) => trainingJob(input, deps, s3Counts))).result;
}

async function trainingJob(
  input: TrainJobInput,
  deps: TrainJobDeps,
  s3Counts: S3RequestCounts,
): Promise<TrainJobResult> {
  const started = performance.now();
  const now = deps.now ?? (() => new Date());
  const { dataset } = input;
  const scan = await scanDataset(deps.s3, deps.bucket, dataset);
  const ready = scan.entries.filter((e) => e.status === 'ready');
  const failed = scan.entries.filter((e) => e.status === 'failed').length;
  const pending = scan.entries.length - ready.length - failed;
  deps.log.info('loading features', { dataset, ready: ready.length, failed, pending });
  if (ready.length === 0) {
    throw new InsufficientDataError(
      `dataset '${dataset}' has no ready features (${scan.entries.length} images: ${failed} unusable, ${pending} pending): upload images under datasets/${dataset}/{label}/ and wait for their extraction`,
    );
  }

  const loadStart = performance.now();
  const loaded = await loadFeatures(deps.s3, deps.bucket, ready, {
    concurrency: deps.training.featureConcurrency,
    ...(deps.expect ? { expect: deps.expect } : {}),
    log: deps.log,
    ...(deps.training.memoryBytes !== undefined ? { memoryBytes: deps.training.memoryBytes } : {}),
  });
  const loadMs = performance.now() - loadStart;
  // Images readiness stopped waiting for, and unusable ones: counted in the report, never blocking.
  if (pending > 0) loaded.excluded.push({ reason: 'pending', count: pending });
  if (failed > 0) loaded.excluded.push({ reason: 'failed', count: failed });
  if (loaded.excluded.length > 0)
    deps.log.warn('features left out of the training', { excluded: loaded.excluded });

  const version = newModelVersion(now(), (deps.shortId ?? shortRandomId)());
  const fitStart = performance.now();
  const { model, report, quality } = trainHeadWithQuality(
    {
      X: loaded.X,
      labels: loaded.labels,
      keys: loaded.keys,
      spec: loaded.spec,
      options: {
        ...DEFAULT_TRAIN_OPTIONS,
        C: deps.training.C,
        maxIter: deps.training.maxIter,
        refitOnAll: deps.training.refitOnAll,
        ...(deps.training.targetPrecision !== undefined
          ? { targetPrecision: deps.training.targetPrecision }
          : {}),
      },
      log: deps.log,
      dataset,
      version,
      loadMs,
      now,
    },
    // Data quality: duplicates (by ETag and features), leaks, label errors; never
    // blocks the training.
    {
      keys: loaded.keys,
      contentIds: loaded.etags,
      ...(deps.training.nearDuplicateThreshold !== undefined
        ? { settings: { nearThreshold: deps.training.nearDuplicateThreshold } }
        : {}),
    },
    { dataset, version },
  );
  const fitMs = performance.now() - fitStart;
  const note = describeExclusions(loaded.excluded, loaded.spec);
  const withNote: ReportDocument = note
    ? { ...report, note: [report.note, note].filter(Boolean).join(' ') }
    : report;
  // Usage so far plus the four documents written below (report.json, report.html, quality.json, model.json).
  const fullReport: ReportDocument = deps.runtime
    ? {
        ...withNote,
        usage: trainingUsageDocument(deps.runtime, performance.now() - started, { ...s3Counts }, 4),
      }
    : withNote;

  await putJson(deps.s3, deps.bucket, modelFileKey(dataset, version, 'report.json'), fullReport);
  await putObject(
    deps.s3,
    deps.bucket,
    modelFileKey(dataset, version, 'report.html'),
    renderReportHtml(fullReport, quality),
    {
      contentType: 'text/html; charset=utf-8',
    },
  );
  await putJson(deps.s3, deps.bucket, modelFileKey(dataset, version, 'quality.json'), quality);
  // Last: a version with a model.json is complete.
  await putJson(
    deps.s3,
    deps.bucket,
    modelFileKey(dataset, version, 'model.json'),
    model satisfies ModelDocument,
  );

  const result: TrainJobResult = {
    dataset,
    version,
    trigger: input.trigger,
    requestedAt: input.requestedAt,
    spec: loaded.spec,
    classes: model.classes,
    accuracy: model.metrics.accuracy,
    logLoss: model.metrics.logLoss,
    nTrain: model.metrics.nTrain,
    nTest: model.metrics.nTest,
    converged: model.metrics.converged,
    nIter: model.metrics.nIter,
    excluded: loaded.excluded,
    fingerprint: scanFingerprint(scan),
    matrix: {
      bytes: loaded.X.bytes,
      density: Math.round((loaded.X.nnz / Math.max(1, loaded.X.n * loaded.X.d)) * 1e4) / 1e4,
    },
    timingsMs: {
      load: Math.round(loadMs),
      fit: Math.round(fitMs),
      total: Math.round(performance.now() - started),
    },
  };
  deps.log.info('model trained', { ...result, classes: result.classes.length });
  return result;
}
