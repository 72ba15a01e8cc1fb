/**
 * The demo of the local stack (lib/local/stack.ts): with no dataset in the bucket, upload one and
 * train it through the training lock (lib/local/demo.ts), in the background; the outcome is printed.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { describeError } from '../errors.ts';
import { requestTraining } from '../pipeline/training-lock.ts';
import type { Log } from '../util/log.ts';
import { type DemoOutcome, type DemoProgress, formatDemoOutcome, runDemo } from './demo.ts';
import type { StackShutdown } from './stack-shutdown.ts';
import { describeProgress } from './stack-text.ts';

/** What {@link startStackDemo} needs. */
export interface StackDemoOptions {
  clients: { s3: S3Client; sfn: SFNClient };
  bucket: string;
  dataDir: string;
  stateMachineArn: string;
  apiUrl: string;
  apiKey?: string;
  /** Demo images per class. */
  perClass?: number;
  onProgress?: (p: DemoProgress) => void;
  print: (text: string) => void;
  shutdown: StackShutdown;
  log: Log;
}

/**
 * Starts the demo; settles when it has a promoted model (undefined: no demo was needed, it failed
 * (logged) or it was stopped). The shutdown stops it with the parts that take outside requests.
 */
export function startStackDemo(opts: StackDemoOptions): Promise<DemoOutcome | undefined> {
  const { clients, bucket, stateMachineArn, log } = opts;
  const demoAbort = new AbortController();
  const demo = runDemo({
    s3: clients.s3,
    bucket,
    dataDir: opts.dataDir,
    perClass: opts.perClass,
    signal: demoAbort.signal,
    onProgress: opts.onProgress ?? ((p) => log.info(`demo: ${describeProgress(p)}`)),
    startTraining: async (dataset) => {
      // Through the lock, like every training: a running one is told to train again.
      await requestTraining(
        dataset,
        'manual',
        { whenRunning: 'mark' },
        { s3: clients.s3, bucket, sfn: clients.sfn, stateMachineArn, log },
      );
    },
    log,
  }).then(
    (outcome) => {
      if (outcome)
        opts.print(
          formatDemoOutcome(outcome, {
            apiUrl: opts.apiUrl,
            ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
          }),
        );
      return outcome;
    },
    (err: unknown) => {
      log.error(`demo: ${describeError(err)}`);
      return undefined;
    },
  );
  // The demo's wait ends first on stop; the stack's own clients close after the servers.
  opts.shutdown.addFront('the demo', async () => {
    demoAbort.abort();
    await demo;
  });
  return demo;
}
