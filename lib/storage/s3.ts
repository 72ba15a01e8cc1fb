import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import type { z } from 'zod';
import { NotFoundError, TlearnError } from '../errors.ts';
import { parseJson } from '../util/json-file.ts';

/**
 * Thin, typed S3 helpers shared by every function, the CLI and the local stack. They take the
 * client as an argument (created once per process) and normalize ETags (no quotes).
 */

/** Strips the quotes S3 puts around ETags, so ETags compare equal across APIs and events. */
export function normalizeEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/"/g, '');
}

function isNotFound(err: unknown): boolean {
  if (err instanceof S3ServiceException) {
    return err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404;
  }
  return false;
}

/** An object read whole into memory. */
export interface S3Object {
  body: Uint8Array;
  etag: string;
  metadata: Record<string, string>;
  contentType: string | undefined;
  lastModified: Date | undefined;
}

/**
 * An object over the byte limit of a bounded read ({@link getObject} with `maxBytes`): nothing past
 * the limit was read. Carries what S3 said about the object, so the caller can record why.
 */
export class ObjectTooLargeError extends TlearnError {
  /** Bytes S3 reported (Content-Length), or more than `maxBytes` when the body ran past it. */
  readonly size: number;
  readonly etag: string;
  constructor(message: string, size: number, etag: string) {
    super('ObjectTooLarge', message, 413);
    this.size = size;
    this.etag = etag;
  }
}

/** Options of {@link getObject}. */
export interface GetObjectOptions {
  /**
   * Refuse an object larger than this many bytes (ObjectTooLargeError): decided from the response's
   * Content-Length before the body is consumed, and enforced while reading (the stream is destroyed
   * at the limit), so an object of any size costs at most `maxBytes` of memory. @default no limit
   */
  maxBytes?: number;
}

/** Reads an object; throws NotFoundError when it does not exist. */
export async function getObject(
  s3: S3Client,
  bucket: string,
  key: string,
  opts: GetObjectOptions = {},
): Promise<S3Object> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!out.Body) throw new TlearnError('S3EmptyBody', `s3://${bucket}/${key} returned no body`);
    const body =
      opts.maxBytes === undefined
        ? await out.Body.transformToByteArray()
        : await readBounded(out.Body, out.ContentLength, opts.maxBytes, normalizeEtag(out.ETag));
    return {
      body,
      etag: normalizeEtag(out.ETag),
      metadata: out.Metadata ?? {},
      contentType: out.ContentType,
      lastModified: out.LastModified,
    };
  } catch (err) {
    if (isNotFound(err)) throw new NotFoundError(`s3://${bucket}/${key} does not exist`, { cause: err });
    throw err;
  }
}

/** What a GetObject body is in Node: a readable stream (`Readable` of node:stream). */
type BodyStream = AsyncIterable<Uint8Array> & { destroy?: (err?: Error) => void };

function tooLarge(size: number, maxBytes: number, etag: string, known: boolean): ObjectTooLargeError {
  const what = known ? `${size} bytes` : `more than ${maxBytes} bytes`;
  return new ObjectTooLargeError(`object is ${what}, over the limit of ${maxBytes} bytes`, size, etag);
}

/** Reads a body up to `maxBytes`; the stream is destroyed (the connection closed) past the limit. */
async function readBounded(
  body: unknown,
  contentLength: number | undefined,
  maxBytes: number,
  etag: string,
): Promise<Uint8Array> {
  const stream = body as BodyStream;
  if (contentLength !== undefined && contentLength > maxBytes) {
    stream.destroy?.();
    throw tooLarge(contentLength, maxBytes, etag, true);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.byteLength;
    if (total > maxBytes) {
      stream.destroy?.();
      throw tooLarge(total, maxBytes, etag, false);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** Object head; undefined when it does not exist. */
export async function headObject(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<
  { etag: string; size: number; metadata: Record<string, string>; lastModified: Date | undefined } | undefined
> {
  try {
    const out = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return {
      etag: normalizeEtag(out.ETag),
      size: out.ContentLength ?? 0,
      metadata: out.Metadata ?? {},
      lastModified: out.LastModified,
    };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Writes an object whole (a single PUT is atomic: readers see the old or the new object, never half). */
export async function putObject(
  s3: S3Client,
  bucket: string,
  key: string,
  body: Uint8Array | string,
  opts: {
    contentType?: string;
    metadata?: Record<string, string>;
    /** Write only if the current object has this ETag (S3 conditional write; 412 otherwise). */
    ifMatch?: string;
    /** `'*'`: write only if no object exists at the key. */
    ifNoneMatch?: '*';
  } = {},
): Promise<{ etag: string }> {
  const out = await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: body,
      ContentType: opts.contentType,
      Metadata: opts.metadata,
      ...(opts.ifMatch !== undefined ? { IfMatch: `"${normalizeEtag(opts.ifMatch)}"` } : {}),
      ...(opts.ifNoneMatch !== undefined ? { IfNoneMatch: opts.ifNoneMatch } : {}),
    }),
  );
  return { etag: normalizeEtag(out.ETag) };
}

/**
 * Whether an error is S3's answer to a failed conditional write (412 PreconditionFailed, or 409
 * ConditionalRequestConflict when a concurrent conditional write won): the caller re-reads and decides again.
 */
export function isConditionFailed(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false;
  const status = err.$metadata.httpStatusCode;
  return (
    err.name === 'PreconditionFailed' ||
    err.name === 'ConditionalRequestConflict' ||
    status === 412 ||
    status === 409
  );
}

/** Reads an object; undefined when it does not exist (other errors are thrown). */
export async function getObjectIfExists(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<S3Object | undefined> {
  try {
    return await getObject(s3, bucket, key);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

function parseJsonObject<S extends z.ZodTypeAny>(
  obj: S3Object,
  bucket: string,
  key: string,
  schema: S,
): z.output<S> {
  return parseJson(
    Buffer.from(obj.body).toString('utf8'),
    schema,
    (p) =>
      new TlearnError(
        'CorruptObject',
        p.kind === 'syntax'
          ? `s3://${bucket}/${key} is not valid JSON`
          : `s3://${bucket}/${key} does not match its schema: ${p.detail}`,
        500,
        { cause: p.cause },
      ),
  );
}

/** Reads and validates a JSON object; NotFoundError when absent, TlearnError when it does not parse. */
export async function getJson<S extends z.ZodTypeAny>(
  s3: S3Client,
  bucket: string,
  key: string,
  schema: S,
): Promise<z.output<S>> {
  return parseJsonObject(await getObject(s3, bucket, key), bucket, key, schema);
}

/** Reads and validates a JSON object like {@link getJson}; undefined when it does not exist. */
export async function getJsonIfExists<S extends z.ZodTypeAny>(
  s3: S3Client,
  bucket: string,
  key: string,
  schema: S,
): Promise<z.output<S> | undefined> {
  const obj = await getObjectIfExists(s3, bucket, key);
  return obj === undefined ? undefined : parseJsonObject(obj, bucket, key, schema);
}

/** Writes a value as pretty JSON. */
export async function putJson(
  s3: S3Client,
  bucket: string,
  key: string,
  value: unknown,
): Promise<{ etag: string }> {
  return putObject(s3, bucket, key, `${JSON.stringify(value, null, 2)}\n`, {
    contentType: 'application/json',
  });
}

/** Deletes an object (absent is fine). */
export async function deleteObject(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/**
 * Gives an object a new LastModified without changing its bytes or metadata: CopyObject onto
 * itself with `MetadataDirective: REPLACE` (S3 refuses a self-copy that changes nothing). Used to
 * mark a feature current again for an identical re-upload of its image, so listings tell the truth.
 */
export async function touchObject(
  s3: S3Client,
  bucket: string,
  key: string,
  head: { metadata: Record<string, string>; contentType?: string | undefined },
): Promise<void> {
  await s3.send(
    new CopyObjectCommand({
      Bucket: bucket,
      Key: key,
      CopySource: `${bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`,
      MetadataDirective: 'REPLACE',
      Metadata: head.metadata,
      ContentType: head.contentType,
    }),
  );
}

/** One listed object. */
export interface ListedObject {
  key: string;
  etag: string;
  size: number;
  lastModified: Date | undefined;
}

/** Lists every object under a prefix, following continuation tokens. */
export async function* listObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
): AsyncGenerator<ListedObject> {
  let token: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of out.Contents ?? []) {
      if (o.Key === undefined) continue;
      yield { key: o.Key, etag: normalizeEtag(o.ETag), size: o.Size ?? 0, lastModified: o.LastModified };
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
}

/** Collects `listObjects` into an array. */
export async function listAllObjects(s3: S3Client, bucket: string, prefix: string): Promise<ListedObject[]> {
  const all: ListedObject[] = [];
  for await (const o of listObjects(s3, bucket, prefix)) all.push(o);
  return all;
}

/** Lists the immediate "folders" under a prefix (CommonPrefixes with delimiter '/'). */
export async function listFolders(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const folders: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
    );
    for (const p of out.CommonPrefixes ?? [])
      if (p.Prefix) folders.push(p.Prefix.slice(prefix.length).replace(/\/$/, ''));
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return folders;
}
