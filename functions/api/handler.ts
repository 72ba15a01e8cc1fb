import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { AuthOptions } from '../../lib/api/auth.ts';
import { createApi, createExecutionHistory, createModelCache, loadApiConfig } from '../../lib/api/index.ts';
import { createLocalKeyStore } from '../../lib/api/keys.ts';
import { createApiGatewayKeyStore } from '../../lib/api/keys-aws.ts';
import { loadModelConfig, loadStorageConfig } from '../../lib/config.ts';
import { sharedExtractor } from '../../lib/model/shared-extractor.ts';
import { loadWeights } from '../../lib/model/weights.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import {
  API_GATEWAY_REQUEST_ID_PATH,
  createObservability,
  startLazy,
  traceClients,
  withObservability,
} from '../shared/powertools.ts';

// Everything below runs once per container, during the Lambda init phase.
const obs = createObservability('api');
const config = loadApiConfig(process.env);
const modelConfig = loadModelConfig(process.env);
const storage = loadStorageConfig(process.env);
const clients = traceClients(obs, createAwsClients(storage));
// Scoped keys: API Gateway's own keys on AWS; the local stack's JSON file when it names one.
const auth: AuthOptions = config.apiKeysFile
  ? { keys: createLocalKeyStore({ file: config.apiKeysFile }), openWithoutKey: true }
  : {
      keys: createApiGatewayKeyStore(
        obs.tracer.captureAWSv3Client(new APIGatewayClient({ region: storage.region, maxAttempts: 3 })),
        { stackTag: config.keyStackTag },
      ),
      openWithoutKey: false,
    };

// One per process (lib/model/shared-extractor.ts): the local stack's extractor handler shares it.
const extractor = startLazy(() =>
  sharedExtractor({
    weights: modelConfig.weights,
    inputSize: modelConfig.inputSize,
    pooling: modelConfig.pooling,
    precision: modelConfig.precision,
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
  // Only for a version's first ONNX export; not kept in memory afterwards.
  baseWeights: () => loadWeights(modelConfig.weights, { s3: clients.s3, log: obs.log }),
  config,
  ...(config.batchQueueUrl
    ? { batches: { sqs: clients.sqs, queueUrl: config.batchQueueUrl, inboxPrefix: config.inboxPrefix } }
    : {}),
  log: obs.log,
  auth,
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
  { correlationIdPath: API_GATEWAY_REQUEST_ID_PATH },
);
