import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { loadStorageConfig } from '../../lib/config.ts';
import { ValidationError } from '../../lib/errors.ts';
import { checkReadinessStep, type ReadinessCounts } from '../../lib/pipeline/readiness.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { DatasetName } from '../../lib/storage/keys.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';

const storage = loadStorageConfig();
const obs = createObservability('check-readiness');
const { s3 } = traceClients(obs, createAwsClients(storage));

const Input = z.object({ dataset: DatasetName });

/** State machine task: `{dataset}` → counts only `{total, ready, failed, pending, skipped, orphaned, labels, generation}`. */
export const handler = withObservability(async (event: unknown, _ctx: Context): Promise<ReadinessCounts> => {
  const input = Input.safeParse(event);
  if (!input.success) throw new ValidationError(`check-readiness needs {dataset}: ${input.error.message}`);
  const counts = await checkReadinessStep(s3, storage.bucket, input.data.dataset);
  obs.metrics.addMetric('ImagesPending', MetricUnit.Count, counts.pending);
  obs.log.info('readiness', { ...counts });
  return counts;
}, obs);
