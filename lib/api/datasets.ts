/**
 * Read-only dataset routes: `GET /datasets`, `GET /datasets/{d}`, `GET /datasets/{d}/model`.
 * They read the bucket directly (no cache), so they always show the current state.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { isRandomWeights } from '../model/spec.ts';
import { scanDataset, scanTimes, summarizeScan } from '../pipeline/readiness.ts';
import type { CurrentPointer } from '../serving/current-pointer.ts';
import {
  datasetNotFound,
  missingModelError,
  readCurrentPointer,
  readModelFile,
  readReport,
  sortVersions,
  versionTime,
} from '../serving/store.ts';
import {
  DATASETS_PREFIX,
  datasetPrefix,
  isValidDatasetName,
  MODELS_PREFIX,
  modelsPrefix,
  parseImageKey,
} from '../storage/keys.ts';
import { listFolders, listObjects } from '../storage/s3.ts';
import type { ModelDocument } from '../training/model-document.ts';
import type { ReportSummary } from '../training/report-summary.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import type { ExecutionPhase } from './executions.ts';
import { datasetParam } from './http.ts';
import { reportForModelRoute } from './model-report.ts';
import { publicErrorCode, publicReason } from './public-error.ts';
import type { DatasetListItem, DatasetStatus, ModelSummary } from './schemas.ts';
import type { RouteContext } from './types.ts';

// Response shapes are zod schemas in lib/api/schemas.ts (the OpenAPI document is generated from them).
export type { DatasetListItem, DatasetStatus, ModelSummary } from './schemas.ts';

// Listing datasets reads every key of each; a few at a time keeps S3 and the Lambda calm.
const LIST_CONCURRENCY = 4;

async function countImages(ctx: RouteContext, dataset: string): Promise<{ images: number; labels: number }> {
  const labels = new Set<string>();
  let images = 0;
  for await (const o of listObjects(ctx.s3, ctx.config.bucket, datasetPrefix(dataset))) {
    const parsed = parseImageKey(o.key);
    if (!parsed.ok) continue;
    images += 1;
    labels.add(parsed.image.label);
  }
  return { images, labels: labels.size };
}

/** `GET /datasets`: every dataset with images or models, with image and label counts. */
export async function listDatasetsRoute(ctx: RouteContext): Promise<{ datasets: DatasetListItem[] }> {
  const { s3 } = ctx;
  const { bucket } = ctx.config;
  const [withImages, withModels] = await Promise.all([
    listFolders(s3, bucket, DATASETS_PREFIX),
    listFolders(s3, bucket, MODELS_PREFIX),
  ]);
  // Folders that break the naming rule are never processed by the pipeline; they are not datasets.
  const names = [...new Set([...withImages, ...withModels])].filter(isValidDatasetName).sort();
  const datasets = await mapWithConcurrency(names, LIST_CONCURRENCY, async (name) => {
    const [counts, current] = await Promise.all([
      countImages(ctx, name),
      readCurrentPointer(s3, bucket, name),
    ]);
    return {
      name,
      ...counts,
      model: current ? { version: current.pointer.version, promotedAt: current.pointer.promotedAt } : null,
    };
  });
  return { datasets };
}

function summarize(pointer: CurrentPointer, doc: ModelDocument): ModelSummary {
  return {
    version: pointer.version,
    promotedAt: pointer.promotedAt,
    trainedAt: doc.trainedAt,
    spec: doc.spec,
    randomWeights: doc.randomWeights || isRandomWeights(doc.spec),
    classes: doc.classes,
  };
}

/** `GET /datasets/{d}`: readiness counts, labels, the promoted model and the newest training. */
export async function getDatasetRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<DatasetStatus> {
  const dataset = datasetParam(event);
  const withTimeline = event.queryStringParameters?.timeline === 'true';
  const { s3 } = ctx;
  const { bucket } = ctx.config;
  const [scan, current, folders] = await Promise.all([
    scanDataset(s3, bucket, dataset),
    readCurrentPointer(s3, bucket, dataset),
    listFolders(s3, bucket, modelsPrefix(dataset)),
  ]);
  const readiness = summarizeScan(scan);
  const versions = sortVersions(folders);
  if (readiness.total + readiness.skipped === 0 && current === undefined && versions.length === 0) {
    throw datasetNotFound(dataset);
  }
  const model = current
    ? summarize(current.pointer, await readModelFile(s3, bucket, dataset, current.pointer.version))
    : null;
  // Execution status is a nice-to-have next to the counts: a Step Functions hiccup must not fail the route.
  const latest = ctx.executions
    ? await ctx.executions.latest(dataset).catch((err: unknown) => {
        ctx.log.warn('could not read training executions', { dataset, error: String(err) });
        return undefined;
      })
    : undefined;
  // A code and one line for clients (lib/api/public-error.ts), never a stack or a bucket path.
  const lastExecution = latest
    ? { ...latest, error: publicErrorCode(latest.error), cause: publicReason(latest.cause) }
    : latest;
  const newest = versions[versions.length - 1];
  return {
    dataset,
    images: {
      total: readiness.total,
      ready: readiness.ready,
      failed: readiness.failed,
      pending: readiness.pending,
      skipped: readiness.skipped,
    },
    labels: readiness.labels,
    featuresSettled: readiness.pending === 0,
    model,
    lastTraining: newest
      ? { version: newest, at: versionTime(newest) ?? null, promoted: newest === current?.pointer.version }
      : null,
    lastExecution: lastExecution ?? null,
    ...(withTimeline
      ? {
          timeline: {
            ...scanTimes(scan),
            promotedAt: current?.pointer.promotedAt ?? null,
            phases: await executionPhases(ctx, latest?.executionArn),
          },
        }
      : {}),
  };
}

/** The phases of an execution; empty when unknown or unreadable (the timeline is a nice-to-have). */
async function executionPhases(
  ctx: RouteContext,
  executionArn: string | undefined,
): Promise<ExecutionPhase[]> {
  if (!executionArn || !ctx.executions?.phases) return [];
  return ctx.executions.phases(executionArn).catch((err: unknown) => {
    ctx.log.warn('could not read the execution history', { error: String(err) });
    return [];
  });
}

/** `GET /datasets/{d}/model`: the promoted model's metadata (without weights) and its report. */
export async function getModelRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{
  dataset: string;
  model: ModelSummary & Record<string, unknown>;
  /** The report's summary (lib/training/report-summary.ts); its pages have their own routes. */
  report: ReportSummary | Record<string, unknown> | null;
}> {
  const dataset = datasetParam(event);
  const { s3 } = ctx;
  const { bucket } = ctx.config;
  const current = await readCurrentPointer(s3, bucket, dataset);
  if (current === undefined) throw await missingModelError(s3, bucket, dataset);
  const { version } = current.pointer;
  const [doc, report] = await Promise.all([
    readModelFile(s3, bucket, dataset, version),
    readReport(s3, bucket, dataset, version, ctx.log),
  ]);
  // The weights are large (up to 8192 × classes numbers) and not metadata.
  const { coef: _coef, intercept: _intercept, ...meta } = doc;
  return {
    dataset,
    model: { ...meta, ...summarize(current.pointer, doc), previous: current.pointer.previous ?? null },
    report: reportForModelRoute(report),
  };
}
