/**
 * Size limits of an image, in one place: the presigned uploads (lib/api/uploads.ts), the extractor
 * (lib/pipeline/extract.ts) and the batch worker (lib/batch/worker.ts) read them from here.
 * The decoded-pixel limit (40 megapixels) is `DEFAULT_LIMIT_INPUT_PIXELS` in lib/images/preprocess.ts.
 */

/**
 * Largest stored image, bytes (50 MB). Decided from the size S3 reports (the event's, the listing's,
 * or the GET's Content-Length) before any byte is read; see docs/ARCHITECTURE.md "Size gates".
 */
export const MAX_IMAGE_BYTES = 50 * 1024 * 1024;

/** `12.3 MB`: sizes in messages, in the unit of the limit. */
export function formatMegabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
