import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { loadStateMachineConfig, loadStorageConfig } from '../../lib/config.ts';
import { startTrainings } from '../../lib/pipeline/start-training.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';
import { toQueueMessages } from '../shared/sqs.ts';

const obs = createObservability('start-training');
const { sfn } = traceClients(obs, createAwsClients(loadStorageConfig()));
const { stateMachineArn, trainWindowSeconds } = loadStateMachineConfig();

/** Features queue batch → one debounced training execution per dataset. */
export const handler = withObservability(async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const r = await startTrainings(toQueueMessages(event), {
    sfn,
    stateMachineArn,
    trainWindowSeconds,
    log: obs.log,
  });
  const count = (s: string) => r.datasets.filter((d) => d.status === s).length;
  obs.metrics.addMetric('TrainingsStarted', MetricUnit.Count, count('started'));
  obs.metrics.addMetric('TrainingsDebounced', MetricUnit.Count, count('exists'));
  obs.metrics.addMetric('TrainingStartErrors', MetricUnit.Count, count('error'));
  obs.metrics.addMetric('InvalidMessages', MetricUnit.Count, r.invalid.length);
  return { batchItemFailures: r.failedMessageIds.map((itemIdentifier) => ({ itemIdentifier })) };
}, obs);
