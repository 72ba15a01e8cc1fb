/**
 * Settings of batch predictions shared by the CDK stack (infra/stack.ts: the batch queue, its DLQ
 * and the batch-predict function) and the local stack (lib/local/stack.ts: the emulator's queue and
 * its poller), so local and deployed run with the same numbers.
 */
import { type QueueSettings, visibilityTimeoutSeconds } from '../pipeline/settings.ts';

export const BATCH_SETTINGS = {
  /** Image keys per queue message: one worker invocation scores one chunk. */
  chunkSize: 20,
  /** Most images one batch may have (the POST lists at most this many keys, then refuses). */
  maxImages: 10_000,
  /** Worker: memory (MB) and timeout; a chunk of 20 images takes seconds on 3 GB. */
  memorySize: 3008,
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
