/**
 * `models/{d}/{version}/model.onnx`: the one-file export, written once per version (the first
 * request builds it; a conditional PUT makes concurrent first requests agree) and handed out as a
 * presigned S3 URL, since a ~60 MB file cannot be an API Gateway response body.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NotFoundError, TlearnError } from '../errors.ts';
import type { LoadedWeights } from '../model/weights.ts';
import { MODELS_PREFIX } from '../storage/keys.ts';
import { putLargeObject } from '../storage/multipart.ts';
import { getObject, headObject, isConditionFailed } from '../storage/s3.ts';
import { parseModelDocument } from '../training/model-document.ts';
import { type Log, silentLog } from '../util/log.ts';
import { buildModelExport } from './onnx-model.ts';

/** Lifetime of a presigned export URL (15 minutes: long enough for a slow 60 MB download). */
export const EXPORT_URL_TTL_SECONDS = 900;
/** Content type of `model.onnx` objects. */
export const ONNX_CONTENT_TYPE = 'application/octet-stream';

/** `models/{d}/{version}/model.onnx`. */
export function modelExportKey(dataset: string, version: string): string {
  return `${MODELS_PREFIX}${dataset}/${version}/model.onnx`;
}

/** Dependencies of {@link ensureModelExport}. */
export interface ModelExportDeps {
  s3: S3Client;
  bucket: string;
  /**
   * Loads the deployment's VGG16 weights (only called when the export does not exist yet; the
   * weights are not kept afterwards).
   */
  baseWeights: () => Promise<LoadedWeights>;
  log?: Log;
}

/** Where an export is and whether this call wrote it. */
export interface ModelExport {
  key: string;
  bytes: number;
  created: boolean;
}

/**
 * Makes sure `models/{d}/{version}/model.onnx` exists: a HEAD when it does; otherwise reads the
 * version's `model.json`, loads the base weights, builds the file (`buildModelExport`) and writes
 * it with `If-None-Match: *` (a multipart upload: ~60 MB), so a concurrent first request that
 * wrote it meanwhile wins. The bytes depend only on the model and the weights, so even where the
 * condition is not enforced (the local emulator's multipart completion) a rewrite changes nothing.
 *
 * @throws NotFoundError `ModelVersionNotFound` when the version has no `model.json`
 * @throws SpecMismatchError when the loaded weights are not those of the model's spec
 */
export async function ensureModelExport(
  deps: ModelExportDeps,
  dataset: string,
  version: string,
): Promise<ModelExport> {
  const log = deps.log ?? silentLog;
  const key = modelExportKey(dataset, version);
  const existing = await headObject(deps.s3, deps.bucket, key);
  if (existing !== undefined) return { key, bytes: existing.size, created: false };

  const modelKey = `${MODELS_PREFIX}${dataset}/${version}/model.json`;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from((await getObject(deps.s3, deps.bucket, modelKey)).body).toString('utf8'));
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new NotFoundError(
        `dataset '${dataset}' has no model version '${version}'; GET /datasets/${dataset}/model shows the current one`,
        { code: 'ModelVersionNotFound' },
      );
    }
    throw new TlearnError('CorruptObject', `${modelKey} is not valid JSON`, 500, { cause: err });
  }
  const model = parseModelDocument(json);
  const started = performance.now();
  const weights = await deps.baseWeights();
  const bytes = await buildModelExport({
    weights: weights.weights,
    weightsId: weights.weightsId,
    model,
    dataset,
    version,
  });
  try {
    await putLargeObject(deps.s3, deps.bucket, key, bytes, {
      contentType: ONNX_CONTENT_TYPE,
      ifNoneMatch: '*',
      metadata: { 'model-version': version, 'feature-spec': model.spec },
    });
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    log.info('model export was written concurrently; using that one', { dataset, version });
    return { key, bytes: bytes.byteLength, created: false };
  }
  log.info('model exported as ONNX', {
    dataset,
    version,
    bytes: bytes.byteLength,
    ms: Math.round(performance.now() - started),
  });
  return { key, bytes: bytes.byteLength, created: true };
}

/**
 * A presigned GET URL of an object, downloaded under `filename` (`Content-Disposition`).
 *
 * @example const url = await presignedDownloadUrl(s3, bucket, key, 'pets-v1.onnx');
 */
export async function presignedDownloadUrl(
  s3: S3Client,
  bucket: string,
  key: string,
  filename: string,
  expiresIn = EXPORT_URL_TTL_SECONDS,
): Promise<string> {
  return getSignedUrl(
    s3,
    new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      ResponseContentDisposition: `attachment; filename="${filename.replace(/["\\]/g, '_')}"`,
    }),
    { expiresIn },
  );
}
