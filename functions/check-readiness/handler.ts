import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { loadStorageConfig } from '../../lib/config.ts';
import { ValidationError } from '../../lib/errors.ts';
import { checkReadiness, type ReadinessReport } from '../../lib/pipeline/readiness.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { DATASET_NAME_RE } from '../../lib/storage/keys.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';

const storage = loadStorageConfig();
const obs = createObservability('check-readiness');
const { s3 } = traceClients(obs, createAwsClients(storage));

const Input = z.object({ dataset: z.string().regex(DATASET_NAME_RE) });

/** State machine task: `{dataset}` → `{total, ready, failed, pending, skipped, labels}`. */
export const handler = withObservability(async (event: unknown, _ctx: Context): Promise<ReadinessReport> => {
  const input = Input.safeParse(event);
  if (!input.success) throw new ValidationError(`check-readiness needs {dataset}: ${input.error.message}`);
  const report = await checkReadiness(s3, storage.bucket, input.data.dataset);
  obs.metrics.addMetric('ImagesPending', MetricUnit.Count, report.pending);
  obs.log.info('readiness', { ...report, labels: Object.keys(report.labels).length });
  return report;
}, obs);
