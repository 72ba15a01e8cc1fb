/**
 * Starting a batch and reading its status (`POST` / `GET /datasets/{d}/batches…`): the POST lists
 * the prefix (bounded), pins the promoted model version, writes the manifest and queues one message
 * per chunk; the GET derives the status from what the workers wrote (parts, summary, failed.json).
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { ConflictError, NotFoundError, TlearnError, ValidationError } from '../errors.ts';
import {
  batchInputPrefix,
  batchKeys,
  DATASETS_PREFIX,
  IMAGE_EXTENSIONS,
  newModelVersion,
  parseBatchInputPrefix,
  partNumber,
} from '../storage/keys.ts';
import {
  getJson,
  getJsonIfExists,
  getObjectIfExists,
  isConditionFailed,
  listObjects,
  putObject,
} from '../storage/s3.ts';
import {
  BatchRowSchema,
  type BatchStatus,
  type ChunkMessage,
  FailedSchema,
  type Manifest,
  ManifestSchema,
  PART_METADATA,
  SummarySchema,
  ThresholdField,
} from './layout.ts';
import { BATCH_SETTINGS, DEFAULT_INBOX_PREFIX } from './settings.ts';

/** The POST body. */
export const StartBatchBody = z
  .object({
    prefix: z.string().min(1, "'prefix' is empty").max(1024),
    threshold: ThresholdField.optional(),
  })
  .strict();
export type StartBatchBody = z.infer<typeof StartBatchBody>;

/** What starting a batch needs. */
export interface BatchDeps {
  s3: S3Client;
  bucket: string;
  /** The batch queue (messages: {@link ChunkMessage}). */
  sqs: Pick<SQSClient, 'send'>;
  queueUrl: string;
  now?: () => Date;
  /** Images per message. @default BATCH_SETTINGS.chunkSize */
  chunkSize?: number;
  /** @default BATCH_SETTINGS.maxImages */
  maxImages?: number;
  /** Images of no dataset a batch may read too. @default DEFAULT_INBOX_PREFIX */
  inboxPrefix?: string;
}

/** A new batch id (`YYYYMMDDTHHMMSSZ-{8 chars}`), also made by the CLI before it uploads. */
export function newBatchId(now: Date = new Date()): string {
  return newModelVersion(now, randomBytes(6).toString('hex').slice(0, 8));
}

/**
 * The batch id a prefix implies (`batches/{d}/{id}/input/`), a new one for the dataset's own images
 * (`datasets/{d}/…`) or the inbox (`inbox/…`); a 400 `InvalidPrefix` for anything else: another
 * dataset's images, features, models, locks, other batches.
 */
export function batchIdForPrefix(
  dataset: string,
  prefix: string,
  now: Date,
  inboxPrefix: string = DEFAULT_INBOX_PREFIX,
): string {
  if (prefix.startsWith(`${DATASETS_PREFIX}${dataset}/`) || prefix.startsWith(inboxPrefix))
    return newBatchId(now);
  const batch = parseBatchInputPrefix(prefix);
  if (batch !== undefined) {
    if (batch.dataset !== dataset) {
      throw new ValidationError(`'prefix' names a batch of dataset '${batch.dataset}', not '${dataset}'`, {
        code: 'InvalidPrefix',
      });
    }
    return batch.id;
  }
  throw new ValidationError(
    `'prefix' must start with ${DATASETS_PREFIX}${dataset}/ (this dataset's images) or ${inboxPrefix} (images of no dataset), or be ${batchInputPrefix(dataset, '{id}')} (images you uploaded); got '${prefix.slice(0, 200)}'`,
    { code: 'InvalidPrefix' },
  );
}

function isImageKey(key: string): boolean {
  const lower = key.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** Lists the images under a prefix (at most `max`; more is a 400 that says how to split). */
export async function listBatchImages(
  s3: S3Client,
  bucket: string,
  prefix: string,
  max: number,
): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of listObjects(s3, bucket, prefix)) {
    if (!isImageKey(o.key)) continue;
    if (keys.length >= max) {
      throw new ValidationError(
        `more than ${max} images under '${prefix}'; start one batch per narrower prefix`,
        { code: 'TooManyImages' },
      );
    }
    keys.push(o.key);
  }
  return keys;
}

/** Splits keys into chunks of `size`. */
export function chunkKeys(keys: readonly string[], size: number): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < keys.length; i += size) out.push(keys.slice(i, i + size));
  return out;
}

/**
 * Starts a batch: lists the prefix, writes `manifest.json` (only if the batch is new: a second POST
 * of the same upload prefix is a 409), then queues one message per chunk.
 */
export async function startBatch(
  deps: BatchDeps,
  dataset: string,
  body: StartBatchBody,
  modelVersion: string,
): Promise<{ id: string; status: 'running' }> {
  const now = (deps.now ?? (() => new Date()))();
  const id = batchIdForPrefix(dataset, body.prefix, now, deps.inboxPrefix);
  const keys = await listBatchImages(
    deps.s3,
    deps.bucket,
    body.prefix,
    deps.maxImages ?? BATCH_SETTINGS.maxImages,
  );
  if (keys.length === 0) {
    throw new ValidationError(
      `no images (${IMAGE_EXTENSIONS.join(', ')}) under '${body.prefix}'; check the prefix (it is case-sensitive and usually ends with '/')`,
      { code: 'NoImages' },
    );
  }
  const chunks = chunkKeys(keys, deps.chunkSize ?? BATCH_SETTINGS.chunkSize);
  const manifest: Manifest = {
    id,
    dataset,
    prefix: body.prefix,
    createdAt: now.toISOString(),
    modelVersion,
    threshold: body.threshold ?? 'none',
    chunks,
    total: keys.length,
  };
  const k = batchKeys(dataset, id);
  try {
    await putObject(deps.s3, deps.bucket, k.manifest, `${JSON.stringify(manifest)}\n`, {
      contentType: 'application/json',
      ifNoneMatch: '*',
    });
  } catch (err) {
    if (isConditionFailed(err)) {
      throw new ConflictError(`batch ${id} of '${dataset}' already exists; upload to a new batch id`, {
        code: 'BatchExists',
      });
    }
    throw err;
  }
  const messages: ChunkMessage[] = chunks.map((_, part) => ({ dataset, id, part }));
  for (let i = 0; i < messages.length; i += 10) {
    const group = messages.slice(i, i + 10);
    const out = await deps.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: deps.queueUrl,
        Entries: group.map((m) => ({ Id: String(m.part), MessageBody: JSON.stringify(m) })),
      }),
    );
    if ((out.Failed ?? []).length > 0) {
      throw new TlearnError(
        'BatchQueueFailed',
        `could not queue ${out.Failed?.length} chunk(s) of batch ${id}`,
        500,
      );
    }
  }
  return { id, status: 'running' };
}

/** Reads a batch's manifest; 404 `BatchNotFound` when there is none. */
export async function readManifest(
  s3: S3Client,
  bucket: string,
  dataset: string,
  id: string,
): Promise<Manifest> {
  try {
    return await getJson(s3, bucket, batchKeys(dataset, id).manifest, ManifestSchema);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new NotFoundError(`batch '${id}' of dataset '${dataset}' does not exist`, {
        code: 'BatchNotFound',
      });
    }
    throw err;
  }
}

/** The status of a batch, from the objects its workers wrote. */
export async function batchStatus(
  s3: S3Client,
  bucket: string,
  dataset: string,
  id: string,
): Promise<BatchStatus> {
  const manifest = await readManifest(s3, bucket, dataset, id);
  const k = batchKeys(dataset, id);
  const base = {
    id,
    results: { jsonl: k.jsonl, csv: k.csv, summary: k.summary },
    modelVersion: manifest.modelVersion,
  };
  const summary = await getJsonIfExists(s3, bucket, k.summary, SummarySchema);
  if (summary) return { ...base, status: 'succeeded', counts: summary.counts };
  const counts = { total: manifest.total, done: 0, failed: 0 };
  const failed = await getJsonIfExists(s3, bucket, k.failed, FailedSchema);
  if (failed)
    return { ...base, status: 'failed', counts, error: { code: failed.code, message: failed.message } };
  for (const { rows } of (await readParts(s3, bucket, manifest)).values()) {
    counts.done += rows.length;
    counts.failed += rows.filter((r) => r.error !== undefined).length;
  }
  return { ...base, status: 'running', counts };
}

/** One part as read back: its rows and what the worker that wrote it used. */
export interface ReadPart {
  rows: z.infer<typeof BatchRowSchema>[];
  ms: number;
  gets: number;
}

/** The parts written so far, by chunk number (one per chunk however often it was delivered). */
export async function readParts(
  s3: S3Client,
  bucket: string,
  manifest: Manifest,
): Promise<Map<number, ReadPart>> {
  const k = batchKeys(manifest.dataset, manifest.id);
  const parts = new Set<number>();
  for await (const o of listObjects(s3, bucket, k.partsPrefix)) {
    const n = partNumber(o.key);
    if (n !== undefined && n < manifest.chunks.length) parts.add(n);
  }
  const out = new Map<number, ReadPart>();
  await Promise.all(
    [...parts].map(async (n) => {
      const obj = await getObjectIfExists(s3, bucket, k.part(n));
      if (obj === undefined) return;
      const lines = Buffer.from(obj.body)
        .toString('utf8')
        .split('\n')
        .filter((l) => l.length > 0);
      out.set(n, {
        rows: lines.map((l) => BatchRowSchema.parse(JSON.parse(l))),
        ms: Number(obj.metadata[PART_METADATA.ms] ?? 0) || 0,
        gets: Number(obj.metadata[PART_METADATA.gets] ?? 0) || 0,
      });
    }),
  );
  return out;
}
