/**
 * The pipeline's queue, batching, timeout and training-loop settings, in one place: the CDK stack
 * (infra/) builds the deployed queues, event sources, functions and state machine from
 * {@link PIPELINE_SETTINGS}, and the local stack (lib/local/stack-queues.ts) runs with
 * {@link localPipelineSettings}, the same values scaled by the documented {@link LOCAL_SCALE}
 * factors where one machine must be faster than a deployment. No other module holds these numbers.
 */
import { defaultMemoryMb } from '../functions.ts';

/** One SQS queue and the Lambda event source that drains it. */
export interface QueueSettings {
  /** Messages per invocation. */
  batchSize: number;
  /** How long Lambda gathers a batch, seconds. */
  maxBatchingWindowSeconds: number;
  /** Receives before a message goes to the dead-letter queue. */
  maxReceiveCount: number;
  /** Concurrent invocations by the event source (undefined: scales with the queue). */
  maxConcurrency: number | undefined;
}

/** Settings of the whole pipeline. */
export interface PipelineSettings {
  /** S3 events → extract-features. */
  ingest: QueueSettings;
  /** feature.* messages → start-training. */
  features: QueueSettings;
  /** Function timeouts, seconds (a queue's visibility timeout is derived from its consumer's). */
  timeoutSeconds: {
    'extract-features': number;
    'start-training': number;
    'check-readiness': number;
    'finish-training': number;
    'train-head': number;
    'promote-model': number;
    api: number;
  };
  /** Factor on {@link visibilityTimeoutSeconds} (1 deployed; see {@link LOCAL_SCALE}). */
  visibilityScale: number;
  training: {
    /** Wait before the first readiness check, so a burst of uploads lands first. */
    settleSeconds: number;
    /** Wait between readiness checks while images are pending. */
    pollSeconds: number;
    /** Polling rounds before training goes ahead on what is ready (pending images left out). */
    maxRounds: number;
    /**
     * Follow-up trainings one execution runs for features that arrived during its run; beyond, a
     * fresh execution takes the lock over. Bounded by Step Functions' 25,000-event history
     * (test/infra/history-budget.test.ts: worst case per training x (1 + maxRetrains)).
     */
    maxRetrains: number;
    /**
     * Fresh executions started in a row for executions that ended without releasing the lock
     * (stopped, timed out, failed where no Finish ran) while images waited; beyond, the lock goes
     * idle and the next upload or request trains them (an execution that always times out cannot loop).
     */
    maxRestarts: number;
  };
}

/** The deployed settings (infra/stack.ts). */
export const PIPELINE_SETTINGS: Readonly<PipelineSettings> = {
  ingest: { batchSize: 10, maxBatchingWindowSeconds: 5, maxReceiveCount: 5, maxConcurrency: 10 },
  features: { batchSize: 100, maxBatchingWindowSeconds: 30, maxReceiveCount: 5, maxConcurrency: undefined },
  timeoutSeconds: {
    'extract-features': 300,
    'start-training': 30,
    'check-readiness': 60,
    'finish-training': 30,
    'train-head': 900,
    'promote-model': 30,
    api: 29,
  },
  visibilityScale: 1,
  training: { settleSeconds: 60, pollSeconds: 30, maxRounds: 120, maxRetrains: 4, maxRestarts: 3 },
};

/**
 * How the local stack scales the deployed settings, and why:
 * - `wait`: settle and poll waits ÷ 10 (floor 1 s, settle 2 s): nobody waits a minute on a laptop;
 *   the single-flight lock, not the waits, is what keeps one training per dataset.
 * - `rounds`: × 5 polling rounds, so the bounded wait for pending images lasts about as long in
 *   seconds on one slow CPU as the deployed one (which extracts with 10 functions in parallel).
 * - `batchingWindow`: ÷ 10 (floor 1 s): the SQS poller is local, gathering longer only adds latency.
 * - `concurrency`: × 0.2 (floor 1): the deployed 10 concurrent extractors become 2 local pollers
 *   (they share one process and its CPU; two overlap one batch's S3 waits with another's compute).
 * - `visibility`: ÷ 15 (floor 10 s): a failed local batch is retried within minutes, not half an
 *   hour (the deployed 6x rule covers Lambda's own retries, which the local poller does not make).
 * Batch sizes, maxReceiveCount, retrains, restarts and timeouts are the deployed values.
 */
export const LOCAL_SCALE = {
  wait: 0.1,
  rounds: 5,
  batchingWindow: 0.1,
  concurrency: 0.2,
  visibility: 1 / 15,
} as const;

/**
 * One queue and its event source as the local stack runs them: the batching window and the
 * concurrency scaled by {@link LOCAL_SCALE} (a window of 0 stays 0; an unbounded concurrency stays
 * unbounded); batch size and maxReceiveCount as deployed.
 */
export function localQueueSettings(q: Readonly<QueueSettings>): QueueSettings {
  return {
    ...q,
    maxBatchingWindowSeconds:
      q.maxBatchingWindowSeconds === 0
        ? 0
        : Math.max(1, Math.round(q.maxBatchingWindowSeconds * LOCAL_SCALE.batchingWindow)),
    maxConcurrency:
      q.maxConcurrency === undefined
        ? undefined
        : Math.max(1, Math.round(q.maxConcurrency * LOCAL_SCALE.concurrency)),
  };
}

/** The settings the local stack runs with: {@link PIPELINE_SETTINGS} scaled by {@link LOCAL_SCALE}. */
export function localPipelineSettings(
  base: Readonly<PipelineSettings> = PIPELINE_SETTINGS,
): PipelineSettings {
  return {
    ingest: localQueueSettings(base.ingest),
    features: localQueueSettings(base.features),
    timeoutSeconds: { ...base.timeoutSeconds },
    visibilityScale: LOCAL_SCALE.visibility,
    training: {
      ...base.training,
      settleSeconds: Math.max(2, Math.round(base.training.settleSeconds * LOCAL_SCALE.wait)),
      pollSeconds: Math.max(1, Math.round(base.training.pollSeconds * LOCAL_SCALE.wait)),
      maxRounds: base.training.maxRounds * LOCAL_SCALE.rounds,
    },
  };
}

/**
 * A queue's visibility timeout, seconds: AWS asks for at least 6x the consumer's timeout plus the
 * batching window, so a message is not redelivered while a retried invocation still works on it.
 */
export function visibilityTimeoutSeconds(
  consumerTimeoutSeconds: number,
  q: QueueSettings,
  scale = 1,
): number {
  const full = consumerTimeoutSeconds * 6 + q.maxBatchingWindowSeconds;
  return scale === 1 ? full : Math.max(10, Math.round(full * scale));
}

/**
 * The dead-letters function (functions/dead-letters) and its event sources on the ingest and the
 * batch dead-letter queues (docs/ARCHITECTURE.md "Dead letters"), read by infra/stack.ts and
 * lib/local/stack-queues.ts. The dead-letter queues have no dead-letter queue of their own: a message the
 * function cannot record (S3 or SQS down) is received again after the visibility timeout, for as
 * long as the queue keeps it (14 days).
 */
export const DEAD_LETTER_SETTINGS = {
  /** Messages per invocation: a few HEADs and one PUT each. */
  batchSize: 10,
  maxBatchingWindowSeconds: 0,
  /** Concurrent invocations per queue (Lambda's minimum): dead letters are rare. */
  maxConcurrency: 2,
  memorySize: defaultMemoryMb('dead-letters'),
  /** Seconds: a dead chunk may finish its batch (reads every part, writes the results). */
  timeoutSeconds: 60,
} as const;

/** A dead-letter queue and its event source, in queue terms (no receive limit: the DLQs have no DLQ). */
export const DEAD_LETTER_QUEUE: Readonly<QueueSettings> = {
  batchSize: DEAD_LETTER_SETTINGS.batchSize,
  maxBatchingWindowSeconds: DEAD_LETTER_SETTINGS.maxBatchingWindowSeconds,
  maxReceiveCount: Number.POSITIVE_INFINITY,
  maxConcurrency: DEAD_LETTER_SETTINGS.maxConcurrency,
};

/**
 * The visibility timeout of a dead-letter queue the dead-letters function consumes, seconds: the
 * pipeline's rule (6x the consumer's timeout), scaled like every local queue's.
 */
export function deadLetterVisibilitySeconds(scale = 1): number {
  return visibilityTimeoutSeconds(DEAD_LETTER_SETTINGS.timeoutSeconds, DEAD_LETTER_QUEUE, scale);
}
