/**
 * `GET /datasets/{d}/quality[?version=V]` (admin): the quality.json of the newest model version
 * that has one (or of version V).
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { NotFoundError, ValidationError } from '../errors.ts';
import { type QualityDocument, QualityDocumentSchema } from '../quality/document.ts';
import { datasetExists, datasetNotFound, sortVersions } from '../serving/store.ts';
import { MODEL_VERSION_RE, modelFileKey, modelsPrefix } from '../storage/keys.ts';
import { getObjectIfExists, listFolders } from '../storage/s3.ts';
import { datasetParam } from './http.ts';
import type { RouteContext } from './types.ts';

/** A quality.json as stored: parsed when it matches the schema, else as it is (with a warning). */
async function readQuality(
  ctx: RouteContext,
  dataset: string,
  version: string,
): Promise<QualityDocument | Record<string, unknown> | undefined> {
  const key = modelFileKey(dataset, version, 'quality.json');
  const obj = await getObjectIfExists(ctx.s3, ctx.config.bucket, key);
  if (obj === undefined) return undefined;
  const raw: unknown = JSON.parse(Buffer.from(obj.body).toString('utf8'));
  const parsed = QualityDocumentSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  ctx.log.warn('quality.json does not match its schema; returned as stored', { key });
  return typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : undefined;
}

/**
 * The route: newest version first (versions sort by time), the first one with a quality.json.
 * 404 `QualityNotFound` when the dataset has no trained version with one yet, `DatasetNotFound`
 * when the dataset does not exist, 400 for a malformed `version`.
 */
export async function getQualityRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<QualityDocument | Record<string, unknown>> {
  const dataset = datasetParam(event);
  const asked = event.queryStringParameters?.version;
  if (asked !== undefined && !MODEL_VERSION_RE.test(asked))
    throw new ValidationError(
      `version '${asked.slice(0, 80)}' is not a model version (YYYYMMDDTHHMMSSZ-id)`,
      {
        code: 'InvalidVersion',
      },
    );
  const versions = asked
    ? [asked]
    : sortVersions(await listFolders(ctx.s3, ctx.config.bucket, modelsPrefix(dataset))).reverse();
  for (const version of versions) {
    const doc = await readQuality(ctx, dataset, version);
    if (doc) return doc;
  }
  if (!(await datasetExists(ctx.s3, ctx.config.bucket, dataset))) throw datasetNotFound(dataset);
  throw new NotFoundError(
    asked
      ? `dataset '${dataset}' has no quality report for version ${asked}; GET /datasets/${dataset}/quality for the newest`
      : `dataset '${dataset}' has no quality report yet; POST /datasets/${dataset}/trainings to train it (every training writes one)`,
    { code: 'QualityNotFound' },
  );
}
