import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { loadStateMachineConfig, loadStorageConfig } from '../../lib/config.ts';
import { ValidationError } from '../../lib/errors.ts';
import {
  type ExecutionEndedResult,
  ExecutionStatusChangeEvent,
  finishEndedExecution,
} from '../../lib/pipeline/execution-ended.ts';
import { scanDataset, scanFingerprint } from '../../lib/pipeline/readiness.ts';
import { PIPELINE_SETTINGS } from '../../lib/pipeline/settings.ts';
import {
  FinishTrainingInput,
  type FinishTrainingResult,
  finishTraining,
} from '../../lib/pipeline/training-lock.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';

const obs = createObservability('finish-training');
const storage = loadStorageConfig();
const { s3, sfn } = traceClients(obs, createAwsClients(storage));
const { stateMachineArn } = loadStateMachineConfig();
const deps = { s3, sfn, bucket: storage.bucket, stateMachineArn, log: obs.log };
/** What the dataset lists as now, for Finish to compare with what the trainer listed. */
const datasetFingerprint = async (dataset: string): Promise<string> =>
  scanFingerprint(await scanDataset(s3, storage.bucket, dataset));

/**
 * Two callers, one job (the lock's release): the state machine's Finish/ReleaseAfter* steps
 * (train again if the lock generation moved, else release it), and the EventBridge rule on the
 * execution's FAILED / TIMED_OUT / ABORTED status change (release a lock its execution left held).
 */
export const handler = withObservability(
  async (event: unknown, _ctx: Context): Promise<FinishTrainingResult | ExecutionEndedResult> => {
    const ended = ExecutionStatusChangeEvent.safeParse(event);
    if (ended.success) {
      const r = await finishEndedExecution(ended.data, {
        ...deps,
        maxRestarts: PIPELINE_SETTINGS.training.maxRestarts,
      });
      obs.metrics.addMetric(
        `ExecutionEnded${r.action === 'restarted' ? 'Restarted' : 'Handled'}`,
        MetricUnit.Count,
        1,
      );
      obs.log.info('execution end handled', { status: ended.data.detail.status, ...r });
      return r;
    }
    const input = FinishTrainingInput.safeParse(event);
    if (!input.success)
      throw new ValidationError(
        `finish-training needs {dataset, executionName, outcome, retrains, maxRetrains} or a Step Functions status change event: ${input.error.message}`,
      );
    const r = await finishTraining(input.data, { ...deps, datasetFingerprint });
    obs.metrics.addMetric(r.again ? 'TrainingsRepeated' : 'TrainingLocksReleased', MetricUnit.Count, 1);
    obs.log.info('training finished', { dataset: input.data.dataset, outcome: input.data.outcome, ...r });
    return r;
  },
  obs,
);
