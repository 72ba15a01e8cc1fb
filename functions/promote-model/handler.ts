import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { loadStorageConfig } from '../../lib/config.ts';
import { ValidationError } from '../../lib/errors.ts';
import { type PromoteResult, promoteModel } from '../../lib/pipeline/promote.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { DatasetName, MODEL_VERSION_RE } from '../../lib/storage/keys.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';

const storage = loadStorageConfig();
const obs = createObservability('promote-model');
const { s3 } = traceClients(obs, createAwsClients(storage));

const Input = z.object({
  dataset: DatasetName,
  version: z.string().regex(MODEL_VERSION_RE),
});

/** State machine task: `{dataset, version}` → `{promoted, version, previous, reason?}`. */
export const handler = withObservability(async (event: unknown, _ctx: Context): Promise<PromoteResult> => {
  const input = Input.safeParse(event);
  if (!input.success)
    throw new ValidationError(`promote-model needs {dataset, version}: ${input.error.message}`);
  const r = await promoteModel(input.data, { s3, bucket: storage.bucket, log: obs.log });
  obs.metrics.addMetric(r.promoted ? 'ModelsPromoted' : 'PromotionsSkipped', MetricUnit.Count, 1);
  return r;
}, obs);
