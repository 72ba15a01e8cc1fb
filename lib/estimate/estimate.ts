/**
 * `tlearn cost`: what a dataset of N images costs to extract and train, what serving M
 * predictions a month costs, and what the stack bills when nothing happens (its idle cost).
 * Estimates from the dated list prices (prices.ts) and the per-image figures below, each of
 * which the command lets a user override with their own measurement (a training report's
 * `usage` is the measured counterpart).
 */
import { DRIFT_FUNCTION, DRIFT_METRIC_NAME, DRIFT_SETTINGS } from '../capture/drift.ts';
import { PRICES_AS_OF, pricesFor, type RegionPrices } from '../cost/prices.ts';
import {
  type CostLine,
  emptyUsage,
  priceUsage,
  TRAINING_TRANSITIONS_HAPPY_PATH,
  type Usage,
} from '../cost/usage.ts';
import { defaultMemoryMb } from '../functions.ts';
import { featureDims, parseSpec } from '../model/spec.ts';

/** Alarms and dashboards the Monitoring construct creates (an infra test keeps these true). */
export const MONITORING_ALARMS = 16;
export const MONITORING_DASHBOARDS = 1;
/** Custom metrics only the monitoring needs (the drift score; the others come with the handlers' work). */
export const MONITORING_CUSTOM_METRICS = 1;
/** Runs of drift-metric a month (its EventBridge schedule, lib/capture/drift.ts). */
export const DRIFT_RUNS_PER_MONTH = (30 * 24 * 60) / DRIFT_SETTINGS.everyMinutes;
/** Assumed duration of one drift-metric run (a few LIST calls and a report read). */
const DRIFT_MS_PER_RUN = 1000;
/** SQS queues a Lambda event source mapping polls (ingest, features, batches, the ingest and batch DLQs). */
export const POLLED_QUEUES = 5;
/**
 * ReceiveMessage calls an idle event source mapping makes: Lambda keeps (at least) 5 pollers
 * long-polling (20 s) each queue, so ≈ 5 × 3 per minute × 43,200 minutes a month.
 */
export const IDLE_POLLS_PER_QUEUE_MONTH = 5 * 3 * 43_200;

/** Function memory (MB): the stack's defaults (lib/functions.ts). */
const EXTRACT_MB = defaultMemoryMb('extract-features');
const TRAIN_MB = defaultMemoryMb('train-head');
const API_MB = defaultMemoryMb('api');
const SMALL_MB = defaultMemoryMb('start-training');

/** Inputs of {@link estimateCost}; everything but `images` has a documented default. */
export interface CostEstimateInput {
  images: number;
  predictionsPerMonth?: number;
  region?: string;
  /** The stack's spec (for the feature size). @default 150x150 flatten */
  spec?: string;
  /** Whether the alarms and dashboard are deployed (CDK context tlearn:monitoring). @default true */
  monitoring?: boolean;
  /** Lambda ms per image in extract-features. @default 150 */
  extractMsPerImage?: number;
  /** train-head ms per image (loading + fit), plus 5 s fixed. @default 10 */
  trainMsPerImage?: number;
  /** API ms per prediction (decode + forward + head). @default 200 */
  predictMs?: number;
  /** Average stored image size. @default 100 KB */
  imageKb?: number;
  /** Container image size in ECR. @default 0.7 GB */
  imageGb?: number;
  /** Model versions exported as ONNX (~60 MB each, kept in S3). @default 1 */
  exportedVersions?: number;
}

/** One part of the estimate. */
export interface CostPart {
  name: 'extraction' | 'training' | 'serving per month' | 'idle per month';
  lines: CostLine[];
  totalUsd: number;
}

/** The estimate. */
export interface CostEstimate {
  region: string;
  pricesAsOf: string;
  assumptions: Record<string, number | string | boolean>;
  parts: CostPart[];
}

function part(name: CostPart['name'], lines: CostLine[]): CostPart {
  return { name, lines, totalUsd: lines.reduce((s, l) => s + l.usd, 0) };
}

/**
 * Estimates the cost of a dataset of `images` images and `predictionsPerMonth` predictions,
 * and the stack's idle bill, listing every item.
 *
 * @example estimateCost({ images: 25_000, predictionsPerMonth: 100_000 }).parts[3].totalUsd
 */
export function estimateCost(input: CostEstimateInput): CostEstimate {
  const region = input.region ?? 'us-east-1';
  const p = pricesFor(region);
  const n = input.images;
  const m = input.predictionsPerMonth ?? 0;
  const a = assumptionsOf(input);
  const featureBytes = featureDims(parseSpec(a.spec)) * 4 + 128;
  const ex = extractionUsage(n, a);
  const tr = trainingUsage(n, a);
  const serving = servingLines(m, a, region, p);
  const idle = idleLines(n, featureBytes, a, region, p);
  return {
    region,
    pricesAsOf: PRICES_AS_OF,
    assumptions: { images: n, predictionsPerMonth: m, ...a },
    parts: [
      part('extraction', priceUsage(ex, region).lines),
      part('training', priceUsage(tr, region).lines),
      part('serving per month', serving),
      part('idle per month', idle),
    ],
  };
}

/** The per-image figures and settings of an estimate: the input's, else the defaults it documents. */
function assumptionsOf(input: CostEstimateInput) {
  return {
    extractMsPerImage: input.extractMsPerImage ?? 150,
    trainMsPerImage: input.trainMsPerImage ?? 10,
    predictMs: input.predictMs ?? 200,
    imageKb: input.imageKb ?? 100,
    imageGb: input.imageGb ?? 0.7,
    exportedVersions: input.exportedVersions ?? 1,
    monitoring: input.monitoring ?? true,
    spec: input.spec ?? 'vgg16/w/150x150/flatten/caffe/bilinear',
  };
}

type Assumptions = ReturnType<typeof assumptionsOf>;

/**
 * Extraction of `n` images: per image the upload's PUT, one S3 GET (image) + HEAD (is the
 * feature current?) + PUT (.npy); SQS: S3's send, and the features message's send, plus
 * receive + delete per batch of 10.
 */
function extractionUsage(n: number, a: Assumptions): Usage {
  const ex: Usage = emptyUsage();
  ex.lambda.push({
    function: 'extract-features',
    architecture: 'arm64',
    memoryMb: EXTRACT_MB,
    invocations: Math.ceil(n / 10),
    durationMs: n * a.extractMsPerImage,
  });
  ex.lambda.push({
    function: 'start-training',
    architecture: 'arm64',
    memoryMb: SMALL_MB,
    invocations: Math.ceil(n / 10),
    durationMs: Math.ceil(n / 10) * 50,
  });
  ex.s3 = { put: 2 * n, get: 2 * n };
  ex.sqs.requests = Math.ceil(2 * n + 4 * (n / 10));
  return ex;
}

/** Training on `n` images: one execution; train-head reads every feature once (plus listings of 1000 keys). */
function trainingUsage(n: number, a: Assumptions): Usage {
  const tr: Usage = emptyUsage();
  tr.lambda.push({
    function: 'train-head',
    architecture: 'arm64',
    memoryMb: TRAIN_MB,
    invocations: 1,
    durationMs: 5000 + n * a.trainMsPerImage,
  });
  tr.lambda.push({
    function: 'check-readiness + promote-model',
    architecture: 'arm64',
    memoryMb: SMALL_MB,
    invocations: 2,
    durationMs: 1000 + n / 10,
  });
  tr.stepFunctions.transitions = TRAINING_TRANSITIONS_HAPPY_PATH;
  tr.s3 = { put: 4 + 2 * Math.ceil(n / 1000) * 2, get: n + 2 };
  return tr;
}

/**
 * Serving `m` predictions a month: every prediction is one API Gateway request and one api
 * invocation; the model cache checks current.json at most every 5 s. Then the monitoring
 * records each prediction leaves and the drift schedule's reads of them.
 */
function servingLines(m: number, a: Assumptions, region: string, p: RegionPrices): CostLine[] {
  const sv: Usage = emptyUsage();
  sv.apiGateway.requests = m;
  sv.lambda.push({
    function: 'api',
    architecture: 'arm64',
    memoryMb: API_MB,
    invocations: m,
    durationMs: m * a.predictMs,
  });
  sv.s3.get = Math.min(m, (30 * 86_400) / 5);

  const serving = priceUsage(sv, region).lines;
  // Monitoring records (lib/capture/monitoring.ts): one empty PUT per prediction, on unless a
  // dataset's settings turn them off; the drift schedule LISTs a day of them every run.
  if (m > 0) {
    serving.push({
      item: 'S3 PUT: one monitoring record per prediction',
      quantity: m,
      unit: 'requests',
      usd: m * p.s3PutRequest,
    });
  }
  const driftLists = DRIFT_RUNS_PER_MONTH * (Math.ceil(m / 30 / 1000) + 1);
  if (a.monitoring && m > 0) {
    serving.push({
      item: `S3 LIST: ${DRIFT_FUNCTION} reads the last ${DRIFT_SETTINGS.windowHours} h of records every run`,
      quantity: driftLists,
      unit: 'requests',
      usd: driftLists * p.s3PutRequest,
    });
  }
  return serving;
}

/**
 * What the stack bills a month when nothing happens: the monitoring (alarms, dashboard, drift
 * metric and its schedule) when deployed, the container image, the stored data of `n` images,
 * (`featureBytes` per feature file) and Lambda's long polls of the idle queues.
 */
function idleLines(
  n: number,
  featureBytes: number,
  a: Assumptions,
  region: string,
  p: RegionPrices,
): CostLine[] {
  const gb = (bytes: number) => bytes / 1024 ** 3;
  const storedGb = gb(n * a.imageKb * 1024 + n * featureBytes + 59e6 + a.exportedVersions * 60e6);
  const idle: CostLine[] = a.monitoring ? monitoringLines(region, p) : [];
  idle.push({
    item: 'ECR container image (extract-features, api, batch-predict)',
    quantity: round(a.imageGb),
    unit: 'GB-months',
    usd: a.imageGb * p.ecrStorageGbMonth,
  });
  idle.push({
    item: 'S3 storage (images, features, base model, exports)',
    quantity: round(storedGb),
    unit: 'GB-months',
    usd: storedGb * p.s3StorageGbMonth,
  });
  const polls = POLLED_QUEUES * IDLE_POLLS_PER_QUEUE_MONTH;
  idle.push({
    item: `SQS long polls of ${POLLED_QUEUES} idle queues by Lambda`,
    quantity: polls,
    unit: 'requests',
    usd: polls * p.sqsRequest,
  });
  return idle;
}

/** The monitoring's monthly bill: alarms, dashboard, the drift metric and the drift schedule's runs. */
function monitoringLines(region: string, p: RegionPrices): CostLine[] {
  const lines: CostLine[] = [
    {
      item: `CloudWatch alarms (${MONITORING_ALARMS})`,
      quantity: MONITORING_ALARMS,
      unit: 'alarm-months',
      usd: MONITORING_ALARMS * p.cloudwatchAlarmMonth,
    },
    {
      item: 'CloudWatch dashboard (free if the account has fewer than 3)',
      quantity: MONITORING_DASHBOARDS,
      unit: 'dashboard-months',
      usd: MONITORING_DASHBOARDS * p.cloudwatchDashboardMonth,
    },
    {
      item: `CloudWatch custom metric ${DRIFT_METRIC_NAME} (EMF)`,
      quantity: MONITORING_CUSTOM_METRICS,
      unit: 'metric-months',
      usd: MONITORING_CUSTOM_METRICS * p.cloudwatchMetricMonth,
    },
  ];
  // The schedule itself: an EventBridge rule's scheduled events are free.
  const drift = emptyUsage();
  drift.lambda.push({
    function: DRIFT_FUNCTION,
    architecture: 'arm64',
    memoryMb: DRIFT_SETTINGS.memorySize,
    invocations: DRIFT_RUNS_PER_MONTH,
    durationMs: DRIFT_RUNS_PER_MONTH * DRIFT_MS_PER_RUN,
  });
  // Every run lists the datasets with records (one LIST) even when nothing was predicted.
  drift.s3.put = DRIFT_RUNS_PER_MONTH;
  for (const line of priceUsage(drift, region).lines) {
    lines.push({ ...line, item: `${line.item} (hourly drift schedule)` });
  }
  return lines;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
