/**
 * The queues of the local stack (lib/local/stack.ts) and their event sources: the emulator's
 * queues with the deployed attributes (visibility, redrive; scaled as lib/pipeline/settings.ts
 * says), and Lambda-style pollers running the handlers on them.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { BATCH_QUEUE, BATCH_SETTINGS } from '../batch/settings.ts';
import {
  DEAD_LETTER_QUEUE,
  DEAD_LETTER_SETTINGS,
  deadLetterVisibilitySeconds,
  localQueueSettings,
  type PipelineSettings,
  type QueueSettings,
  visibilityTimeoutSeconds,
} from '../pipeline/settings.ts';
import type { Log } from '../util/log.ts';
import type { LocalEmulator } from './emulator.ts';
import type { LambdaHandler } from './lambda-context.ts';
import { startSqsPoller } from './sqs-poller.ts';
import type { LocalHandlers } from './stack-handlers.ts';
import type { StackShutdown } from './stack-shutdown.ts';

/** A queue of the emulator. */
export interface StackQueue {
  queueUrl: string;
  queueArn: string;
}

/** Every queue of the stack, and the (scaled) settings of the batch queue. */
export interface StackQueues {
  ingest: StackQueue;
  ingestDlq: StackQueue;
  features: StackQueue;
  featuresDlq: StackQueue;
  batchQueue: StackQueue;
  batchDlq: StackQueue;
  batchSettings: QueueSettings;
}

/** Creates the stack's queues in the emulator, each with its dead-letter queue. */
export function createStackQueues(
  emulator: Pick<LocalEmulator, 'createQueue'>,
  settings: PipelineSettings,
): StackQueues {
  const queueAttributes = (q: QueueSettings, timeoutSeconds: number, dlqArn: string) => ({
    VisibilityTimeout: String(visibilityTimeoutSeconds(timeoutSeconds, q, settings.visibilityScale)),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: q.maxReceiveCount }),
  });
  const dlqRetention = { MessageRetentionPeriod: '1209600' };
  // The DLQs dead-letters drains (ingest, batch): its visibility, scaled like every local queue's.
  const drainedDlq = {
    ...dlqRetention,
    VisibilityTimeout: String(deadLetterVisibilitySeconds(settings.visibilityScale)),
  };
  const ingestDlq = emulator.createQueue('tlearn-ingest-dlq', drainedDlq);
  const ingest = emulator.createQueue(
    'tlearn-ingest',
    queueAttributes(settings.ingest, settings.timeoutSeconds['extract-features'], ingestDlq.queueArn),
  );
  const featuresDlq = emulator.createQueue('tlearn-features-dlq', dlqRetention);
  const features = emulator.createQueue(
    'tlearn-features',
    queueAttributes(settings.features, settings.timeoutSeconds['start-training'], featuresDlq.queueArn),
  );
  const batchSettings = localQueueSettings(BATCH_QUEUE);
  const batchDlq = emulator.createQueue('tlearn-batch-dlq', drainedDlq);
  const batchQueue = emulator.createQueue(
    'tlearn-batch',
    queueAttributes(batchSettings, BATCH_SETTINGS.timeoutSeconds, batchDlq.queueArn),
  );
  return { ingest, ingestDlq, features, featuresDlq, batchQueue, batchDlq, batchSettings };
}

/** What {@link startQueuePollers} needs. */
export interface QueuePollerOptions {
  sqs: SQSClient;
  queues: StackQueues;
  settings: PipelineSettings;
  handlers: LocalHandlers;
  region: string;
  shutdown: StackShutdown;
  log: Log;
}

/**
 * Each queue's event source: as many pollers as its (scaled) deployed concurrency, Lambda-style
 * batches; every poller is stopped by the shutdown.
 */
export async function startQueuePollers(opts: QueuePollerOptions): Promise<void> {
  const { queues, settings } = opts;
  const consume = async (
    queueUrl: string,
    q: QueueSettings,
    fn: 'extract-features' | 'start-training' | 'batch-predict' | 'dead-letters',
    timeoutSeconds: number,
  ): Promise<void> => {
    for (let i = 0; i < (q.maxConcurrency ?? 1); i++) {
      const poller = await startSqsPoller({
        sqs: opts.sqs,
        queueUrl,
        handler: opts.handlers[fn] as LambdaHandler<SQSEvent, unknown>,
        functionName: fn,
        region: opts.region,
        batchSize: q.batchSize,
        maxBatchingWindowMs: q.maxBatchingWindowSeconds * 1000,
        // Short long polls: each must end well within the clients' 10 s request timeout.
        waitTimeSeconds: 5,
        functionTimeoutMs: timeoutSeconds * 1000,
        log: opts.log,
      });
      opts.shutdown.add(`the ${fn} poller ${i + 1}`, () => poller.stop());
    }
  };
  await consume(
    queues.ingest.queueUrl,
    settings.ingest,
    'extract-features',
    settings.timeoutSeconds['extract-features'],
  );
  await consume(
    queues.features.queueUrl,
    settings.features,
    'start-training',
    settings.timeoutSeconds['start-training'],
  );
  await consume(
    queues.batchQueue.queueUrl,
    queues.batchSettings,
    'batch-predict',
    BATCH_SETTINGS.timeoutSeconds,
  );
  // What still dies becomes a record, as deployed (lib/batch/dead-letters.ts).
  for (const dlq of [queues.ingestDlq, queues.batchDlq]) {
    const q = localQueueSettings(DEAD_LETTER_QUEUE);
    await consume(dlq.queueUrl, q, 'dead-letters', DEAD_LETTER_SETTINGS.timeoutSeconds);
  }
}
