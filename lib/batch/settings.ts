/**
 * Settings of batch predictions shared by the CDK stack (infra/stack.ts: the batch queue, its DLQ
 * and the batch-predict function) and the local stack (lib/local/stack.ts: the emulator's queue and
 * its poller), so local and deployed run with the same numbers.
 */
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

/**
 * The batch queue's visibility timeout: six times the worker's timeout, as AWS advises for a queue
 * that triggers a function (QueueConsumer in infra/ derives it the same way).
 */
export function batchQueueVisibilitySeconds(): number {
  return BATCH_SETTINGS.timeoutSeconds * 6;
}
