import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { loadStateMachineConfig, loadStorageConfig } from '../../lib/config.ts';
import { startTrainings } from '../../lib/pipeline/start-training.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';
import { toQueueMessages } from '../shared/sqs.ts';

const obs = createObservability('start-training');
const storage = loadStorageConfig();
const { s3, sfn } = traceClients(obs, createAwsClients(storage));
const { stateMachineArn } = loadStateMachineConfig();

/** Features queue batch → per dataset, one training through the single-flight lock (or a mark on the running one). */
export const handler = withObservability(async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const r = await startTrainings(toQueueMessages(event), {
    s3,
    bucket: storage.bucket,
    sfn,
    stateMachineArn,
    log: obs.log,
  });
  const count = (s: string) => r.datasets.filter((d) => d.status === s).length;
  obs.metrics.addMetric('TrainingsStarted', MetricUnit.Count, count('started'));
  obs.metrics.addMetric('TrainingsMarked', MetricUnit.Count, count('marked'));
  obs.metrics.addMetric('TrainingStartErrors', MetricUnit.Count, count('error'));
  obs.metrics.addMetric('InvalidMessages', MetricUnit.Count, r.invalid.length);
  return { batchItemFailures: r.failedMessageIds.map((itemIdentifier) => ({ itemIdentifier })) };
}, obs);
