import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { recordDeadLetters } from '../../lib/batch/dead-letters.ts';
import { loadExtractorConfig, loadStorageConfig } from '../../lib/config.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';
import { toQueueMessages } from '../shared/sqs.ts';

// Config is read once, at cold start, and fails there naming the variable.
const storage = loadStorageConfig();
const { featuresQueueUrl } = loadExtractorConfig();
const obs = createObservability('dead-letters');
const { s3, sqs } = traceClients(obs, createAwsClients(storage));

/**
 * Ingest and batch dead-letter queues → `ExtractionFailed` records + `feature.failed` messages, and
 * failed rows of dead batch chunks (then the batch finishes); what S3 or SQS refused is retried.
 */
export const handler = withObservability(async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const r = await recordDeadLetters(toQueueMessages(event), {
    s3,
    sqs,
    bucket: storage.bucket,
    region: storage.region,
    featuresQueueUrl,
    log: obs.log,
  });
  obs.metrics.addMetric('DeadImagesRecorded', MetricUnit.Count, r.images);
  obs.metrics.addMetric('DeadChunksRecorded', MetricUnit.Count, r.chunks);
  obs.metrics.addMetric('MessagesDropped', MetricUnit.Count, r.dropped);
  obs.log.info('dead letters recorded', { ...r, failedRecordIds: r.failedRecordIds.length });
  return { batchItemFailures: r.failedRecordIds.map((itemIdentifier) => ({ itemIdentifier })) };
}, obs);
