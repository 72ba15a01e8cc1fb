/**
 * `GET /console/ort/{file}`: what the console loads only when the user asks to run a model in the
 * browser ("Try it" → "Run in this browser"), built by console/build.ts into `ort/` next to the
 * page. Public like the page (code, no data).
 *
 * - `browser-model.mjs` (~80 KB, onnxruntime-web's JS + console/src/browser-model.ts): answered
 *   directly; the page's CSP allows same-origin scripts for it.
 * - `ort-wasm-simd-threaded.wasm` (~15 MB): too big for a Lambda response through API Gateway
 *   (6 MB), so, like the model export, a 302 to a presigned GET of a copy in the bucket,
 *   `console/ort/{sha256 prefix}/{file}`, written once (content-addressed, so a new build never
 *   serves an old copy and concurrent first requests write the same bytes). Locally the same
 *   code writes to the S3 emulator: one path on AWS and locally.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { NotFoundError } from '../errors.ts';
import { presignedDownloadUrl } from '../export/model-export.ts';
import { CONSOLE_ASSETS_PREFIX } from '../storage/keys.ts';
import { putLargeObject } from '../storage/multipart.ts';
import { headObject, isConditionFailed } from '../storage/s3.ts';
import { consoleNotBuiltError } from './console-page.ts';
import { getHeader, jsonResponse } from './http.ts';
import type { RouteContext } from './types.ts';

/** Folder (next to index.html) and URL segment of the lazily loaded files. */
export const ORT_DIR = 'ort';
/** The module bundling onnxruntime-web (wasm build) with console/src/browser-model.ts. */
export const BROWSER_MODEL_MODULE = 'browser-model.mjs';
/** The one onnxruntime-web binary the module loads (single-threaded use of the SIMD build). */
export const ORT_WASM_FILE = 'ort-wasm-simd-threaded.wasm';

interface Asset {
  bytes: Buffer;
  etag: string;
}

const assets = new Map<string, Promise<Asset>>();
/** The built file, read once per cold start (a failed read is retried on the next request). */
function readAsset(path: string): Promise<Asset> {
  let p = assets.get(path);
  if (p === undefined) {
    p = readFile(path).then((bytes) => ({
      bytes,
      etag: createHash('sha256').update(bytes).digest('hex').slice(0, 32),
    }));
    p.catch(() => assets.delete(path));
    assets.set(path, p);
  }
  return p;
}

/** `console/ort/{sha}/{file}`: the bucket copy of a built file. */
export function consoleAssetKey(etag: string, file: string): string {
  return `${CONSOLE_ASSETS_PREFIX}${ORT_DIR}/${etag.slice(0, 16)}/${file}`;
}

/** Keys this container has seen in the bucket (content-addressed, so they never go stale). */
const copied = new Set<string>();

/** Makes sure the bucket holds the copy of `asset` at `key` (a HEAD once per container when it does). */
async function ensureAssetCopy(ctx: RouteContext, key: string, asset: Asset): Promise<void> {
  const { s3 } = ctx;
  const { bucket } = ctx.config;
  if (copied.has(`${bucket}/${key}`)) return;
  if ((await headObject(s3, bucket, key)) !== undefined) {
    copied.add(`${bucket}/${key}`);
    return;
  }
  try {
    await putLargeObject(s3, bucket, key, asset.bytes, { contentType: 'application/wasm', ifNoneMatch: '*' });
    ctx.log.info('console asset copied to the bucket', { key, bytes: asset.bytes.length });
  } catch (err) {
    // Written meanwhile by a concurrent first request: same name, same bytes.
    if (!isConditionFailed(err)) throw err;
  }
  copied.add(`${bucket}/${key}`);
}

/** `GET /console/ort/{file}` → the module (200) or a 302 to the bucket copy of the wasm. */
export async function consoleAssetRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<APIGatewayProxyResult> {
  const file = event.pathParameters?.file ?? '';
  if (file !== BROWSER_MODEL_MODULE && file !== ORT_WASM_FILE) {
    throw new NotFoundError(
      `no console file '${file.slice(0, 60)}' here; the files are ${BROWSER_MODEL_MODULE} and ${ORT_WASM_FILE}`,
      { code: 'ConsoleFileNotFound' },
    );
  }
  const dir = ctx.config.consoleDir;
  if (dir === undefined) throw consoleNotBuiltError();
  let asset: Asset;
  try {
    asset = await readAsset(join(dir, ORT_DIR, file));
  } catch (err) {
    throw consoleNotBuiltError(err);
  }
  if (file === ORT_WASM_FILE) {
    const key = consoleAssetKey(asset.etag, file);
    await ensureAssetCopy(ctx, key, asset);
    const url = await presignedDownloadUrl(ctx.s3, ctx.config.bucket, key, file);
    return jsonResponse(302, { url }, { location: url, 'cache-control': 'no-store' });
  }
  const etag = `"${asset.etag}"`;
  const headers = { etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
  if (getHeader(event, 'if-none-match') === etag) return { statusCode: 304, headers, body: '' };
  return {
    statusCode: 200,
    headers: { 'content-type': 'text/javascript; charset=utf-8', ...headers },
    body: asset.bytes.toString('utf8'),
  };
}
