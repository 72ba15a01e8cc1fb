/**
 * Batch predictions and dead letters: the batch queue → batch-predict (lib/batch/), and the
 * dead-letter queues of ingest and batches → dead-letters, which turns what still dies into
 * records (docs/ARCHITECTURE.md "Dead letters").
 */
import { Duration } from 'aws-cdk-lib';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { BATCH_SETTINGS, batchQueueVisibilitySeconds } from '../../lib/batch/settings.ts';
import { ENV } from '../../lib/config.ts';
import { DEAD_LETTER_SETTINGS, deadLetterVisibilitySeconds } from '../../lib/pipeline/settings.ts';
import { BATCHES_PREFIX, DATASETS_PREFIX, FEATURES_PREFIX, MODELS_PREFIX } from '../../lib/storage/keys.ts';
import { DeadLetterConsumer } from '../constructs/dead-letter-consumer.ts';
import { QueueConsumer } from '../constructs/queue-consumer.ts';
import type { TlearnFunction } from '../constructs/tlearn-function.ts';
import { grantS3Access } from '../s3-access.ts';
import { all, baseModelPrefixes, createFunction, modelEnvironment, type StackContext } from './shared.ts';

export interface BatchPart {
  readonly batches: QueueConsumer;
  readonly batchPredict: TlearnFunction;
}

/** Creates the batch queue and its worker; the API (infra/parts/api.ts) sends it the chunks. */
export function addBatches(ctx: StackContext): BatchPart {
  const { stack, bucket, settings } = ctx;
  // Batch predictions score with the API's extractor and prediction code (lib/batch/).
  const batchPredict = createFunction(ctx, 'batch-predict', { ...modelEnvironment(ctx) });
  // API (POST /datasets/{d}/batches) → batch queue → batch-predict, one chunk per invocation;
  // the settings are lib/batch/settings.ts, which the local stack uses too.
  const batches = new QueueConsumer(stack, 'Batches', {
    consumer: batchPredict.function,
    consumerTimeout: batchPredict.timeout,
    batchSize: BATCH_SETTINGS.batchSize,
    maxConcurrency: BATCH_SETTINGS.maxConcurrency,
    maxReceiveCount: BATCH_SETTINGS.maxReceiveCount,
    visibilityTimeout: Duration.seconds(batchQueueVisibilitySeconds()),
    deadLetterVisibilityTimeout: Duration.seconds(deadLetterVisibilitySeconds()),
  });
  // Batch worker: reads the images of any dataset prefix, batch input or the inbox (the keys the
  // API listed into the manifest), the pinned model, and writes only under batches/ (parts,
  // results, summary).
  const baseModels = baseModelPrefixes(ctx);
  grantS3Access(batchPredict.function, bucket, {
    list: [BATCHES_PREFIX, ...baseModels],
    read: [DATASETS_PREFIX, BATCHES_PREFIX, MODELS_PREFIX, settings.inboxPrefix, ...baseModels].map(all),
    write: [all(BATCHES_PREFIX)],
  });
  return { batches, batchPredict };
}

/** The queues dead-letters drains, and the features queue it reports failed images on. */
export interface DeadLetterSources {
  readonly ingest: QueueConsumer;
  readonly batches: QueueConsumer;
  readonly featuresQueue: sqs.IQueue;
}

/**
 * What still dies (a crash, timeout or OOM on the last receive) becomes a record: ExtractionFailed
 * for an image, failed rows for a batch chunk.
 */
export function addDeadLetters(ctx: StackContext, sources: DeadLetterSources): TlearnFunction {
  const { stack, bucket } = ctx;
  // Ingest and batch dead letters → records (lib/batch/dead-letters.ts).
  const deadLetters = createFunction(ctx, 'dead-letters', { [ENV.BUCKET]: bucket.bucketName });
  new DeadLetterConsumer(stack, 'DeadLetters', {
    consumer: deadLetters.function,
    queues: [sources.ingest.deadLetterQueue, sources.batches.deadLetterQueue],
    batchSize: DEAD_LETTER_SETTINGS.batchSize,
    maxConcurrency: DEAD_LETTER_SETTINGS.maxConcurrency,
  });
  deadLetters.function.addEnvironment(ENV.FEATURES_QUEUE_URL, sources.featuresQueue.queueUrl);
  sources.featuresQueue.grantSendMessages(deadLetters.function);

  // HEAD the image, its feature and record; write only error records, delete a stale feature
  // (or, for a dead delete event, both); read a batch and its model's classes, write its parts
  // and results.
  grantS3Access(deadLetters.function, bucket, {
    list: [DATASETS_PREFIX, FEATURES_PREFIX, BATCHES_PREFIX, MODELS_PREFIX],
    read: [all(DATASETS_PREFIX), all(FEATURES_PREFIX), all(BATCHES_PREFIX), `${MODELS_PREFIX}*/model.json`],
    write: [`${FEATURES_PREFIX}*.error.json`, all(BATCHES_PREFIX)],
    delete: [`${FEATURES_PREFIX}*.npy`, `${FEATURES_PREFIX}*.error.json`],
  });
  return deadLetters;
}
