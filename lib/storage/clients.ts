import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { StorageConfig } from '../config.ts';

/** The AWS clients a process uses, created once at module scope and passed into `lib/`. */
export interface AwsClients {
  s3: S3Client;
  sqs: SQSClient;
  sfn: SFNClient;
}

/**
 * Fixed dummy credentials: they spare a local user from configuring AWS. The loopback emulator
 * accepts any on SDK calls, and checks presigned PUTs against these (lib/local/presigned-check.ts).
 */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** An HTTP handler that abandons a call after `timeoutMs` (and a connection attempt after `maxConnectMs`). */
function timedRequestHandler(timeoutMs: number, maxConnectMs: number): NodeHttpHandler {
  return new NodeHttpHandler({
    connectionTimeout: Math.min(timeoutMs, maxConnectMs),
    requestTimeout: timeoutMs,
    // Without this, smithy only logs a warning when requestTimeout passes and the call hangs on.
    throwOnRequestTimeout: true,
  });
}

/** Options of {@link createS3Client}. */
export interface S3ClientOptions {
  region: string;
  /** An S3-compatible endpoint, addressed path-style (the local stack). @default - AWS */
  endpoint?: string;
  /** Timeout of every call, ms (retried up to 3 attempts with backoff). */
  timeoutMs: number;
  /** Cap of the connection timeout, ms. @default 3000 */
  maxConnectMs?: number;
  /** Fixed dummy credentials instead of the default chain (loopback emulators). @default false */
  localCredentials?: boolean;
  /** Follow S3's 301 region redirects (when the configured region may not be the bucket's). @default false */
  followRegionRedirects?: boolean;
}

/**
 * An S3 client with a timeout on every call and retries with backoff (SDK standard mode).
 * @example createS3Client({ region: 'eu-west-1', timeoutMs: 30_000, followRegionRedirects: true })
 */
export function createS3Client(opts: S3ClientOptions): S3Client {
  return new S3Client({
    region: opts.region,
    maxAttempts: 3,
    requestHandler: timedRequestHandler(opts.timeoutMs, opts.maxConnectMs ?? 3_000),
    ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
    ...(opts.localCredentials ? { credentials: LOCAL_CREDENTIALS } : {}),
    ...(opts.followRegionRedirects ? { followRegionRedirects: true } : {}),
  });
}

/**
 * Creates S3, SQS and Step Functions clients with a timeout on every call, retries with backoff
 * (SDK standard mode), and path-style S3 addressing plus dummy credentials when pointed at a
 * loopback emulator (the local stack).
 */
export function createAwsClients(cfg: StorageConfig): AwsClients {
  // A loopback emulator accepts on the event loop of a busy process (the local stack runs the
  // handlers next to it): there a connect may wait as long as the call; over a network, 3 s.
  const requestHandler = timedRequestHandler(cfg.awsTimeoutMs, cfg.endpoint ? cfg.awsTimeoutMs : 3_000);
  const common = {
    region: cfg.region,
    requestHandler,
    maxAttempts: 3,
    ...(cfg.endpoint ? { endpoint: cfg.endpoint, credentials: LOCAL_CREDENTIALS } : {}),
  };
  return {
    s3: createS3Client({
      region: cfg.region,
      endpoint: cfg.endpoint,
      timeoutMs: cfg.awsTimeoutMs,
      localCredentials: Boolean(cfg.endpoint),
    }),
    sqs: new SQSClient(common),
    sfn: new SFNClient({
      ...common,
      ...(cfg.sfnEndpoint ? { endpoint: cfg.sfnEndpoint, credentials: LOCAL_CREDENTIALS } : {}),
    }),
  };
}
