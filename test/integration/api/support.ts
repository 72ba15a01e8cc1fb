/**
 * Shared pieces of the API integration tests: sample events cloned from `events/`, hand-written
 * heads and model documents seeded into the emulator's bucket, and recording log / metrics.
 */
import { readFileSync } from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { ApiMetrics } from '../../../lib/api/types.ts';
import type { CurrentPointer } from '../../../lib/serving/current-pointer.ts';
import { currentModelKey, modelFileKey } from '../../../lib/storage/keys.ts';
import { putJson } from '../../../lib/storage/s3.ts';
import type { ModelDocument, ReportDocument } from '../../../lib/training/model-document.ts';
import type { Head } from '../../../lib/training/types.ts';
import type { Log } from '../../../lib/util/log.ts';
import { seededRandom } from '../../helpers/images.ts';

const EVENTS_DIR = new URL('../../../events/', import.meta.url);

/** A fresh copy of a sample event from `events/{name}.json`. */
export function loadEvent(name: string): APIGatewayProxyEvent {
  return JSON.parse(readFileSync(new URL(`${name}.json`, EVENTS_DIR), 'utf8')) as APIGatewayProxyEvent;
}

/** A request for `method path` built from a sample event, with the path parameters of a REST API resource. */
export function requestEvent(
  method: string,
  path: string,
  opts: {
    resource?: string;
    dataset?: string;
    query?: Record<string, string>;
    contentType?: string;
    body?: string | null;
    isBase64Encoded?: boolean;
  } = {},
): APIGatewayProxyEvent {
  const event = loadEvent('api-health');
  event.httpMethod = method;
  event.path = path;
  event.resource = opts.resource ?? path;
  event.pathParameters = opts.dataset !== undefined ? { d: opts.dataset } : null;
  event.queryStringParameters = opts.query ?? null;
  event.multiValueQueryStringParameters = opts.query
    ? Object.fromEntries(Object.entries(opts.query).map(([k, v]) => [k, [v]]))
    : null;
  event.headers = { ...event.headers };
  if (opts.contentType !== undefined) event.headers['Content-Type'] = opts.contentType;
  event.body = opts.body ?? null;
  event.isBase64Encoded = opts.isBase64Encoded ?? false;
  event.requestContext = { ...event.requestContext, httpMethod: method, resourcePath: event.resource };
  return event;
}

/** A prediction request: raw bytes (base64 with isBase64Encoded, as API Gateway sends image/*). */
export function predictBinary(
  dataset: string,
  bytes: Uint8Array,
  opts: { contentType?: string; query?: Record<string, string> } = {},
): APIGatewayProxyEvent {
  const event = loadEvent('api-predict-binary');
  event.path = `/datasets/${dataset}/predictions`;
  event.pathParameters = { d: dataset };
  event.headers = { ...event.headers, 'Content-Type': opts.contentType ?? 'image/png' };
  delete event.headers['Content-Length'];
  event.queryStringParameters = opts.query ?? null;
  event.body = Buffer.from(bytes).toString('base64');
  event.isBase64Encoded = true;
  return event;
}

/** A prediction request with a JSON body (given as a value, or as raw text for malformed bodies). */
export function predictJson(
  dataset: string,
  body: unknown,
  opts: { raw?: boolean; query?: Record<string, string> } = {},
): APIGatewayProxyEvent {
  const event = loadEvent('api-predict-json');
  event.path = `/datasets/${dataset}/predictions`;
  event.pathParameters = { d: dataset };
  event.queryStringParameters = opts.query ?? null;
  event.body = opts.raw ? String(body) : JSON.stringify(body);
  event.isBase64Encoded = false;
  return event;
}

/** The parsed JSON body of a response, after checking it is JSON. */
export function bodyOf<T = Record<string, unknown>>(res: APIGatewayProxyResult): T {
  const type = res.headers?.['content-type'];
  if (type !== 'application/json') throw new Error(`response content-type is ${String(type)}`);
  return JSON.parse(res.body) as T;
}

/** `{ error: { code, message } }` of an error response. */
export function errorOf(res: APIGatewayProxyResult): { code: string; message: string } {
  return bodyOf<{ error: { code: string; message: string } }>(res).error;
}

/** A head with seeded random weights of the given classes over `dims` features. */
export function makeHead(classes: string[], dims: number, spec: string, seed: number, scale = 20): Head {
  const rand = seededRandom(seed);
  const rows = classes.length === 2 ? 1 : classes.length;
  return {
    classes,
    coef: Array.from({ length: rows }, () => Array.from({ length: dims }, () => (rand() * 2 - 1) * scale)),
    intercept: Array.from({ length: rows }, () => rand() - 0.5),
    spec,
  };
}

/** A valid `model.json` around a head. */
export function modelDocument(head: Head, dataset: string, version: string): ModelDocument {
  return {
    format: 'tlearn-head',
    formatVersion: 1,
    dataset,
    version,
    classes: head.classes,
    coef: head.coef,
    intercept: head.intercept,
    spec: head.spec,
    trainedAt: '2026-11-28T10:30:00.000Z',
    options: { C: 1, maxIter: 100, tol: 1e-4, testSize: 0.2, seed: 42, refitOnAll: false },
    metrics: { accuracy: 0.75, logLoss: 0.5, nTrain: 8, nTest: 4, converged: true, nIter: 12 },
    randomWeights: head.spec.includes('/random-'),
  };
}

/** A valid `report.json` for a head (numbers are plausible, not computed). */
export function reportDocument(head: Head, dataset: string, version: string): ReportDocument {
  const scores = { precision: 1, recall: 1, f1: 1, support: 2 };
  return {
    format: 'tlearn-report',
    formatVersion: 1,
    dataset,
    version,
    spec: head.spec,
    classes: head.classes,
    evaluation: 'holdout',
    accuracy: 1,
    logLoss: 0.1,
    confusionMatrix: head.classes.map((_, i) => head.classes.map((_, j) => (i === j ? 2 : 0))),
    perClass: head.classes.map((label) => ({ label, ...scores })),
    macroAvg: scores,
    weightedAvg: scores,
    counts: {
      total: head.classes.length * 10,
      train: head.classes.length * 8,
      test: head.classes.length * 2,
      perClass: head.classes.map((label) => ({ label, total: 10, train: 8, test: 2 })),
    },
    split: { testSize: 0.2, seed: 42, stratified: true },
    solver: { name: 'lbfgs', nIter: 12, converged: true, objective: 1.5, nEval: 14 },
    timingsMs: { fit: 3, evaluate: 1 },
    trainedAt: '2026-11-28T10:30:00.000Z',
  };
}

/** Writes model.json (+ report.json unless `report: false`) of a version. */
export async function seedModel(
  s3: S3Client,
  bucket: string,
  dataset: string,
  version: string,
  head: Head,
  opts: { report?: boolean } = {},
): Promise<void> {
  await putJson(
    s3,
    bucket,
    modelFileKey(dataset, version, 'model.json'),
    modelDocument(head, dataset, version),
  );
  if (opts.report ?? true) {
    await putJson(
      s3,
      bucket,
      modelFileKey(dataset, version, 'report.json'),
      reportDocument(head, dataset, version),
    );
  }
}

/** Points `current.json` at a version (what the promote step does). */
export async function promote(
  s3: S3Client,
  bucket: string,
  dataset: string,
  version: string,
  previous: string | null = null,
): Promise<void> {
  const pointer: CurrentPointer = { version, promotedAt: '2026-11-28T10:31:00.000Z', previous };
  await putJson(s3, bucket, currentModelKey(dataset), pointer);
}

/** Independent reference of scikit-learn's predict_proba (float64, written out here on purpose). */
export function referenceProba(head: Head, x: Float32Array): number[] {
  const z = head.coef.map((row, k) =>
    row.reduce((acc, w, j) => acc + w * (x[j] ?? 0), head.intercept[k] ?? 0),
  );
  if (z.length === 1) {
    const p = 1 / (1 + Math.exp(-(z[0] ?? 0)));
    return [1 - p, p];
  }
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** A log that keeps its lines, to assert levels. */
export interface RecordingLog extends Log {
  lines: { level: 'debug' | 'info' | 'warn' | 'error'; message: string; extra?: Record<string, unknown> }[];
}

export function recordingLog(): RecordingLog {
  const lines: RecordingLog['lines'] = [];
  const at =
    (level: RecordingLog['lines'][number]['level']) =>
    (message: string, extra?: Record<string, unknown>): void => {
      lines.push({ level, message, ...(extra ? { extra } : {}) });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Metrics that keep what was published. */
export function recordingMetrics(): ApiMetrics & {
  predictions: number[];
  clientErrors: { status: number; code: string }[];
} {
  const predictions: number[] = [];
  const clientErrors: { status: number; code: string }[] = [];
  return {
    predictions,
    clientErrors,
    prediction(ms) {
      predictions.push(ms);
    },
    clientError(status, code) {
      clientErrors.push({ status, code });
    },
  };
}
