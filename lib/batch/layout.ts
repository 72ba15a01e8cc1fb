/**
 * Where a batch lives in the bucket and the shapes of its objects:
 *
 * ```
 * batches/{d}/{id}/input/…           images the client uploaded (optional)
 * batches/{d}/{id}/manifest.json     keys, chunks, model version (written by the POST)
 * batches/{d}/{id}/parts/{n}.jsonl   one chunk's rows (one worker invocation; rewritten on redelivery)
 * batches/{d}/{id}/results.jsonl     every row, in manifest order   } written by the finisher,
 * batches/{d}/{id}/results.csv       the same as CSV                 } summary.json last: its
 * batches/{d}/{id}/summary.json      counts, histogram, timings      } presence means "succeeded"
 * batches/{d}/{id}/failed.json       why the batch cannot finish (no model, spec mismatch)
 * ```
 */
import { z } from 'zod';
import { UsageDocumentSchema } from '../cost/usage.ts';

/** `none` | `auto` | a number in 0..1, as `?threshold=` of a prediction. */
export const ThresholdField = z.union([z.literal('none'), z.literal('auto'), z.number().min(0).max(1)]);

/** `manifest.json`. */
export const ManifestSchema = z.object({
  id: z.string(),
  dataset: z.string(),
  prefix: z.string(),
  createdAt: z.string(),
  /** The model version promoted when the batch started (every row is scored by it). */
  modelVersion: z.string(),
  threshold: ThresholdField,
  /** The image keys, chunk by chunk (chunk n = part n). */
  chunks: z.array(z.array(z.string())),
  total: z.number().int().nonnegative(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** One queue message: one chunk for one worker invocation. */
export const ChunkMessageSchema = z.object({
  dataset: z.string(),
  id: z.string(),
  part: z.number().int().nonnegative(),
});
export type ChunkMessage = z.infer<typeof ChunkMessageSchema>;

/** One result row (a line of results.jsonl). `error` set means the image was unusable. */
export const BatchRowSchema = z.object({
  key: z.string(),
  label: z.string().nullable().optional(),
  confidence: z.number().optional(),
  abstained: z.boolean().optional(),
  scores: z.array(z.object({ label: z.string(), probability: z.number() })).optional(),
  error: z.string().optional(),
});
export type BatchRow = z.infer<typeof BatchRowSchema>;

/** `summary.json`. */
export const SummarySchema = z.object({
  id: z.string(),
  dataset: z.string(),
  prefix: z.string(),
  modelVersion: z.string(),
  counts: z.object({ total: z.number(), done: z.number(), failed: z.number() }),
  /** Rows per label (`null` for abstained rows), failed rows excluded. */
  labels: z.record(z.number()),
  timings: z.object({ createdAt: z.string(), finishedAt: z.string(), seconds: z.number() }),
  /** What the batch used and its price (lib/cost/). */
  usage: UsageDocumentSchema.optional(),
});
export type Summary = z.infer<typeof SummarySchema>;

/** S3 user metadata of a part: the worker's run time and S3 reads for that chunk (summary usage). */
export const PART_METADATA = { ms: 'tlearn-ms', gets: 'tlearn-gets' } as const;

/** `failed.json`. */
export const FailedSchema = z.object({ code: z.string(), message: z.string(), at: z.string() });

/** The status answer of `GET /datasets/{d}/batches/{id}`. */
export interface BatchStatus {
  id: string;
  status: 'running' | 'succeeded' | 'failed';
  counts: { total: number; done: number; failed: number };
  results: { jsonl: string; csv: string; summary: string };
  modelVersion: string;
  error?: { code: string; message: string };
}
