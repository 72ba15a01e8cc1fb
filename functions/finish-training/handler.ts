import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { loadStorageConfig } from '../../lib/config.ts';
import { ValidationError } from '../../lib/errors.ts';
import {
  FinishTrainingInput,
  type FinishTrainingResult,
  finishTraining,
} from '../../lib/pipeline/training-lock.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';

const obs = createObservability('finish-training');
const storage = loadStorageConfig();
const { s3 } = traceClients(obs, createAwsClients(storage));

/** State machine task (Finish, ReleaseAfter*): train again if the lock generation moved, else release it. */
export const handler = withObservability(
  async (event: unknown, _ctx: Context): Promise<FinishTrainingResult> => {
    const input = FinishTrainingInput.safeParse(event);
    if (!input.success)
      throw new ValidationError(
        `finish-training needs {dataset, executionName, outcome, retrains, maxRetrains}: ${input.error.message}`,
      );
    const r = await finishTraining(input.data, { s3, bucket: storage.bucket, log: obs.log });
    obs.metrics.addMetric(r.again ? 'TrainingsRepeated' : 'TrainingLocksReleased', MetricUnit.Count, 1);
    obs.log.info('training finished', { dataset: input.data.dataset, outcome: input.data.outcome, ...r });
    return r;
  },
  obs,
);
