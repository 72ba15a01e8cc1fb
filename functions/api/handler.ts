import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createApi, createExecutionHistory, createModelCache, loadApiConfig } from '../../lib/api/index.ts';
import { loadModelConfig, loadStorageConfig } from '../../lib/config.ts';
import { loadExtractor } from '../../lib/model/extractor.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, startLazy, withObservability } from '../shared/powertools.ts';

// Everything below runs once per container, during the Lambda init phase.
const obs = createObservability('api');
const config = loadApiConfig(process.env);
const modelConfig = loadModelConfig(process.env);
const clients = createAwsClients(loadStorageConfig(process.env));

const extractor = startLazy(() =>
  loadExtractor({
    weights: modelConfig.weights,
    inputSize: modelConfig.inputSize,
    pooling: modelConfig.pooling,
    backend: modelConfig.backend,
    s3: clients.s3,
    log: obs.log,
    warmUp: true,
  }),
);
// Wait for the weights and the warm-up pass here, so they count against init, not the first
// request; a failure is not fatal: /health reports it and predictions retry the load.
await extractor.get().catch(() => undefined);

const api = createApi({
  s3: clients.s3,
  sfn: clients.sfn,
  sqs: clients.sqs,
  executions: createExecutionHistory(clients.sfn, config.stateMachineArn),
  extractor: extractor.get,
  cache: createModelCache({
    s3: clients.s3,
    bucket: config.bucket,
    refreshSeconds: config.modelRefreshSeconds,
    log: obs.log,
  }),
  config,
  log: obs.log,
  metrics: {
    prediction(latencyMs) {
      obs.metrics.addMetric('Predictions', MetricUnit.Count, 1);
      obs.metrics.addMetric('PredictionLatencyMs', MetricUnit.Milliseconds, latencyMs);
    },
    clientError() {
      obs.metrics.addMetric('ClientErrors', MetricUnit.Count, 1);
    },
  },
});

/** API Gateway REST proxy (payload 1.0) → `lib/api`. */
export const handler = withObservability<APIGatewayProxyEvent, APIGatewayProxyResult>(
  (event, context) => api(event, context),
  obs,
);
