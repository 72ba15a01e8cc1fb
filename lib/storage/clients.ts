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
 * Creates S3, SQS and Step Functions clients with a timeout on every call, retries with backoff
 * (SDK standard mode), and path-style S3 addressing plus dummy credentials when pointed at a
 * loopback emulator (the local stack).
 */
export function createAwsClients(cfg: StorageConfig): AwsClients {
  const requestHandler = new NodeHttpHandler({
    // A loopback emulator accepts on the event loop of a busy process (the local stack runs the
    // handlers next to it): there a connect may wait as long as the call; over a network, 3 s.
    connectionTimeout: cfg.endpoint ? cfg.awsTimeoutMs : Math.min(cfg.awsTimeoutMs, 3_000),
    requestTimeout: cfg.awsTimeoutMs,
    // Without this, smithy only logs a warning when requestTimeout passes and the call hangs on.
    throwOnRequestTimeout: true,
  });
  const common = {
    region: cfg.region,
    requestHandler,
    maxAttempts: 3,
    // A loopback emulator accepts any credentials; fixed ones spare a local user from configuring AWS.
    ...(cfg.endpoint
      ? { endpoint: cfg.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
  };
  return {
    s3: new S3Client({ ...common, forcePathStyle: cfg.endpoint !== undefined }),
    sqs: new SQSClient(common),
    sfn: new SFNClient({
      ...common,
      ...(cfg.sfnEndpoint
        ? { endpoint: cfg.sfnEndpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
        : {}),
    }),
  };
}
