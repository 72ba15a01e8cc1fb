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
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, SQSEvent } from 'aws-lambda';
import { createLocalKeyStore, LOCAL_KEYS_FILE } from '../api/keys.ts';
import { BATCH_QUEUE, BATCH_SETTINGS, DEFAULT_INBOX_PREFIX } from '../batch/settings.ts';
import { DRIFT_FUNCTION, DRIFT_SETTINGS, driftScheduleEvent } from '../capture/drift.ts';
import { ENV } from '../config.ts';
import { ConfigError, describeError } from '../errors.ts';
import { FUNCTION_NAMES, type FunctionName } from '../functions.ts';
import { DEFAULT_INPUT_SIZE, type Pooling, type Precision } from '../model/spec.ts';
import {
  DEAD_LETTER_QUEUE,
  DEAD_LETTER_SETTINGS,
  deadLetterVisibilitySeconds,
  localPipelineSettings,
  localQueueSettings,
  type QueueSettings,
  visibilityTimeoutSeconds,
} from '../pipeline/settings.ts';
import { requestTraining } from '../pipeline/training-lock.ts';
import { createAwsClients } from '../storage/clients.ts';
import type { Log } from '../util/log.ts';
import { bundledConsoleDir, importBundleHandlers } from './bundles.ts';
import { buildLocalConsole } from './console-build.ts';
import { LOCAL_DEFAULTS } from './defaults.ts';
import { type DemoOutcome, type DemoProgress, formatDemoOutcome, runDemo } from './demo.ts';
import { startLocalEmulator } from './emulator.ts';
import { envScope } from './env-scope.ts';
import { tryFetchBaseWeights } from './fetch-weights.ts';
import { startHttpApi } from './http-api.ts';
import type { LambdaHandler } from './lambda-context.ts';
import { describeRecovery, recoverAfterRestart } from './recover.ts';
import { startS3Notifications } from './s3-notifications.ts';
import { type LocalSchedule, startLocalSchedule } from './schedule.ts';
import { createExecutionEndRule } from './sfn-events.ts';
import { createSfnRunner, type SfnRunner } from './sfn-runner.ts';
import { startSfnServer } from './sfn-server.ts';
import { startSqsPoller } from './sqs-poller.ts';
import { describeProgress, describeStack } from './stack-text.ts';
import { type ResolvedWeights, randomWeightsNotice, resolveStackWeights } from './weights.ts';

// Weights resolution and the printed text live in their own files; still exported from here.
export { describeStack, displayPath } from './stack-text.ts';
export { type ResolvedWeights, randomWeightsNotice, resolveStackWeights } from './weights.ts';

/** The functions of the stack (lib/functions.ts), as `functions/<name>/handler.ts` names them. */
export type { FunctionName };

/** Every handler the stack runs. */
export type LocalHandlers = Record<FunctionName, LambdaHandler>;

/** The training state machine as `infra/definition.ts` synthesizes it. */
export interface TrainingDefinitionLike {
  definition: Record<string, unknown>;
  /** Task `Resource` → the function it stands for. */
  taskFunctions: Record<string, string>;
}

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

const STATE_MACHINE_NAME = 'tlearn-train-local';
const execFileAsync = promisify(execFile);

/** The state machine's wait and loop settings the local stack synthesizes it with. */
export interface TrainingLoopSettings {
  settleSeconds: number;
  pollSeconds: number;
  maxRounds: number;
  maxRetrains: number;
}

let stacksStarted = 0;

/**
 * Imports the real handlers. Each stack imports fresh module instances (a query on the URL), since
 * a handler binds its configuration at import and an earlier stack in this process had other ports.
 */
async function importHandlers(names: readonly FunctionName[]): Promise<Partial<LocalHandlers>> {
  const out: Partial<LocalHandlers> = {};
  for (const name of names) {
    const url = new URL(`../../functions/${name}/handler.ts`, import.meta.url);
    const href = stacksStarted > 1 ? `${url.href}?stack=${stacksStarted}` : url.href;
    try {
      const mod = (await import(href)) as { handler?: LambdaHandler };
      if (typeof mod.handler !== 'function') throw new Error('it exports no handler function');
      out[name] = mod.handler;
    } catch (err) {
      throw new ConfigError(
        `cannot load the ${name} handler (${relative(process.cwd(), url.pathname)}): ${describeError(err)}`,
        {
          cause: err,
        },
      );
    }
  }
  return out;
}

/**
 * The CDK app's state machine, synthesized in a child process (infra/print-definition.ts):
 * aws-cdk-lib would otherwise stay loaded in the stack's process for its whole life (~80 MB).
 */
async function defaultDefinition(opts: TrainingLoopSettings): Promise<TrainingDefinitionLike> {
  const root = dirname(dirname(fileURLToPath(new URL('../../infra/definition.ts', import.meta.url))));
  const { stdout } = await execFileAsync(
    process.execPath,
    [join(root, 'bin', 'run-ts.js'), join(root, 'infra', 'print-definition.ts'), JSON.stringify(opts)],
    { cwd: root, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 },
  );
  return JSON.parse(stdout) as TrainingDefinitionLike;
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
  const settleSeconds = opts.settleSeconds ?? settings.training.settleSeconds;
  const inputSize = opts.inputSize ?? DEFAULT_INPUT_SIZE;
  await mkdir(dataDir, { recursive: true });
  stacksStarted++;

  const weights = await resolveStackWeights(
    opts.weights,
    dataDir,
    opts.fetchWeights === false ? {} : { fetch: (dir) => tryFetchBaseWeights(dir, { log }) },
  );
  const env = envScope();
  type Cleanup = { name: string; run: () => Promise<void> };
  /** What takes requests from outside: stops first, so no new work arrives while the rest drains. */
  const front: Cleanup[] = [];
  const cleanups: Cleanup[] = [];
  const stopAll = async () => {
    // Front first, then the rest in reverse order of start: the emulator (everyone's store) last.
    for (const c of [...front.reverse(), ...cleanups.reverse()]) {
      try {
        await c.run();
      } catch (err) {
        log.warn(`stopping ${c.name} failed`, { error: describeError(err) });
      }
    }
    front.length = 0;
    cleanups.length = 0;
    env.restore();
  };

  try {
    const emulator = await startLocalEmulator({
      port: opts.awsPort ?? LOCAL_DEFAULTS.s3Port,
      region,
      buckets: [bucket],
      dataDir,
      log,
    });
    cleanups.push({ name: 'the S3 + SQS emulator', run: () => emulator.stop() });

    // The API listens now (a taken port fails fast); requests wait for the handler to load.
    let resolveApiHandler: (h: LambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>) => void = () => {};
    let rejectApiHandler: (e: unknown) => void = () => {};
    const apiHandler = new Promise<LambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>>((res, rej) => {
      resolveApiHandler = res;
      rejectApiHandler = rej;
    });
    apiHandler.catch(() => undefined);
    const api = await startHttpApi({
      port: opts.apiPort ?? LOCAL_DEFAULTS.apiPort,
      handler: async (event, context) => (await apiHandler)(event, context),
      region,
      ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
      keys: createLocalKeyStore({ file: join(dataDir, LOCAL_KEYS_FILE), adminKey: opts.apiKey }),
      log,
    });
    front.push({
      name: 'the HTTP API',
      run: async () => {
        rejectApiHandler(new Error('the local stack stopped'));
        await api.stop(10_000);
      },
    });
    const queueAttributes = (q: QueueSettings, timeoutSeconds: number, dlqArn: string) => ({
      VisibilityTimeout: String(visibilityTimeoutSeconds(timeoutSeconds, q, settings.visibilityScale)),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: q.maxReceiveCount }),
    });
    const dlqRetention = { MessageRetentionPeriod: '1209600' };
    // The DLQs dead-letters drains (ingest, batch): its visibility, scaled like every local queue's.
    const drainedDlq = {
      ...dlqRetention,
      VisibilityTimeout: String(deadLetterVisibilitySeconds(settings.visibilityScale)),
    };
    const ingestDlq = emulator.createQueue('tlearn-ingest-dlq', drainedDlq);
    const ingest = emulator.createQueue(
      'tlearn-ingest',
      queueAttributes(settings.ingest, settings.timeoutSeconds['extract-features'], ingestDlq.queueArn),
    );
    const featuresDlq = emulator.createQueue('tlearn-features-dlq', dlqRetention);
    const features = emulator.createQueue(
      'tlearn-features',
      queueAttributes(settings.features, settings.timeoutSeconds['start-training'], featuresDlq.queueArn),
    );
    const batchSettings = localQueueSettings(BATCH_QUEUE);
    const batchDlq = emulator.createQueue('tlearn-batch-dlq', drainedDlq);
    const batchQueue = emulator.createQueue(
      'tlearn-batch',
      queueAttributes(batchSettings, BATCH_SETTINGS.timeoutSeconds, batchDlq.queueArn),
    );

    // The environment of every function, as the CDK stack sets it (plus the loopback endpoints).
    env.set(ENV.BUCKET, bucket);
    env.set(ENV.REGION, region);
    env.set(ENV.ENDPOINT, emulator.endpoint);
    env.set(ENV.FEATURES_QUEUE_URL, features.queueUrl);
    env.set(ENV.INGEST_QUEUE_URL, ingest.queueUrl);
    env.set(ENV.BATCH_QUEUE_URL, batchQueue.queueUrl);
    env.set(ENV.INBOX_PREFIX, opts.inboxPrefix ?? DEFAULT_INBOX_PREFIX);
    env.set(ENV.WEIGHTS, weights.source.kind === 'random' ? `random:${weights.source.seed}` : 'uri');
    env.set(ENV.BASE_MODEL_URI, weights.source.kind === 'uri' ? weights.source.uri : undefined);
    env.set(ENV.INPUT_SIZE, String(inputSize));
    env.set(ENV.POOLING, opts.pooling ?? 'flatten');
    env.set(ENV.PRECISION, opts.precision ?? 'fp32');
    env.set(ENV.MODEL_REFRESH_SECONDS, '1');
    env.set(ENV.API_KEYS_FILE, join(dataDir, LOCAL_KEYS_FILE));
    env.set(
      ENV.CONSOLE_DIR,
      opts.bundles === undefined
        ? await buildLocalConsole(dataDir, log)
        : await bundledConsoleDir(resolve(opts.bundles)),
    );
    // Nothing here may reach AWS: fixed credentials stop the SDK from probing for real ones.
    env.set('AWS_ACCESS_KEY_ID', 'local');
    env.set('AWS_SECRET_ACCESS_KEY', 'local');
    env.set('AWS_SESSION_TOKEN', undefined);
    env.set('AWS_PROFILE', undefined);
    env.set('AWS_EC2_METADATA_DISABLED', 'true');
    env.setDefault('POWERTOOLS_LOG_LEVEL', process.env.TLEARN_DEBUG ? 'DEBUG' : 'WARN');
    env.setDefault('POWERTOOLS_METRICS_DISABLED', 'true');

    let training: TrainingDefinitionLike;
    try {
      training = await (opts.definition ?? defaultDefinition)({
        settleSeconds,
        pollSeconds: settings.training.pollSeconds,
        maxRounds: settings.training.maxRounds,
        maxRetrains: settings.training.maxRetrains,
      });
    } catch (err) {
      throw new ConfigError(
        `cannot synthesize the training state machine from infra/: ${describeError(err)}`,
        {
          cause: err,
        },
      );
    }

    // The Step Functions endpoint listens first (its URL goes into the environment of the
    // handlers that start executions); its runner follows once the task handlers are loaded.
    let resolveRunner: (r: SfnRunner) => void = () => {};
    let rejectRunner: (e: unknown) => void = () => {};
    const runnerPromise = new Promise<SfnRunner>((res, rej) => {
      resolveRunner = res;
      rejectRunner = rej;
    });
    const sfnServer = await startSfnServer({ port: opts.sfnPort ?? 8083, runner: runnerPromise, log });
    cleanups.push({
      name: 'the Step Functions endpoint',
      run: () => {
        // A start that failed before the runner existed (a handler that does not load): the
        // endpoint's stop must not wait for it. A no-op once the runner was resolved.
        rejectRunner(new Error('the local stack stopped before its state machine was ready'));
        return sfnServer.stop(30_000);
      },
    });
    const stateMachineArn = `arn:aws:states:${region}:000000000000:stateMachine:${STATE_MACHINE_NAME}`;
    env.set(ENV.SFN_ENDPOINT, sfnServer.endpoint);
    env.set(ENV.STATE_MACHINE_ARN, stateMachineArn);

    const toImport = FUNCTION_NAMES.filter((n) => opts.handlers?.[n] === undefined);
    const handlers = {
      ...(opts.bundles === undefined
        ? await importHandlers(toImport)
        : await importBundleHandlers(resolve(opts.bundles), toImport, stacksStarted)),
      ...opts.handlers,
    } as LocalHandlers;

    let runner: SfnRunner;
    try {
      const taskHandlers: Record<string, LambdaHandler> = {};
      for (const [arn, fn] of Object.entries(training.taskFunctions)) {
        const h = handlers[fn as FunctionName];
        if (h) taskHandlers[arn] = h;
      }
      // Ends without Finish → finish-training, as the stack's EventBridge rule does (sfn-events.ts).
      const executionEnds = createExecutionEndRule({
        stateMachineArn,
        region,
        handler: handlers['finish-training'],
        log,
      });
      cleanups.push({ name: 'execution end events', run: () => executionEnds.drain() });
      runner = await createSfnRunner({
        region,
        stateMachines: [{ name: STATE_MACHINE_NAME, definition: training.definition, taskHandlers }],
        dataDir,
        onExecutionEnded: executionEnds.deliver,
        log,
      });
      resolveRunner(runner);
    } catch (err) {
      rejectRunner(err);
      throw err;
    }

    const clients = createAwsClients({
      bucket,
      region,
      endpoint: emulator.endpoint,
      sfnEndpoint: sfnServer.endpoint,
      awsTimeoutMs: 10_000,
    });
    cleanups.push({
      name: 'the stack clients',
      run: async () => {
        clients.s3.destroy();
        clients.sqs.destroy();
        clients.sfn.destroy();
      },
    });

    // Each queue's event source: as many pollers as its (scaled) deployed concurrency, Lambda-style batches.
    const consume = async (
      queueUrl: string,
      q: QueueSettings,
      fn: 'extract-features' | 'start-training' | 'batch-predict' | 'dead-letters',
      timeoutSeconds: number,
    ): Promise<void> => {
      for (let i = 0; i < (q.maxConcurrency ?? 1); i++) {
        const poller = await startSqsPoller({
          sqs: clients.sqs,
          queueUrl,
          handler: handlers[fn] as LambdaHandler<SQSEvent, unknown>,
          functionName: fn,
          region,
          batchSize: q.batchSize,
          maxBatchingWindowMs: q.maxBatchingWindowSeconds * 1000,
          // Short long polls: each must end well within the clients' 10 s request timeout.
          waitTimeSeconds: 5,
          functionTimeoutMs: timeoutSeconds * 1000,
          log,
        });
        cleanups.push({ name: `the ${fn} poller ${i + 1}`, run: () => poller.stop() });
      }
    };
    await consume(
      ingest.queueUrl,
      settings.ingest,
      'extract-features',
      settings.timeoutSeconds['extract-features'],
    );
    await consume(
      features.queueUrl,
      settings.features,
      'start-training',
      settings.timeoutSeconds['start-training'],
    );
    await consume(batchQueue.queueUrl, batchSettings, 'batch-predict', BATCH_SETTINGS.timeoutSeconds);
    // What still dies becomes a record, as deployed (lib/batch/dead-letters.ts).
    for (const dlq of [ingestDlq, batchDlq]) {
      const q = localQueueSettings(DEAD_LETTER_QUEUE);
      await consume(dlq.queueUrl, q, 'dead-letters', DEAD_LETTER_SETTINGS.timeoutSeconds);
    }

    // The monitoring's drift schedule (an EventBridge rule deployed): the same handler, on a timer.
    // Locally no metric is published (POWERTOOLS_METRICS_DISABLED); a drift above the alarm
    // threshold is a warning in the stack's log.
    const driftSchedule = startLocalSchedule({
      functionName: DRIFT_FUNCTION,
      handler: handlers[DRIFT_FUNCTION],
      everyMs: opts.driftEveryMs ?? DRIFT_SETTINGS.everyMinutes * 60_000,
      event: driftScheduleEvent,
      region,
      timeoutMs: DRIFT_SETTINGS.timeoutSeconds * 1000,
      log,
    });
    cleanups.push({ name: 'the drift schedule', run: () => driftSchedule.stop() });

    const notifier = startS3Notifications({
      onObjectEvent: emulator.onObjectEvent,
      sqs: clients.sqs,
      queueUrl: ingest.queueUrl,
      bucket,
      region,
      log,
    });
    cleanups.push({ name: 'S3 notifications', run: () => notifier.stop() });
    // After a stop or a crash: lost messages, dead locks, models behind their features (recover.ts).
    const recovered = await recoverAfterRestart({
      s3: clients.s3,
      bucket,
      notifier,
      lock: { s3: clients.s3, bucket, sfn: clients.sfn, stateMachineArn },
      log,
    });
    for (const line of describeRecovery(recovered)) log.info(line);

    resolveApiHandler(handlers.api as LambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>);

    print(
      describeStack({
        apiUrl: api.url,
        awsEndpoint: emulator.endpoint,
        sfnEndpoint: sfnServer.endpoint,
        bucket,
        stateMachineArn,
        dataDir,
        restored: emulator.restoredObjects,
        weights,
        apiKey: opts.apiKey,
      }),
    );
    if (weights.fallback && weights.source.kind === 'random')
      print(randomWeightsNotice(dataDir, weights.source.seed, weights.fetchError));

    const demoAbort = new AbortController();
    const demo =
      opts.demo === false
        ? Promise.resolve(undefined)
        : runDemo({
            s3: clients.s3,
            bucket,
            dataDir,
            perClass: opts.demoPerClass,
            signal: demoAbort.signal,
            onProgress: opts.onDemoProgress ?? ((p) => log.info(`demo: ${describeProgress(p)}`)),
            startTraining: async (dataset) => {
              // Through the lock, like every training: a running one is told to train again.
              await requestTraining(
                dataset,
                'manual',
                { whenRunning: 'mark' },
                {
                  s3: clients.s3,
                  bucket,
                  sfn: clients.sfn,
                  stateMachineArn,
                  log,
                },
              );
            },
            log,
          }).then(
            (outcome) => {
              if (outcome)
                print(
                  formatDemoOutcome(outcome, {
                    apiUrl: api.url,
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
    front.push({
      name: 'the demo',
      run: async () => {
        demoAbort.abort();
        await demo;
      },
    });

    let stopping: Promise<void> | undefined;
    return {
      apiUrl: api.url,
      awsEndpoint: emulator.endpoint,
      sfnEndpoint: sfnServer.endpoint,
      bucket,
      region,
      stateMachineArn,
      dataDir,
      weights,
      demo,
      driftSchedule,
      stop() {
        stopping ??= stopAll();
        return stopping;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
