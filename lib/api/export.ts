/**
 * `GET /datasets/{d}/model/export?format=onnx[&version=V]`: a 302 to a presigned S3 URL of the
 * version's one-file ONNX export (`lib/export/`), built on the first request for that version.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { TlearnError, ValidationError } from '../errors.ts';
import { EXPORT_URL_TTL_SECONDS, ensureModelExport, presignedDownloadUrl } from '../export/model-export.ts';
import { missingModelError, readCurrentPointer } from '../serving/store.ts';
import { MODEL_VERSION_RE } from '../storage/keys.ts';
import { datasetParam, jsonResponse } from './http.ts';
import { EXPORT_FORMATS, type ExportResponse } from './schemas.ts';
import type { RouteContext } from './types.ts';

export { EXPORT_FORMATS, type ExportResponse } from './schemas.ts';

/** Answers the export route with a 302 whose `Location` is a presigned GET of `model.onnx`. */
export async function exportModelRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<APIGatewayProxyResult> {
  const dataset = datasetParam(event);
  const query = event.queryStringParameters ?? {};
  const format = query.format ?? 'onnx';
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new ValidationError(
      `format must be one of ${EXPORT_FORMATS.join(', ')} (got '${format.slice(0, 40)}')`,
      { code: 'InvalidFormat' },
    );
  }
  let version = query.version;
  if (version !== undefined && !MODEL_VERSION_RE.test(version)) {
    throw new ValidationError(
      `version must look like 20261128T103418Z-ab12cd (got '${version.slice(0, 40)}'); omit it for the promoted model`,
      { code: 'InvalidVersion' },
    );
  }
  const { s3 } = ctx;
  const { bucket } = ctx.config;
  if (version === undefined) {
    const current = await readCurrentPointer(s3, bucket, dataset);
    if (current === undefined) throw await missingModelError(s3, bucket, dataset);
    version = current.pointer.version;
  }
  if (ctx.baseWeights === undefined) {
    throw new TlearnError(
      'ExportUnavailable',
      'this API was started without base weights to export with',
      501,
    );
  }
  const out = await ensureModelExport(
    { s3, bucket, baseWeights: ctx.baseWeights, log: ctx.log },
    dataset,
    version,
  );
  const url = await presignedDownloadUrl(s3, bucket, out.key, `${dataset}-${version}.onnx`);
  const body: ExportResponse = {
    dataset,
    version,
    format: 'onnx',
    url,
    bytes: out.bytes,
    expiresInSeconds: EXPORT_URL_TTL_SECONDS,
  };
  // `redirect=false`: the same body with a 200, for browsers (a followed redirect would carry the
  // x-api-key header to S3, which a presigned URL neither needs nor allows cross-origin).
  if (query.redirect === 'false') return jsonResponse(200, body, { 'cache-control': 'no-store' });
  return jsonResponse(302, body, { location: url, 'cache-control': 'no-store' });
}
