/**
 * The dead-letters function's domain (docs/ARCHITECTURE.md "Dead letters"): every message that
 * reaches the ingest or the batch dead-letter queue becomes a record instead of waiting there, so
 * no image stays pending and no batch stays running. One function serves both queues; it tells the
 * messages apart by their shape (a batch chunk `{dataset, id, part}`, else an S3 event).
 *
 * This module sits in lib/batch/ because a dead chunk needs the batch's own finisher; the ingest
 * half is lib/pipeline/dead-letters.ts (batch already builds on pipeline: lib/batch/settings.ts).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { describeError, NotFoundError } from '../errors.ts';
import { recordDeadImages } from '../pipeline/dead-letters.ts';
import { imageJobsFromMessages, type QueueMessage } from '../pipeline/ingest.ts';
import { removeImages } from '../pipeline/remove.ts';
import { batchKeys, modelFileKey } from '../storage/keys.ts';
import { getJsonIfExists, headObject, isConditionFailed, putObject } from '../storage/s3.ts';
import type { Log } from '../util/log.ts';
import { finishBatch } from './finish.ts';
import {
  type BatchRow,
  type ChunkMessage,
  ChunkMessageSchema,
  FailedSchema,
  PART_METADATA,
  SummarySchema,
} from './layout.ts';
import { readManifest } from './start.ts';

/** The `error` of every row of a chunk that reached the batch dead-letter queue. */
export const DEAD_CHUNK_ERROR =
  'BatchChunkFailed: batch-predict failed on every attempt for this chunk (a crash, a timeout or out of memory); start a batch of these images again';

/** What the dead-letters function needs (built once per container by functions/dead-letters). */
export interface DeadLetterDeps {
  s3: S3Client;
  sqs: SQSClient;
  bucket: string;
  /** Region whose prices a batch summary's cost uses. */
  region: string;
  featuresQueueUrl: string;
  log: Log;
  now?: () => Date;
}

/** What one dead chunk did. */
export type DeadChunkOutcome =
  /** Failed rows written; `finished`: this call also wrote the batch's results. */
  | { status: 'recorded'; rows: number; finished: boolean }
  /** Nothing to do: the batch is gone, finished or failed, or the chunk had a part after all. */
  | { status: 'skipped'; reason: string };

const ModelClasses = z.object({ classes: z.array(z.string()) });

/**
 * A chunk that reached the batch dead-letter queue: each of its images becomes a row with
 * {@link DEAD_CHUNK_ERROR} (`parts/{n}.jsonl`, written only if the chunk has no part yet), then the
 * batch's finisher runs, so the last chunk to end, dead or not, writes the results and the batch
 * reaches `succeeded` with those rows counted as failed. Idempotent, like the worker.
 */
export async function failDeadChunk(deps: DeadLetterDeps, msg: ChunkMessage): Promise<DeadChunkOutcome> {
  let manifest: Awaited<ReturnType<typeof readManifest>>;
  try {
    manifest = await readManifest(deps.s3, deps.bucket, msg.dataset, msg.id);
  } catch (err) {
    if (err instanceof NotFoundError) return { status: 'skipped', reason: 'the batch does not exist' };
    throw err;
  }
  const keys = manifest.chunks[msg.part];
  if (keys === undefined) return { status: 'skipped', reason: `the batch has no part ${msg.part}` };
  const k = batchKeys(msg.dataset, msg.id);
  if (await getJsonIfExists(deps.s3, deps.bucket, k.summary, SummarySchema))
    return { status: 'skipped', reason: 'the batch is finished' };
  if (await getJsonIfExists(deps.s3, deps.bucket, k.failed, FailedSchema))
    return { status: 'skipped', reason: 'the batch failed' };
  const rows: BatchRow[] = keys.map((key) => ({ key, error: DEAD_CHUNK_ERROR }));
  // A part a worker wrote (it died finishing the batch) holds real rows: kept (If-None-Match for a race).
  let wrote = (await headObject(deps.s3, deps.bucket, k.part(msg.part))) === undefined;
  try {
    if (wrote)
      await putObject(
        deps.s3,
        deps.bucket,
        k.part(msg.part),
        rows.map((r) => `${JSON.stringify(r)}\n`).join(''),
        {
          contentType: 'application/x-ndjson',
          metadata: { [PART_METADATA.ms]: '0', [PART_METADATA.gets]: '0' },
          ifNoneMatch: '*',
        },
      );
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    wrote = false;
  }
  // The CSV's probability columns are the pinned model's classes (none if its file is gone).
  const model = await getJsonIfExists(
    deps.s3,
    deps.bucket,
    modelFileKey(manifest.dataset, manifest.modelVersion, 'model.json'),
    ModelClasses,
  );
  const finished = await finishBatch(deps, manifest, model?.classes ?? []);
  deps.log.warn('dead batch chunk recorded as failed rows', {
    dataset: msg.dataset,
    id: msg.id,
    part: msg.part,
  });
  return wrote
    ? { status: 'recorded', rows: rows.length, finished }
    : { status: 'skipped', reason: 'the chunk has a part' };
}

/** What a batch of dead letters became. */
export interface DeadLettersResult {
  /** Images recorded as `ExtractionFailed`. */
  images: number;
  /** Removed images whose features were removed now. */
  removed: number;
  /** Batch chunks recorded as failed rows. */
  chunks: number;
  /** Messages that are neither (logged and dropped: nothing can be recorded for them). */
  dropped: number;
  /** Messages to retry (S3 or SQS failed): the dead-letter queue delivers them again. */
  failedRecordIds: string[];
}

/**
 * Records every dead message: batch chunks → failed rows ({@link failDeadChunk}); S3 events →
 * `ExtractionFailed` records (lib/pipeline/dead-letters.ts) or, for a deleted image, the removal
 * its extractor never finished (lib/pipeline/remove.ts).
 */
export async function recordDeadLetters(
  messages: readonly QueueMessage[],
  deps: DeadLetterDeps,
): Promise<DeadLettersResult> {
  const failed = new Set<string>();
  const chunks: { id: string; msg: ChunkMessage }[] = [];
  const events: QueueMessage[] = [];
  for (const m of messages) {
    const chunk = parseChunk(m.body);
    if (chunk) chunks.push({ id: m.id, msg: chunk });
    else events.push(m);
  }
  let recordedChunks = 0;
  for (const c of chunks) {
    try {
      if ((await failDeadChunk(deps, c.msg)).status === 'recorded') recordedChunks++;
    } catch (err) {
      deps.log.error('dead batch chunk not recorded; it will be retried', {
        ...c.msg,
        error: describeError(err),
      });
      failed.add(c.id);
    }
  }
  const batch = imageJobsFromMessages(events, deps.bucket, deps.log);
  const removed = await removeImages(batch.removals, deps);
  const images = await recordDeadImages(batch.jobs, deps);
  for (const id of [...removed.failedRecordIds, ...images.failedRecordIds]) failed.add(id);
  return {
    images: images.recorded,
    removed: removed.removed,
    chunks: recordedChunks,
    dropped: batch.dropped.length,
    failedRecordIds: [...failed],
  };
}

function parseChunk(body: string): ChunkMessage | undefined {
  try {
    const parsed = ChunkMessageSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
