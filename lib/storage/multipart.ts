import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { normalizeEtag, putObject } from './s3.ts';

/**
 * Part size of {@link putLargeObject}: 8 MiB, above S3's 5 MiB minimum and below the 11 MiB
 * request limit of the local emulator (fauxqs), so the same code runs against both.
 */
export const MULTIPART_PART_BYTES = 8 * 1024 * 1024;

/**
 * Writes an object of any size: one PUT up to {@link MULTIPART_PART_BYTES}, a multipart upload
 * beyond (parts sent one at a time; a failed upload is aborted so no parts are billed).
 * `ifNoneMatch: '*'` makes the write conditional (S3 checks it on the PUT, or on
 * CompleteMultipartUpload); a failed condition throws what `isConditionFailed` recognises.
 *
 * @example await putLargeObject(s3, bucket, 'models/pets/v1/model.onnx', bytes, { ifNoneMatch: '*' });
 */
export async function putLargeObject(
  s3: S3Client,
  bucket: string,
  key: string,
  body: Uint8Array,
  opts: { contentType?: string; metadata?: Record<string, string>; ifNoneMatch?: '*' } = {},
): Promise<{ etag: string; parts: number }> {
  if (body.byteLength <= MULTIPART_PART_BYTES) {
    return { ...(await putObject(s3, bucket, key, body, opts)), parts: 1 };
  }
  const created = await s3.send(
    new CreateMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      ContentType: opts.contentType,
      Metadata: opts.metadata,
    }),
  );
  const uploadId = created.UploadId;
  if (uploadId === undefined) throw new Error(`S3 returned no upload id for ${key}`);
  try {
    const parts: { ETag: string; PartNumber: number }[] = [];
    for (let offset = 0, n = 1; offset < body.byteLength; offset += MULTIPART_PART_BYTES, n++) {
      const out = await s3.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: n,
          Body: body.subarray(offset, offset + MULTIPART_PART_BYTES),
        }),
      );
      parts.push({ ETag: out.ETag ?? '', PartNumber: n });
    }
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
        ...(opts.ifNoneMatch !== undefined ? { IfNoneMatch: opts.ifNoneMatch } : {}),
      }),
    );
    return { etag: normalizeEtag(done.ETag), parts: parts.length };
  } catch (err) {
    await s3
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
      .catch(() => undefined);
    throw err;
  }
}
