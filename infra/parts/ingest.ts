/**
 * Ingest: the bucket's image events → the ingest queue (and its dead-letter queue) →
 * extract-features, which writes features and reports them on the features queue.
 */
import { Duration } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { ENV } from '../../lib/config.ts';
import { deadLetterVisibilitySeconds, PIPELINE_SETTINGS } from '../../lib/pipeline/settings.ts';
import {
  DATASETS_PREFIX,
  FEATURES_PREFIX,
  INGEST_PREFIXES,
  POOL_FEATURES_PREFIX,
  UNLABELLED_PREFIX,
} from '../../lib/storage/keys.ts';
import { QueueConsumer } from '../constructs/queue-consumer.ts';
import type { TlearnFunction } from '../constructs/tlearn-function.ts';
import { grantS3Access } from '../s3-access.ts';
import { all, baseModelPrefixes, createFunction, modelEnvironment, type StackContext } from './shared.ts';

export interface IngestPart {
  readonly ingest: QueueConsumer;
  readonly extractor: TlearnFunction;
}

/** Creates the ingest side; the extractor reports to `featuresQueue` (infra/parts/training.ts). */
export function addIngest(ctx: StackContext, featuresQueue: sqs.IQueue): IngestPart {
  const { stack, bucket, props } = ctx;
  const extractor = createFunction(ctx, 'extract-features', { ...modelEnvironment(ctx) });
  // S3 → ingest queue → extractor (created and removed images: deletes drop their features).
  const { ingest } = PIPELINE_SETTINGS;
  const ingestQueue = new QueueConsumer(stack, 'Ingest', {
    consumer: extractor.function,
    consumerTimeout: extractor.timeout,
    batchSize: props.ingest?.batchSize ?? ingest.batchSize,
    maxBatchingWindow: props.ingest?.maxBatchingWindow ?? Duration.seconds(ingest.maxBatchingWindowSeconds),
    maxConcurrency: props.ingest?.maxConcurrency ?? ingest.maxConcurrency,
    // The extractor writes an ExtractionFailed record on the last receive: it reads the same number.
    maxReceiveCount: ingest.maxReceiveCount,
    deadLetterVisibilityTimeout: Duration.seconds(deadLetterVisibilitySeconds()),
  });
  for (const event of [s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED]) {
    for (const prefix of INGEST_PREFIXES) {
      bucket.addEventNotification(event, new s3n.SqsDestination(ingestQueue.queue), { prefix });
    }
  }
  extractor.function.addEnvironment(ENV.FEATURES_QUEUE_URL, featuresQueue.queueUrl);

  // Least privilege, by prefix of the S3 layout (infra/s3-access.ts; test/infra/iam.test.ts).
  // The unlabelled pool (lib/capture/pool-extract.ts): its images in, their features out.
  const baseModels = baseModelPrefixes(ctx);
  grantS3Access(extractor.function, bucket, {
    list: [DATASETS_PREFIX, FEATURES_PREFIX, ...baseModels],
    read: [DATASETS_PREFIX, FEATURES_PREFIX, UNLABELLED_PREFIX, POOL_FEATURES_PREFIX, ...baseModels].map(all),
    write: [all(FEATURES_PREFIX), all(POOL_FEATURES_PREFIX)],
    delete: [all(FEATURES_PREFIX), all(POOL_FEATURES_PREFIX)],
  });
  featuresQueue.grantSendMessages(extractor.function);
  return { ingest: ingestQueue, extractor };
}
