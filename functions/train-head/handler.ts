import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { loadModelConfig, loadStorageConfig, loadTrainingConfig } from '../../lib/config.ts';
import { ConfigError, ValidationError } from '../../lib/errors.ts';
import { TrainingInput } from '../../lib/features/messages.ts';
import { DEFAULT_RESIZE } from '../../lib/model/spec.ts';
import {
  runTrainingJob,
  type SpecExpectation,
  specExpectationFromModelConfig,
  type TrainJobResult,
} from '../../lib/pipeline/train-job.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';

const storage = loadStorageConfig();
const training = loadTrainingConfig();
const obs = createObservability('train-head');
const { s3 } = traceClients(obs, createAwsClients(storage));
// The trainer needs no model, but when the deployment's extractor settings are set here too it
// trains only on features of that spec; otherwise the majority spec wins (and is reported). The
// resize kernel is the extractor's default, from spec.ts (the extractor module would bundle tfjs).
let expect: SpecExpectation | undefined;
try {
  expect = specExpectationFromModelConfig(loadModelConfig(), DEFAULT_RESIZE);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  obs.log.warn('no extractor config: training on the majority feature spec', { reason: err.message });
}

/** State machine task: `{dataset, trigger, requestedAt}` → a new model version. */
export const handler = withObservability(async (event: unknown, ctx: Context): Promise<TrainJobResult> => {
  const input = TrainingInput.safeParse(event);
  if (!input.success)
    throw new ValidationError(`train-head needs {dataset, trigger, requestedAt}: ${input.error.message}`);
  const r = await runTrainingJob(input.data, {
    s3,
    bucket: storage.bucket,
    training,
    log: obs.log,
    ...(expect ? { expect } : {}),
    runtime: {
      region: storage.region,
      memoryMb: Number(ctx.memoryLimitInMB) || undefined,
      architecture: process.arch === 'arm64' ? 'arm64' : 'x86_64',
    },
  });
  obs.metrics.addMetric('TrainingSamples', MetricUnit.Count, r.nTrain + r.nTest);
  obs.metrics.addMetric('TrainingMs', MetricUnit.Milliseconds, r.timingsMs.total);
  if (r.accuracy !== null) obs.metrics.addMetric('TrainingAccuracy', MetricUnit.Percent, r.accuracy * 100);
  return r;
}, obs);
