import { startFauxqs } from 'fauxqs';
import type { StorageConfig } from '../../lib/config.ts';
import { type AwsClients, createAwsClients } from '../../lib/storage/clients.ts';

/**
 * A real S3 + SQS emulator (fauxqs) on a free loopback port, with SDK clients pointed at it.
 * Tests talk to it over HTTP exactly as the handlers talk to AWS.
 */
export interface Emulator {
  endpoint: string;
  region: string;
  bucket: string;
  clients: AwsClients;
  storage: StorageConfig;
  /** Creates a queue (and returns its URL). */
  createQueue(name: string, attributes?: Record<string, string>): { queueUrl: string; queueArn: string };
  /** Removes all objects and messages (keeps queues and the bucket). */
  reset(): void;
  stop(): Promise<void>;
}

/** Starts the emulator with one bucket. Call `stop()` in afterAll. */
export async function startEmulator(opts: { bucket?: string; region?: string } = {}): Promise<Emulator> {
  const region = opts.region ?? 'us-east-1';
  const bucket = opts.bucket ?? 'tlearn-test';
  const server = await startFauxqs({
    port: 0,
    host: '127.0.0.1',
    logger: false,
    defaultRegion: region,
  } as Parameters<typeof startFauxqs>[0]);
  server.createBucket(bucket);
  const endpoint = `http://127.0.0.1:${server.port}`;
  const storage: StorageConfig = { bucket, region, endpoint, awsTimeoutMs: 5_000 };
  const clients = createAwsClients(storage);
  return {
    endpoint,
    region,
    bucket,
    clients,
    storage,
    createQueue(name, attributes) {
      const q = server.createQueue(name, attributes ? { attributes } : undefined);
      return { queueUrl: q.queueUrl, queueArn: q.queueArn };
    },
    reset() {
      server.reset();
    },
    async stop() {
      clients.s3.destroy();
      clients.sqs.destroy();
      clients.sfn.destroy();
      await server.stop();
    },
  };
}
