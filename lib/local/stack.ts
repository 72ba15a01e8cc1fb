/**
 * `tlearn local` (= `npm start`): the whole pipeline on this machine, through the same handlers
 * as in AWS. Wires the loopback S3 + SQS emulator (bucket mirrored under the data dir), the S3 →
 * ingest queue notification, Lambda-style pollers for the two queues, the state machine CDK
 * synthesizes (run by a local interpreter behind a Step Functions endpoint) and the HTTP API.
 *
 * Handlers read their configuration from the environment at import, exactly as in Lambda, so the
 * stack sets `process.env` first and imports them after (in this process, which therefore runs
 * one stack at a time; `stop()` restores the environment).
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SFNClient } from '@aws-sdk/client-sfn';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { DRIFT_FUNCTION, DRIFT_SETTINGS, driftScheduleEvent } from '../capture/drift.ts';
import { ENV } from '../config.ts';
import { FUNCTION_NAMES } from '../functions.ts';
import { DEFAULT_INPUT_SIZE, type Pooling, type Precision } from '../model/spec.ts';
import { localPipelineSettings, type PipelineSettings } from '../pipeline/settings.ts';
import { type AwsClients, createAwsClients } from '../storage/clients.ts';
import type { Log } from '../util/log.ts';
import { LOCAL_DEFAULTS } from './defaults.ts';
import type { DemoOutcome, DemoProgress } from './demo.ts';
import { type LocalEmulator, startLocalEmulator } from './emulator.ts';
import { envScope } from './env-scope.ts';
import { tryFetchBaseWeights } from './fetch-weights.ts';
import { describeRecovery, recoverAfterRestart } from './recover.ts';
import { startS3Notifications } from './s3-notifications.ts';
import { type LocalSchedule, startLocalSchedule } from './schedule.ts';
import { type ApiHandler, startStackApi } from './stack-api.ts';
import { startStackDemo } from './stack-demo.ts';
import { setHandlerEnvironment } from './stack-env.ts';
import {
  type LocalHandlers,
  loadHandlers,
  synthesizeTraining,
  type TrainingDefinitionLike,
  type TrainingLoopSettings,
} from './stack-handlers.ts';
import { createStackQueues, startQueuePollers } from './stack-queues.ts';
import { startStepFunctionsEndpoint, startTrainingRunner } from './stack-sfn.ts';
import { createStackShutdown, type StackShutdown } from './stack-shutdown.ts';
import { describeStack } from './stack-text.ts';
import { type ResolvedWeights, randomWeightsNotice, resolveStackWeights } from './weights.ts';

// Weights resolution, the printed text and the handlers' types live in their own files; still
// exported from here.
export type {
  FunctionName,
  LocalHandlers,
  TrainingDefinitionLike,
  TrainingLoopSettings,
} from './stack-handlers.ts';
export { describeStack, displayPath } from './stack-text.ts';
export { type ResolvedWeights, randomWeightsNotice, resolveStackWeights } from './weights.ts';

/** Options of {@link startLocalStack}. */
export interface LocalStackOptions {
  /** Where the bucket, executions, demo images and base models live. @default ./.tlearn */
  dataDir?: string;
  /** HTTP API port (0: a free one). @default 3000 */
  apiPort?: number;
  /** S3 + SQS port (0: a free one). @default 4566 */
  awsPort?: number;
  /** Step Functions port (0: a free one). @default 8083 */
  sfnPort?: number;
  /** `random`, `random:SEED` or a tfjs model folder/URI. @default the newest under `{dataDir}/base-models/`, else random:42 */
  weights?: string;
  /** Without imported weights and without `weights`, try once to fetch the real ones. @default true */
  fetchWeights?: boolean;
  /** Square network input, pixels. @default 150 */
  inputSize?: number;
  pooling?: Pooling;
  /** The handlers' ENV.PRECISION, as the CDK context `tlearn:precision` sets it. @default 'fp32' */
  precision?: Precision;
  /** Settle wait of the state machine, seconds. @default localPipelineSettings().training.settleSeconds */
  settleSeconds?: number;
  /** Upload and train a demo dataset when the bucket has none. @default true */
  demo?: boolean;
  /** Demo images per class. @default 12 */
  demoPerClass?: number;
  /** Require this `x-api-key` on the API (API Gateway style). */
  apiKey?: string;
  log: Log;
  /** Where user-facing text goes (addresses, weights notice, demo report). @default stdout */
  print?: (text: string) => void;
  /** Demo progress (e.g. a progress bar); without it, progress is logged. */
  onDemoProgress?: (p: DemoProgress) => void;
  /** Handlers to use instead of `functions/<name>/handler.ts` (tests). */
  handlers?: Partial<LocalHandlers>;
  /** Run the Lambda bundles of this folder (`npm run bundle`) instead of the TypeScript handlers. */
  bundles?: string;
  /** Images of no dataset a batch may read (the stack's `inboxPrefix`). @default DEFAULT_INBOX_PREFIX */
  inboxPrefix?: string;
  /** Period of the drift schedule, ms. @default DRIFT_SETTINGS.everyMinutes (an hour) */
  driftEveryMs?: number;
  /** The state machine to run. @default `synthesizeTrainingDefinition` of infra/definition.ts */
  definition?: (opts: TrainingLoopSettings) => Promise<TrainingDefinitionLike>;
}

/** A running local stack. */
export interface LocalStack {
  apiUrl: string;
  /** S3 + SQS endpoint. */
  awsEndpoint: string;
  sfnEndpoint: string;
  bucket: string;
  region: string;
  stateMachineArn: string;
  dataDir: string;
  weights: ResolvedWeights;
  /** Settles when the demo has a promoted model (undefined: no demo, or it was stopped). */
  demo: Promise<DemoOutcome | undefined>;
  /** The drift schedule (deployed: an EventBridge rule running drift-metric). */
  driftSchedule: LocalSchedule;
  /** Stops accepting, finishes work in flight, flushes the disk mirror, closes every server. */
  stop(): Promise<void>;
}

let stacksStarted = 0;

/** The training loop's settings: the local ones, with the settle wait asked for. */
function trainingLoopSettings(
  settings: PipelineSettings,
  settleSeconds: number | undefined,
): TrainingLoopSettings {
  return {
    settleSeconds: settleSeconds ?? settings.training.settleSeconds,
    pollSeconds: settings.training.pollSeconds,
    maxRounds: settings.training.maxRounds,
    maxRetrains: settings.training.maxRetrains,
  };
}

/** The stack's own AWS clients (recovery, demo, pollers), destroyed by the shutdown. */
function createStackClients(
  o: { bucket: string; region: string; endpoint: string; sfnEndpoint: string },
  shutdown: StackShutdown,
): AwsClients {
  const clients = createAwsClients({ ...o, awsTimeoutMs: 10_000 });
  shutdown.add('the stack clients', async () => {
    clients.s3.destroy();
    clients.sqs.destroy();
    clients.sfn.destroy();
  });
  return clients;
}

/** Prints the stack's addresses, and the notice when it runs on random weights it fell back to. */
function printStarted(print: (text: string) => void, info: Parameters<typeof describeStack>[0]): void {
  print(describeStack(info));
  const { weights, dataDir } = info;
  if (weights.fallback && weights.source.kind === 'random')
    print(randomWeightsNotice(dataDir, weights.source.seed, weights.fetchError));
}

/**
 * The monitoring's drift schedule (an EventBridge rule deployed): the same handler, on a timer.
 * Locally no metric is published (POWERTOOLS_METRICS_DISABLED); a drift above the alarm
 * threshold is a warning in the stack's log.
 */
function startDriftSchedule(
  opts: LocalStackOptions,
  handlers: LocalHandlers,
  region: string,
  shutdown: StackShutdown,
): LocalSchedule {
  const driftSchedule = startLocalSchedule({
    functionName: DRIFT_FUNCTION,
    handler: handlers[DRIFT_FUNCTION],
    everyMs: opts.driftEveryMs ?? DRIFT_SETTINGS.everyMinutes * 60_000,
    event: driftScheduleEvent,
    region,
    timeoutMs: DRIFT_SETTINGS.timeoutSeconds * 1000,
    log: opts.log,
  });
  shutdown.add('the drift schedule', () => driftSchedule.stop());
  return driftSchedule;
}

/**
 * The bucket's notifications to the ingest queue, then the recovery after a stop or a crash: lost
 * messages, dead locks, models behind their features (lib/local/recover.ts).
 */
async function startNotificationsAndRecover(o: {
  emulator: LocalEmulator;
  clients: { s3: S3Client; sqs: SQSClient; sfn: SFNClient };
  ingestQueueUrl: string;
  bucket: string;
  region: string;
  stateMachineArn: string;
  shutdown: StackShutdown;
  log: Log;
}): Promise<void> {
  const { clients, bucket, log } = o;
  const notifier = startS3Notifications({
    onObjectEvent: o.emulator.onObjectEvent,
    sqs: clients.sqs,
    queueUrl: o.ingestQueueUrl,
    bucket,
    region: o.region,
    log,
  });
  o.shutdown.add('S3 notifications', () => notifier.stop());
  const recovered = await recoverAfterRestart({
    s3: clients.s3,
    bucket,
    notifier,
    lock: { s3: clients.s3, bucket, sfn: clients.sfn, stateMachineArn: o.stateMachineArn },
    log,
  });
  for (const line of describeRecovery(recovered)) log.info(line);
}

/**
 * The stack's servers (the emulator with its queues, the API, the Step Functions endpoint) and
 * the functions' environment, in the order the handlers need; the state machine is synthesized.
 */
async function startServers(
  opts: LocalStackOptions,
  base: {
    dataDir: string;
    settings: PipelineSettings;
    weights: ResolvedWeights;
    env: ReturnType<typeof envScope>;
    shutdown: StackShutdown;
  },
) {
  const { dataDir, settings, weights, env, shutdown } = base;
  const { log } = opts;
  const region = LOCAL_DEFAULTS.region;
  const bucket = LOCAL_DEFAULTS.bucket;
  const emulator = await startLocalEmulator({
    port: opts.awsPort ?? LOCAL_DEFAULTS.s3Port,
    region,
    buckets: [bucket],
    dataDir,
    log,
  });
  shutdown.add('the S3 + SQS emulator', () => emulator.stop());
  const { api, handler: apiHandler } = await startStackApi({
    port: opts.apiPort ?? LOCAL_DEFAULTS.apiPort,
    region,
    apiKey: opts.apiKey,
    dataDir,
    shutdown,
    log,
  });
  const queues = createStackQueues(emulator, settings);
  await setHandlerEnvironment(env, {
    bucket,
    region,
    endpoint: emulator.endpoint,
    queues,
    inboxPrefix: opts.inboxPrefix,
    weights,
    inputSize: opts.inputSize ?? DEFAULT_INPUT_SIZE,
    pooling: opts.pooling,
    precision: opts.precision,
    dataDir,
    bundles: opts.bundles,
    log,
  });
  const training = await synthesizeTraining(
    trainingLoopSettings(settings, opts.settleSeconds),
    opts.definition,
  );
  const sfn = await startStepFunctionsEndpoint({ port: opts.sfnPort ?? 8083, region, shutdown, log });
  env.set(ENV.SFN_ENDPOINT, sfn.endpoint);
  env.set(ENV.STATE_MACHINE_ARN, sfn.stateMachineArn);
  return { emulator, api, apiHandler, sfn, queues, training };
}

/**
 * Starts the local stack and returns once every server listens; the demo (if any) continues in
 * the background (`demo` settles when it is done).
 *
 * @example
 * const stack = await startLocalStack({ dataDir: '.tlearn', log: consoleLog });
 * process.once('SIGINT', () => stack.stop());
 */
export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const { log } = opts;
  const print = opts.print ?? ((text: string) => process.stdout.write(`${text}\n`));
  const dataDir = resolve(opts.dataDir ?? '.tlearn');
  const region = LOCAL_DEFAULTS.region;
  const bucket = LOCAL_DEFAULTS.bucket;
  // Queues, windows, timeouts and the training loop: the deployed settings, scaled (settings.ts).
  const settings = localPipelineSettings();
  await mkdir(dataDir, { recursive: true });
  stacksStarted++;

  const weights = await resolveStackWeights(
    opts.weights,
    dataDir,
    opts.fetchWeights === false ? {} : { fetch: (dir) => tryFetchBaseWeights(dir, { log }) },
  );
  const env = envScope();
  const shutdown = createStackShutdown(log, () => env.restore());

  try {
    const { emulator, api, apiHandler, sfn, queues, training } = await startServers(opts, {
      dataDir,
      settings,
      weights,
      env,
      shutdown,
    });
    const { stateMachineArn } = sfn;

    const handlers = await loadHandlers(FUNCTION_NAMES, opts, stacksStarted);
    await startTrainingRunner({ endpoint: sfn, training, handlers, region, dataDir, shutdown, log });

    const clients = createStackClients(
      { bucket, region, endpoint: emulator.endpoint, sfnEndpoint: sfn.endpoint },
      shutdown,
    );
    await startQueuePollers({ sqs: clients.sqs, queues, settings, handlers, region, shutdown, log });
    const driftSchedule = startDriftSchedule(opts, handlers, region, shutdown);
    await startNotificationsAndRecover({
      emulator,
      clients,
      ingestQueueUrl: queues.ingest.queueUrl,
      bucket,
      region,
      stateMachineArn,
      shutdown,
      log,
    });

    apiHandler.resolve(handlers.api as ApiHandler);

    printStarted(print, {
      apiUrl: api.url,
      awsEndpoint: emulator.endpoint,
      sfnEndpoint: sfn.endpoint,
      bucket,
      stateMachineArn,
      dataDir,
      restored: emulator.restoredObjects,
      weights,
      apiKey: opts.apiKey,
    });

    const demo =
      opts.demo === false
        ? Promise.resolve(undefined)
        : startStackDemo({
            clients,
            bucket,
            dataDir,
            stateMachineArn,
            apiUrl: api.url,
            apiKey: opts.apiKey,
            perClass: opts.demoPerClass,
            onProgress: opts.onDemoProgress,
            print,
            shutdown,
            log,
          });

    let stopping: Promise<void> | undefined;
    return {
      apiUrl: api.url,
      awsEndpoint: emulator.endpoint,
      sfnEndpoint: sfn.endpoint,
      bucket,
      region,
      stateMachineArn,
      dataDir,
      weights,
      demo,
      driftSchedule,
      stop() {
        stopping ??= shutdown.stopAll();
        return stopping;
      },
    };
  } catch (err) {
    await shutdown.stopAll();
    throw err;
  }
}
