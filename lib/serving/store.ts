/**
 * What the API reads from the bucket: the promoted-version pointer, model documents, reports,
 * and whether a dataset exists at all. Every read names the dataset in its errors; S3 paths and
 * bucket names never reach a client (a missing model file is a 500, logged with the key).
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { z } from 'zod';
import { ConflictError, NotFoundError, TlearnError } from '../errors.ts';
import { featureDims, parseSpec } from '../model/spec.ts';
import {
  currentModelKey,
  datasetPrefix,
  MODEL_VERSION_RE,
  modelFileKey,
  modelsPrefix,
} from '../storage/keys.ts';
import { getObject, getObjectIfExists } from '../storage/s3.ts';
import { headFromModelDocument, ModelDocument, ReportDocument } from '../training/model-document.ts';
import type { Head } from '../training/types.ts';
import { parseJson } from '../util/json-file.ts';
import type { Log } from '../util/log.ts';
import { CurrentPointer, compareVersions } from './current-pointer.ts';

/** A stored JSON document read through the one JSON + schema parser (lib/util/json-file.ts). */
function parseStored<S extends z.ZodTypeAny>(bytes: Uint8Array, schema: S, what: string): z.output<S> {
  return parseJson(Buffer.from(bytes).toString('utf8'), schema, (p) =>
    p.kind === 'syntax'
      ? new TlearnError('CorruptObject', `${what} is not valid JSON`, 500, { cause: p.cause })
      : new TlearnError('CorruptObject', `${what} does not match its schema: ${p.detail}`, 500, {
          cause: p.cause,
        }),
  );
}

/** Whether anything exists under `prefix` (one LIST of at most one key). */
export async function hasAnyObject(s3: S3Client, bucket: string, prefix: string): Promise<boolean> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }));
  return (out.KeyCount ?? out.Contents?.length ?? 0) > 0;
}

/** Whether a dataset is known: it has images or models. */
export async function datasetExists(s3: S3Client, bucket: string, dataset: string): Promise<boolean> {
  const [images, models] = await Promise.all([
    hasAnyObject(s3, bucket, datasetPrefix(dataset)),
    hasAnyObject(s3, bucket, modelsPrefix(dataset)),
  ]);
  return images || models;
}

/** 404 for an unknown dataset, with what to do. */
export function datasetNotFound(dataset: string): NotFoundError {
  return new NotFoundError(
    `dataset '${dataset}' does not exist; upload images to datasets/${dataset}/{label}/ first`,
    { code: 'DatasetNotFound' },
  );
}

/** 409 for a dataset that exists but has no promoted model. */
export function noPromotedModel(dataset: string): ConflictError {
  return new ConflictError(
    `dataset '${dataset}' has no promoted model yet; POST /datasets/${dataset}/trainings to train one`,
    { code: 'NoPromotedModel' },
  );
}

/** The error for a missing `current.json`: 404 when the dataset is unknown, else 409. */
export async function missingModelError(
  s3: S3Client,
  bucket: string,
  dataset: string,
): Promise<NotFoundError | ConflictError> {
  return (await datasetExists(s3, bucket, dataset)) ? noPromotedModel(dataset) : datasetNotFound(dataset);
}

/** The pointer and its ETag, or undefined when nothing is promoted. */
export async function readCurrentPointer(
  s3: S3Client,
  bucket: string,
  dataset: string,
): Promise<{ pointer: CurrentPointer; etag: string } | undefined> {
  const key = currentModelKey(dataset);
  try {
    const obj = await getObject(s3, bucket, key);
    return { pointer: parseStored(obj.body, CurrentPointer, key), etag: obj.etag };
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** A promoted model's file; a missing file is a broken promotion (500), never the client's fault. */
async function readModelFileBytes(
  s3: S3Client,
  bucket: string,
  dataset: string,
  version: string,
  file: 'model.json' | 'report.json',
): Promise<Uint8Array | undefined> {
  return (await getObjectIfExists(s3, bucket, modelFileKey(dataset, version, file)))?.body;
}

/** Reads and validates `models/{d}/{version}/model.json`. */
export async function readModelFile(
  s3: S3Client,
  bucket: string,
  dataset: string,
  version: string,
): Promise<ModelDocument> {
  const key = modelFileKey(dataset, version, 'model.json');
  const bytes = await readModelFileBytes(s3, bucket, dataset, version, 'model.json');
  if (bytes === undefined) {
    throw new TlearnError('ModelMissing', `${key} is promoted by current.json but does not exist`, 500);
  }
  return parseStored(bytes, ModelDocument, key);
}

/** A report.json as stored: parsed, or (written by an older trainer) as it is. */
export type StoredReport =
  | { kind: 'parsed'; report: ReportDocument }
  | { kind: 'raw'; raw: Record<string, unknown> };

/**
 * Reads `models/{d}/{version}/report.json`, or undefined when there is none. A report that does not
 * match the current schema (e.g. written by an older trainer) is returned as it is, with a warning
 * logged: the report is informative, it must not make the model route fail.
 */
export async function readReport(
  s3: S3Client,
  bucket: string,
  dataset: string,
  version: string,
  log: Log,
): Promise<StoredReport | undefined> {
  const key = modelFileKey(dataset, version, 'report.json');
  const bytes = await readModelFileBytes(s3, bucket, dataset, version, 'report.json');
  if (bytes === undefined) return undefined;
  try {
    return { kind: 'parsed', report: parseStored(bytes, ReportDocument, key) };
  } catch (err) {
    log.warn('report.json does not match its schema; returned as stored', { key, error: String(err) });
    const raw: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    return typeof raw === 'object' && raw !== null
      ? { kind: 'raw', raw: raw as Record<string, unknown> }
      : undefined;
  }
}

/**
 * The head of a model file, with its shapes checked against its spec (one row per class, or one
 * row for two classes; each row as long as the spec's feature vector).
 */
export function headFromModelFile(doc: ModelDocument, where: string): Head {
  const k = doc.classes.length;
  const rows = k === 2 ? 1 : k;
  let dims: number;
  try {
    dims = featureDims(parseSpec(doc.spec));
  } catch (err) {
    // parseSpec's ValidationError would be a 400; a bad stored spec is our fault, not the client's.
    throw new TlearnError('CorruptObject', `${where}: invalid spec '${doc.spec}'`, 500, { cause: err });
  }
  const badRow = doc.coef.findIndex((r) => r.length !== dims);
  if (doc.coef.length !== rows || doc.intercept.length !== rows || badRow >= 0) {
    throw new TlearnError(
      'CorruptObject',
      `${where}: head shapes do not fit ${k} classes of ${dims} features (coef ${doc.coef.length}x${doc.coef[0]?.length ?? 0}, intercept ${doc.intercept.length})`,
      500,
    );
  }
  return headFromModelDocument(doc);
}

/** Model versions of a dataset (folders under `models/{d}/` named like versions), oldest first. */
export function sortVersions(folders: readonly string[]): string[] {
  return folders.filter((f) => MODEL_VERSION_RE.test(f)).sort(compareVersions);
}

/** The time encoded in a version id (`YYYYMMDDTHHMMSSZ-…`) as ISO-8601. */
export function versionTime(version: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(version);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  return `${y}-${mo}-${d}T${h}:${mi}:${s}Z`;
}
