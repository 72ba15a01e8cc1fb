/**
 * Settings of batch predictions shared by the CDK stack (infra/stack.ts: the batch queue, its DLQ
 * and the batch-predict function) and the local stack (lib/local/stack-queues.ts: the emulator's queue and
 * its poller), so local and deployed run with the same numbers.
 */
import { z } from 'zod';
import { defaultMemoryMb } from '../functions.ts';
import { type QueueSettings, visibilityTimeoutSeconds } from '../pipeline/settings.ts';
import { LAYOUT_PREFIXES } from '../storage/keys.ts';

export const BATCH_SETTINGS = {
  /** Image keys per queue message: one worker invocation scores one chunk. */
  chunkSize: 20,
  /** Most images one batch may have (the POST lists at most this many keys, then refuses). */
  maxImages: 10_000,
  /** Worker: memory (MB) and timeout; a chunk of 20 images takes seconds on 3 GB. */
  memorySize: defaultMemoryMb('batch-predict'),
  timeoutSeconds: 300,
  /** Messages per invocation (one chunk each) and concurrent worker invocations. */
  batchSize: 1,
  maxConcurrency: 10,
  /** Receives before a chunk goes to the dead-letter queue. */
  maxReceiveCount: 3,
} as const;

/** The batch queue and its event source, in the pipeline's queue terms (lib/pipeline/settings.ts). */
export const BATCH_QUEUE: Readonly<QueueSettings> = {
  batchSize: BATCH_SETTINGS.batchSize,
  maxBatchingWindowSeconds: 0,
  maxReceiveCount: BATCH_SETTINGS.maxReceiveCount,
  maxConcurrency: BATCH_SETTINGS.maxConcurrency,
};

/**
 * The batch queue's visibility timeout, seconds: the pipeline's rule (6x the worker's timeout),
 * scaled as the local stack scales every queue's (`scale` = its settings' `visibilityScale`).
 */
export function batchQueueVisibilitySeconds(scale = 1): number {
  return visibilityTimeoutSeconds(BATCH_SETTINGS.timeoutSeconds, BATCH_QUEUE, scale);
}

/**
 * Where users put images to batch-score that belong to no dataset (never trained on): a batch of
 * any dataset may read under it. Deployed: the stack's `inboxPrefix` prop (context
 * `tlearn:inboxPrefix`), given to the API as TLEARN_INBOX_PREFIX; locally the same default.
 */
export const DEFAULT_INBOX_PREFIX = 'inbox/';

/** Why `prefix` cannot be the inbox, or undefined when it can. */
export function inboxPrefixProblem(prefix: string): string | undefined {
  if (!/^([A-Za-z0-9!_.*'()-]+\/)+$/.test(prefix) || prefix.length > 200)
    return `must be one or more folder names of letters, digits and !_.*'()- each ending with '/', e.g. '${DEFAULT_INBOX_PREFIX}' (got '${prefix.slice(0, 200)}')`;
  if (prefix.split('/').some((s) => s === '.' || s === '..'))
    return `must not contain '.' or '..' folders (got '${prefix}')`;
  // The layout's own prefixes: a batch over the inbox never reads features, models, locks, other
  // datasets' images or another batch's inputs.
  const overlap = LAYOUT_PREFIXES.find((r) => r.startsWith(prefix) || prefix.startsWith(r));
  if (overlap !== undefined) return `must not overlap the bucket's own prefix '${overlap}' (got '${prefix}')`;
  return undefined;
}

/** The inbox prefix as a schema (environment variable, CDK prop): a valid prefix, default 'inbox/'. */
export const InboxPrefixSchema = z
  .string()
  .default(DEFAULT_INBOX_PREFIX)
  .superRefine((p, ctx) => {
    const problem = inboxPrefixProblem(p);
    if (problem !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });
