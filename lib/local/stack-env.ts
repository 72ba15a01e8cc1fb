/**
 * The environment of every function of the local stack (lib/local/stack.ts), as the CDK stack sets
 * it, plus the loopback endpoints. The handlers read it at import, so it is set before they load.
 */

import { join, resolve } from 'node:path';
import { LOCAL_KEYS_FILE } from '../api/keys.ts';
import { DEFAULT_INBOX_PREFIX } from '../batch/settings.ts';
import { ENV } from '../config.ts';
import type { Pooling, Precision } from '../model/spec.ts';
import type { Log } from '../util/log.ts';
import { bundledConsoleDir } from './bundles.ts';
import { buildLocalConsole } from './console-build.ts';
import type { envScope } from './env-scope.ts';
import type { StackQueues } from './stack-queues.ts';
import type { ResolvedWeights } from './weights.ts';

/** What the functions' environment is made of. */
export interface HandlerEnvironment {
  bucket: string;
  region: string;
  /** The S3 + SQS endpoint. */
  endpoint: string;
  queues: Pick<StackQueues, 'features' | 'ingest' | 'batchQueue'>;
  inboxPrefix?: string;
  weights: ResolvedWeights;
  inputSize: number;
  pooling?: Pooling;
  precision?: Precision;
  dataDir: string;
  /** The Lambda bundles' folder, whose console is served (default: the console built into the data dir). */
  bundles?: string;
  log: Log;
}

/**
 * Sets the functions' environment in `env` (restored on stop), building the console they serve
 * when it does not come from the bundles.
 */
export async function setHandlerEnvironment(
  env: ReturnType<typeof envScope>,
  e: HandlerEnvironment,
): Promise<void> {
  env.set(ENV.BUCKET, e.bucket);
  env.set(ENV.REGION, e.region);
  env.set(ENV.ENDPOINT, e.endpoint);
  env.set(ENV.FEATURES_QUEUE_URL, e.queues.features.queueUrl);
  env.set(ENV.INGEST_QUEUE_URL, e.queues.ingest.queueUrl);
  env.set(ENV.BATCH_QUEUE_URL, e.queues.batchQueue.queueUrl);
  env.set(ENV.INBOX_PREFIX, e.inboxPrefix ?? DEFAULT_INBOX_PREFIX);
  env.set(ENV.WEIGHTS, e.weights.source.kind === 'random' ? `random:${e.weights.source.seed}` : 'uri');
  env.set(ENV.BASE_MODEL_URI, e.weights.source.kind === 'uri' ? e.weights.source.uri : undefined);
  env.set(ENV.INPUT_SIZE, String(e.inputSize));
  env.set(ENV.POOLING, e.pooling ?? 'flatten');
  env.set(ENV.PRECISION, e.precision ?? 'fp32');
  env.set(ENV.MODEL_REFRESH_SECONDS, '1');
  env.set(ENV.API_KEYS_FILE, join(e.dataDir, LOCAL_KEYS_FILE));
  env.set(
    ENV.CONSOLE_DIR,
    e.bundles === undefined
      ? await buildLocalConsole(e.dataDir, e.log)
      : await bundledConsoleDir(resolve(e.bundles)),
  );
  // Nothing here may reach AWS: fixed credentials stop the SDK from probing for real ones.
  env.set('AWS_ACCESS_KEY_ID', 'local');
  env.set('AWS_SECRET_ACCESS_KEY', 'local');
  env.set('AWS_SESSION_TOKEN', undefined);
  env.set('AWS_PROFILE', undefined);
  env.set('AWS_EC2_METADATA_DISABLED', 'true');
  env.setDefault('POWERTOOLS_LOG_LEVEL', process.env.TLEARN_DEBUG ? 'DEBUG' : 'WARN');
  env.setDefault('POWERTOOLS_METRICS_DISABLED', 'true');
}
