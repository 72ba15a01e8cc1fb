/**
 * API settings from the environment (variable names in `lib/config.ts` `ENV`).
 */
import { z } from 'zod';
import { InboxPrefixSchema } from '../batch/settings.ts';
import {
  ENV,
  loadExtractBatchSize,
  loadIngestQueueConfig,
  loadStateMachineConfig,
  loadStorageConfig,
  readEnv as read,
} from '../config.ts';
import { DEFAULT_LIMIT_INPUT_PIXELS } from '../images/preprocess.ts';
import { DEFAULT_MAX_BODY_BYTES } from './http.ts';
import type { ApiConfig } from './types.ts';

/** API settings plus the model cache's refresh interval. */
export interface ApiEnvConfig extends ApiConfig {
  modelRefreshSeconds: number;
  /** Local stack only: the scoped keys' file (else keys are API Gateway's). */
  apiKeysFile: string | undefined;
  /** AWS: the `tlearn-stack` tag value of this stack's keys (lib/api/keys-aws.ts). */
  keyStackTag: string | undefined;
  /** Batch queue (`POST /datasets/{d}/batches`); unset = that route answers 501. */
  batchQueueUrl: string | undefined;
  /** Where a batch may also read images that belong to no dataset. @default 'inbox/' */
  inboxPrefix: string;
}

type Env = Record<string, string | undefined>;

/**
 * Reads everything the API needs and fails at cold start naming the bad variable.
 * Requires TLEARN_BUCKET, AWS_REGION and TLEARN_STATE_MACHINE_ARN.
 */
export function loadApiConfig(env: Env): ApiEnvConfig {
  const storage = loadStorageConfig(env);
  const sm = loadStateMachineConfig(env);
  return {
    bucket: storage.bucket,
    stateMachineArn: sm.stateMachineArn,
    ingestQueueUrl: loadIngestQueueConfig(env).ingestQueueUrl,
    maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
    limitInputPixels: DEFAULT_LIMIT_INPUT_PIXELS,
    maxBatch: loadExtractBatchSize(env),
    corsOrigin: read(env, ENV.CORS_ORIGIN, z.string().max(200).optional()),
    consoleDir: read(env, ENV.CONSOLE_DIR, z.string().max(1000).optional()),
    modelRefreshSeconds: read(
      env,
      ENV.MODEL_REFRESH_SECONDS,
      z.coerce.number().int().min(0).max(3600).default(5),
    ),
    apiKeysFile: read(env, ENV.API_KEYS_FILE, z.string().min(1).optional()),
    keyStackTag: read(
      env,
      ENV.KEY_STACK_TAG,
      z
        .string()
        .regex(/^[A-Za-z0-9+\-=._:/]{1,128}$/)
        .optional(),
    ),
    batchQueueUrl: read(env, ENV.BATCH_QUEUE_URL, z.string().url().optional()),
    inboxPrefix: read(env, ENV.INBOX_PREFIX, InboxPrefixSchema),
  };
}
