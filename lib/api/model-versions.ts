/**
 * The console's model and data routes: `GET /datasets/{d}/models` (every version with its accuracy
 * and date), `POST /datasets/{d}/model/promote {version}` (promote or roll back), and
 * `GET /datasets/{d}/failures` (images that cannot be used, with the reason).
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import { ConflictError, NotFoundError, TlearnError } from '../errors.ts';
import { FeatureErrorRecord } from '../features/metadata.ts';
import { isRandomWeights } from '../model/spec.ts';
import { scanDataset } from '../pipeline/readiness.ts';
import { type CurrentPointer, PointerChangedError, writeCurrentPointer } from '../serving/current-pointer.ts';
import { datasetNotFound, readCurrentPointer, sortVersions, versionTime } from '../serving/store.ts';
import { featureErrorKey, MODEL_VERSION_RE, modelFileKey, modelsPrefix } from '../storage/keys.ts';
import { getJson, getJsonIfExists, listFolders } from '../storage/s3.ts';
import { ModelDocument } from '../training/model-document.ts';
import { mapWithConcurrency } from '../util/concurrency.ts';
import { datasetParam, parseWith, readJsonBody } from './http.ts';
import type { FailureItem, ModelVersionItem } from './schemas.ts';
import type { RouteContext } from './types.ts';

/** Versions listed by `GET /datasets/{d}/models`, newest first. */
export const MAX_LISTED_VERSIONS = 30;
/** Failed images listed by `GET /datasets/{d}/failures` (the count is always complete). */
export const MAX_LISTED_FAILURES = 100;

export type { FailureItem, ModelVersionItem } from './schemas.ts';

async function readModel(
  ctx: RouteContext,
  dataset: string,
  version: string,
): Promise<ModelDocument | undefined> {
  return getJsonIfExists(
    ctx.s3,
    ctx.config.bucket,
    modelFileKey(dataset, version, 'model.json'),
    ModelDocument,
  );
}

/** `GET /datasets/{d}/models`: the newest versions, with accuracy and date, and which one is served. */
export async function listModelVersionsRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ dataset: string; current: string | null; versions: ModelVersionItem[] }> {
  const dataset = datasetParam(event);
  const [folders, current] = await Promise.all([
    listFolders(ctx.s3, ctx.config.bucket, modelsPrefix(dataset)),
    readCurrentPointer(ctx.s3, ctx.config.bucket, dataset),
  ]);
  const newest = sortVersions(folders).reverse().slice(0, MAX_LISTED_VERSIONS);
  const versions = await mapWithConcurrency(newest, 4, async (version): Promise<ModelVersionItem> => {
    const doc = await readModel(ctx, dataset, version);
    return {
      version,
      trainedAt: doc?.trainedAt ?? versionTime(version) ?? null,
      complete: doc !== undefined,
      current: version === current?.pointer.version,
      accuracy: doc?.metrics.accuracy ?? null,
      classes: doc?.classes ?? [],
      randomWeights: doc ? doc.randomWeights || isRandomWeights(doc.spec) : false,
    };
  });
  return { dataset, current: current?.pointer.version ?? null, versions };
}

/** `POST /datasets/{d}/model/promote` body. */
export const PromoteRequest = z.object({
  version: z.string().regex(MODEL_VERSION_RE, 'a model version like 20260101T000000Z-abc123'),
});

/**
 * `POST /datasets/{d}/model/promote {version}`: serves `version` (newer or older: a rollback is a
 * promotion of an older version). Like the promote step, the pointer is written conditionally on
 * the one read (`If-Match`, or `If-None-Match: *` when none), so a promotion landing in between is
 * never silently undone: that is a 409 asking to look again.
 */
export async function promoteVersionRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ dataset: string; pointer: CurrentPointer; changed: boolean }> {
  const dataset = datasetParam(event);
  const { version } = parseWith(
    PromoteRequest,
    readJsonBody(event, ctx.config.maxBodyBytes),
    'promote request',
  );
  const doc = await readModel(ctx, dataset, version);
  if (doc === undefined || (doc.dataset !== undefined && doc.dataset !== dataset)) {
    throw new NotFoundError(
      `dataset '${dataset}' has no complete model version ${version}; GET /datasets/${dataset}/models lists them`,
      { code: 'ModelVersionNotFound' },
    );
  }
  const current = await readCurrentPointer(ctx.s3, ctx.config.bucket, dataset);
  if (current?.pointer.version === version) return { dataset, pointer: current.pointer, changed: false };
  let pointer: CurrentPointer;
  try {
    pointer = await writeCurrentPointer(ctx.s3, ctx.config.bucket, dataset, {
      version,
      now: ctx.now(),
      read: current,
    });
  } catch (err) {
    if (err instanceof PointerChangedError)
      throw new ConflictError(
        `the served model of '${dataset}' changed while promoting (a training finished?); reload and try again`,
        { code: 'PromotionConflict', cause: err },
      );
    throw err;
  }
  ctx.log.info('model promoted by request', { dataset, version, previous: pointer.previous });
  return { dataset, pointer, changed: true };
}

/** `GET /datasets/{d}/failures`: images whose extraction failed, with the reason from their error record. */
export async function listFailuresRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<{ dataset: string; total: number; failures: FailureItem[] }> {
  const dataset = datasetParam(event);
  const scan = await scanDataset(ctx.s3, ctx.config.bucket, dataset);
  if (scan.entries.length === 0 && scan.skipped.length === 0) throw datasetNotFound(dataset);
  const failed = scan.entries.filter((e) => e.status === 'failed');
  const failures = await mapWithConcurrency(
    failed.slice(0, MAX_LISTED_FAILURES),
    8,
    async (e): Promise<FailureItem> => {
      try {
        const rec = await getJson(ctx.s3, ctx.config.bucket, featureErrorKey(e.image), FeatureErrorRecord);
        return { key: e.image.key, label: e.image.label, code: rec.code ?? null, reason: rec.reason };
      } catch (err) {
        if (err instanceof TlearnError && err.status < 500)
          return { key: e.image.key, label: e.image.label, code: null, reason: 'error record vanished' };
        return { key: e.image.key, label: e.image.label, code: null, reason: 'error record unreadable' };
      }
    },
  );
  return { dataset, total: failed.length, failures };
}
