/**
 * The bucket's CORS rule for the console: browser uploads (it PUTs images to presigned URLs from
 * `POST /datasets/{d}/uploads`) and downloads (it GETs the presigned URLs of the model export and
 * of onnxruntime-web's wasm to run a model in the browser). One definition: the CDK bucket (infra/constructs/data-bucket.ts)
 * and the local emulator (lib/local/emulator.ts) both apply it, so a page that uploads locally
 * uploads deployed too.
 */

/** What a browser may do cross-origin on the bucket: PUT to or GET from a presigned URL. */
export const UPLOAD_CORS = {
  allowedMethods: ['PUT', 'GET'] as const,
  /**
   * The presigned PUT signs `content-type` and `if-none-match` (no silent overwrite,
   * lib/api/uploads.ts); the SDK's checksum headers may come along.
   */
  allowedHeaders: ['content-type', 'if-none-match', 'x-amz-*'] as const,
  /** The page reads the ETag of what it uploaded. */
  exposedHeaders: ['ETag'] as const,
  maxAgeSeconds: 3000,
};

/** Whether a request header name is allowed by {@link UPLOAD_CORS} (`x-amz-*` is a prefix). */
export function isAllowedUploadHeader(name: string): boolean {
  const n = name.trim().toLowerCase();
  return UPLOAD_CORS.allowedHeaders.some((h) => (h.endsWith('*') ? n.startsWith(h.slice(0, -1)) : n === h));
}
