import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SettingsCache } from '../capture/settings.ts';
import type { FeatureExtractor } from '../model/types.ts';
import type { LoadedWeights } from '../model/weights.ts';
import type { TrainingSfnClient } from '../pipeline/training-lock.ts';
import type { InferenceQueue } from '../serving/inference-queue.ts';
import type { ModelCache } from '../serving/model-cache.ts';
import type { Log } from '../util/log.ts';
import type { AuthOptions } from './auth.ts';
import type { ExecutionHistory } from './executions.ts';
import type { KeyScope } from './keys.ts';

/** The Step Functions calls trainings make (start, describe the lock's holder); an `SFNClient` fits. */
export type StartExecutionClient = TrainingSfnClient;

/** Settings of the API (see `loadApiConfig` for the environment variables behind them). */
export interface ApiConfig {
  bucket: string;
  /** Training state machine started by `POST /datasets/{d}/trainings`. */
  stateMachineArn: string;
  /** Ingest queue `POST /datasets/{d}/reindex` sends to; reindex answers 503 without it. */
  ingestQueueUrl?: string | undefined;
  /** Largest request body, and largest decoded `image` of a JSON body, in bytes. @default 6 MB */
  maxBodyBytes: number;
  /** Largest decoded image, width × height (sharp `limitInputPixels`). @default 40 megapixels */
  limitInputPixels: number;
  /** Images per forward pass when requests queue up. @default 8 */
  maxBatch: number;
  /** `Access-Control-Allow-Origin` sent on every response; no CORS headers when undefined. */
  corsOrigin: string | undefined;
  /** Folder of the built console (`index.html`) served at `GET /`; 404 there when absent. */
  consoleDir?: string;
}

/** Counters the handler publishes (Powertools Metrics in Lambda; nothing locally). */
export interface ApiMetrics {
  /** A prediction answered 200, with its total latency. */
  prediction(latencyMs: number): void;
  /** A 4xx answer. */
  clientError(status: number, code: string): void;
}

/** Everything `createApi` needs; built once per process by the handler or the local stack. */
export interface ApiDeps {
  s3: S3Client;
  sfn: StartExecutionClient;
  /** For `POST /datasets/{d}/reindex` (sends to `config.ingestQueueUrl`). */
  sqs?: SQSClient;
  /** Training executions, for `lastExecution` in `GET /datasets/{d}`; null there when absent. */
  executions?: ExecutionHistory;
  /**
   * The container's extractor, loading or loaded: a promise, or a getter that is asked again after
   * a failed load (e.g. `startLazy(...).get`). A failure is reported by `/health` and turns
   * predictions into 500s; the other routes keep working.
   */
  extractor: Promise<FeatureExtractor> | (() => Promise<FeatureExtractor>);
  cache: ModelCache;
  /**
   * Loads the deployment's VGG16 weights for `GET /datasets/{d}/model/export` (called only when a
   * version's export does not exist yet); without it that route answers 501.
   */
  baseWeights?: () => Promise<LoadedWeights>;
  config: ApiConfig;
  /** The batch queue of `POST /datasets/{d}/batches` (lib/batch/); without it that route answers 501. */
  batches?: { sqs: Pick<SQSClient, 'send'>; queueUrl: string; inboxPrefix?: string };
  log: Log;
  metrics?: ApiMetrics;
  /** Scoped API keys (lib/api/auth.ts). @default - none: every request is admin (tests) */
  auth?: AuthOptions;
  /** Clock (tests). @default () => new Date() */
  now?: () => Date;
}

/** Extractor load state, tracked without awaiting (for /health). */
export type ExtractorState =
  | { status: 'loading' }
  | { status: 'ready'; extractor: FeatureExtractor; queue: InferenceQueue }
  | { status: 'failed'; error: unknown };

/** What route functions receive: the deps plus state derived once in `createApi`. */
export interface RouteContext extends ApiDeps {
  now: () => Date;
  /** Resolves with the extractor and its queue, or rejects with a 500-class error. */
  inference(): Promise<{ extractor: FeatureExtractor; queue: InferenceQueue }>;
  extractorState(): ExtractorState;
  /** The scope of the request's API key (admin when the API runs without keys). */
  scope: KeyScope;
  /** Datasets' settings (the capture policy), cached per process. */
  settings: SettingsCache;
}
