/**
 * Closing the loop over HTTP: dataset settings (the capture policy), the review of captured
 * predictions, and monitoring. The domain lives in lib/capture/; these functions parse requests and
 * map results (docs/ARCHITECTURE.md "Closing the loop").
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import {
  type CaptureDocument,
  type CapturePage,
  discardCapture,
  labelCapture,
  listCaptures,
  undoReview,
} from '../capture/captures.ts';
import {
  baselineFromReport,
  type DriftBaseline,
  summarizeMonitoring,
  type VersionSummary,
} from '../capture/monitoring.ts';
import { DatasetSettings, readDatasetSettings, writeDatasetSettings } from '../capture/settings.ts';
import { labelPoolImage, type PoolSuggestions, suggestFromPool } from '../capture/suggestions.ts';
import { ValidationError } from '../errors.ts';
import {
  datasetExists,
  datasetNotFound,
  headFromModelFile,
  missingModelError,
  readCurrentPointer,
  readModelFile,
  readReport,
} from '../serving/store.ts';
import {
  datasetParam,
  mediaType,
  parseJsonBody,
  parseWith,
  readBodyBytes,
  requireMediaType,
} from './http.ts';
import type { RouteContext } from './types.ts';

/** Captures per review page: at most this many (the page reads one small document each). */
export const MAX_CAPTURE_PAGE = 200;
/** Suggestions per request. */
export const MAX_SUGGESTIONS = 200;
/** Monitoring window, days. */
export const MAX_MONITORING_DAYS = 90;

function jsonBody(event: APIGatewayProxyEvent, ctx: RouteContext): unknown {
  requireMediaType(mediaType(event), ['application/json']);
  return parseJsonBody(readBodyBytes(event, ctx.config.maxBodyBytes));
}

async function requireDataset(ctx: RouteContext, dataset: string): Promise<void> {
  if (!(await datasetExists(ctx.s3, ctx.config.bucket, dataset))) throw datasetNotFound(dataset);
}

/** `GET /datasets/{d}/settings`. */
export async function getSettingsRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ dataset: string; settings: DatasetSettings }> {
  const dataset = datasetParam(event);
  await requireDataset(ctx, dataset);
  return { dataset, settings: await readDatasetSettings(ctx.s3, ctx.config.bucket, dataset) };
}

/** `PUT /datasets/{d}/settings {capture: {sample, belowConfidence}, monitoring}`: replaces them whole. */
export async function putSettingsRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ dataset: string; settings: DatasetSettings }> {
  const dataset = datasetParam(event);
  const body = jsonBody(event, ctx);
  const result = DatasetSettings.safeParse(body);
  if (!result.success) {
    const detail = result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
    throw new ValidationError(`settings are invalid: ${detail}`, { code: 'InvalidSettings' });
  }
  await requireDataset(ctx, dataset);
  await writeDatasetSettings(ctx.s3, ctx.config.bucket, dataset, result.data);
  ctx.settings.invalidate(dataset);
  return { dataset, settings: result.data };
}

export const CapturesQuery = z.object({
  order: z.enum(['uncertain', 'recent']).default('uncertain'),
  limit: z.coerce.number().int().min(1).max(MAX_CAPTURE_PAGE).default(50),
  token: z.string().max(400).optional(),
});

/** `GET /datasets/{d}/captures?order=uncertain|recent&limit=&token=`: what is left to review. */
export async function listCapturesRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<CapturePage & { dataset: string; order: 'uncertain' | 'recent' }> {
  const dataset = datasetParam(event);
  const q = parseWith(CapturesQuery, event.queryStringParameters ?? {}, 'query');
  const page = await listCaptures(ctx.s3, ctx.config.bucket, dataset, q);
  return { dataset, order: q.order, ...page };
}

export const LabelBody = z
  .object({ label: z.string().min(1).max(100), createClass: z.boolean().default(false) })
  .strict();

function captureId(event: APIGatewayProxyEvent): string {
  return event.pathParameters?.id ?? '';
}

/** The classes of the promoted model (a capture's label must be one unless it creates a class). */
async function promotedClasses(ctx: RouteContext, dataset: string): Promise<string[]> {
  const current = await readCurrentPointer(ctx.s3, ctx.config.bucket, dataset);
  if (!current) throw await missingModelError(ctx.s3, ctx.config.bucket, dataset);
  return (await readModelFile(ctx.s3, ctx.config.bucket, dataset, current.pointer.version)).classes;
}

/** `POST /datasets/{d}/captures/{id}/label {label, createClass?}`: into the training set. */
export async function labelCaptureRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ capture: CaptureDocument }> {
  const dataset = datasetParam(event);
  const body = parseWith(LabelBody, jsonBody(event, ctx), 'request body');
  const classes = await promotedClasses(ctx, dataset);
  const capture = await labelCapture(ctx.s3, ctx.config.bucket, {
    dataset,
    id: captureId(event),
    label: body.label.normalize('NFC'),
    classes,
    createClass: body.createClass,
    at: ctx.now(),
  });
  return { capture };
}

/** `DELETE /datasets/{d}/captures/{id}`: out of the review queue, not trained on. */
export async function discardCaptureRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ capture: CaptureDocument }> {
  const dataset = datasetParam(event);
  return {
    capture: await discardCapture(ctx.s3, ctx.config.bucket, {
      dataset,
      id: captureId(event),
      at: ctx.now(),
    }),
  };
}

/** `POST /datasets/{d}/captures/{id}/undo`: back into the queue (a labelled copy is deleted). */
export async function undoCaptureRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ capture: CaptureDocument }> {
  const dataset = datasetParam(event);
  return { capture: await undoReview(ctx.s3, ctx.config.bucket, { dataset, id: captureId(event) }) };
}

export const MonitoringQuery = z.object({
  days: z.coerce.number().int().min(1).max(MAX_MONITORING_DAYS).default(30),
});

// A version's report never changes, so its baseline is read once per process.
const baselines = new Map<string, Promise<DriftBaseline | undefined>>();

function baselineOf(ctx: RouteContext, dataset: string, version: string): Promise<DriftBaseline | undefined> {
  const key = `${dataset}/${version}`;
  let hit = baselines.get(key);
  if (!hit) {
    // A report that does not parse (an older trainer's) gives no baseline: drift is then null.
    hit = readReport(ctx.s3, ctx.config.bucket, dataset, version, ctx.log).then((stored) =>
      stored?.kind === 'parsed' ? baselineFromReport(stored.report) : undefined,
    );
    hit.catch(() => baselines.delete(key));
    baselines.set(key, hit);
  }
  return hit;
}

/** `GET /datasets/{d}/monitoring?days=30`: per version and day, with drift against the held-out set. */
export async function monitoringRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ dataset: string; days: string[]; versions: VersionSummary[] }> {
  const dataset = datasetParam(event);
  const q = parseWith(MonitoringQuery, event.queryStringParameters ?? {}, 'query');
  await requireDataset(ctx, dataset);
  const summary = await summarizeMonitoring(ctx.s3, ctx.config.bucket, dataset, {
    days: q.days,
    now: ctx.now(),
    baseline: (version) => baselineOf(ctx, dataset, version),
  });
  return { dataset, ...summary };
}

export const SuggestionsQuery = z.object({
  n: z.coerce.number().int().min(1).max(MAX_SUGGESTIONS).default(50),
});

/** `GET /datasets/{d}/suggestions?n=50`: pool images whose labels would teach the model most. */
export async function suggestionsRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<PoolSuggestions & { dataset: string; model: { version: string } }> {
  const dataset = datasetParam(event);
  const q = parseWith(SuggestionsQuery, event.queryStringParameters ?? {}, 'query');
  const current = await readCurrentPointer(ctx.s3, ctx.config.bucket, dataset);
  if (!current) throw await missingModelError(ctx.s3, ctx.config.bucket, dataset);
  const { version } = current.pointer;
  const doc = await readModelFile(ctx.s3, ctx.config.bucket, dataset, version);
  const head = headFromModelFile(doc, `models/${dataset}/${version}/model.json`);
  const result = await suggestFromPool(ctx.s3, ctx.config.bucket, dataset, head, q.n);
  return { dataset, model: { version }, ...result };
}

export const PoolLabelBody = z
  .object({
    key: z.string().min(1).max(1024),
    label: z.string().min(1).max(100),
    createClass: z.boolean().default(false),
  })
  .strict();

/**
 * `POST /datasets/{d}/suggestions/label {key, label, createClass?}`: moves a pool image into
 * `datasets/{d}/{label}/` (an ordinary upload: features, then the single-flight retrain).
 */
export async function labelSuggestionRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ dataset: string; key: string; datasetKey: string }> {
  const dataset = datasetParam(event);
  const body = parseWith(PoolLabelBody, jsonBody(event, ctx), 'request body');
  const classes = await promotedClasses(ctx, dataset);
  const datasetKey = await labelPoolImage(ctx.s3, ctx.config.bucket, {
    dataset,
    key: body.key,
    label: body.label.normalize('NFC'),
    classes,
    createClass: body.createClass,
  });
  return { dataset, key: body.key, datasetKey };
}
