import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { extractPoolImages, isAnyPoolKey, removePoolFeatures } from '../../lib/capture/pool-extract.ts';
import { loadExtractorConfig, loadModelConfig, loadStorageConfig } from '../../lib/config.ts';
import { sharedExtractor } from '../../lib/model/shared-extractor.ts';
import { extractImages } from '../../lib/pipeline/extract.ts';
import { imageJobsFromMessages } from '../../lib/pipeline/ingest.ts';
import { removeImages } from '../../lib/pipeline/remove.ts';
import { PIPELINE_SETTINGS } from '../../lib/pipeline/settings.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, startLazy, traceClients, withObservability } from '../shared/powertools.ts';
import { toQueueMessages } from '../shared/sqs.ts';

// Config is read once, at cold start, and fails there naming the variable.
const storage = loadStorageConfig();
const model = loadModelConfig();
const { featuresQueueUrl } = loadExtractorConfig();
const obs = createObservability('extract-features');
const { s3, sqs } = traceClients(obs, createAwsClients(storage));
// Loading VGG16 takes seconds: started during init, awaited by each invocation. One per process
// (lib/model/shared-extractor.ts): the local stack's API and batch worker use the same one.
const extractor = startLazy(() =>
  sharedExtractor({ ...model, ...(model.backend ? { backend: model.backend } : {}), s3, log: obs.log }),
);

/**
 * Ingest queue batch (S3 ObjectCreated / ObjectRemoved events) → features, error records or removed
 * features + messages; failed records are retried (and on their last receive get an error record).
 */
export const handler = withObservability(async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const batch = imageJobsFromMessages(toQueueMessages(event), storage.bucket, obs.log);
  // The unlabelled pool (lib/capture/pool-extract.ts): features only, never announced to training.
  await removePoolFeatures(
    s3,
    storage.bucket,
    batch.removals.map((r) => r.key),
  );
  const pool = await extractPoolImages(
    batch.jobs.filter((j) => isAnyPoolKey(j.key)),
    {
      s3,
      bucket: storage.bucket,
      extractor: await extractor.get(),
      batchSize: model.extractBatchSize,
      log: obs.log,
    },
  );
  const removed = await removeImages(batch.removals, {
    s3,
    sqs,
    bucket: storage.bucket,
    featuresQueueUrl,
    log: obs.log,
  });
  const r = await extractImages(
    batch.jobs.filter((j) => !isAnyPoolKey(j.key)),
    {
      s3,
      sqs,
      bucket: storage.bucket,
      featuresQueueUrl,
      extractor: await extractor.get(),
      batchSize: model.extractBatchSize,
      // The queue's own number (the CDK queue and the local stack read it from the same module).
      maxReceiveCount: PIPELINE_SETTINGS.ingest.maxReceiveCount,
      log: obs.log,
    },
  );
  obs.metrics.addMetric('ImagesExtracted', MetricUnit.Count, r.counts.extracted);
  obs.metrics.addMetric('ImagesFailed', MetricUnit.Count, r.counts.failed);
  obs.metrics.addMetric('ImagesSkipped', MetricUnit.Count, r.counts.skipped + batch.ignored.length);
  obs.metrics.addMetric('ImagesRetried', MetricUnit.Count, r.counts.retry);
  obs.metrics.addMetric('ImagesRemoved', MetricUnit.Count, removed.removed);
  obs.metrics.addMetric('MessagesDropped', MetricUnit.Count, batch.dropped.length);
  obs.metrics.addMetric('ExtractionMs', MetricUnit.Milliseconds, r.timings.totalMs);
  obs.log.info('batch done', { ...r.counts, forwardMs: Math.round(r.timings.forwardMs) });
  obs.metrics.addMetric('PoolImagesExtracted', MetricUnit.Count, pool.extracted);
  const failed = new Set([...r.failedRecordIds, ...removed.failedRecordIds, ...pool.failedRecordIds]);
  return { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })) };
}, obs);
