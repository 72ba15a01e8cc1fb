/**
 * The processes of the scale benchmark (`npm run bench -- --only scale`), one per role so each
 * step's peak RSS is its own:
 *
 *   seed {dataDir, dataset, n, labels}  N synthetic images + feature .npy files, written to the
 *                                     emulator's disk mirror in dataDir (lib/scale-seed.ts)
 *   emulator {dataDir}                the local stack's S3 emulator (lib/local/emulator.ts) on a
 *                                     free loopback port, restoring dataDir; prints its endpoint,
 *                                     runs until stdin closes
 *   readiness {endpoint, dataset}     the check-readiness handler, once (what the state machine's
 *                                     CheckReadiness task runs)
 *   train {endpoint, dataset, maxIter}  the training state machine the CDK app synthesizes
 *                                     (infra/definition.ts), run by aws-local-stepfunctions with
 *                                     its tasks bound to the real handlers; per state: time, RSS
 *
 * Each prints one `RESULT_MARKER` line with its JSON result (and its process usage).
 */
import type { Context } from 'aws-lambda';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { synthesizeTrainingDefinition } from '../infra/definition.ts';
import { ENV } from '../lib/config.ts';
import { startLocalEmulator } from '../lib/local/emulator.ts';
import { silentLog } from '../lib/util/log.ts';
import { kbToMB, ownUsage, RESULT_MARKER } from './lib/child.ts';
import { SCALE_SPEC, seedScaleDataset } from './lib/scale-seed.ts';

export const SCALE_BUCKET = 'tlearn-bench-scale';
const REGION = 'us-east-1';

function emit(result: object): void {
  process.stdout.write(`${RESULT_MARKER}${JSON.stringify({ ...result, usage: ownUsage() })}\n`);
}

/** Environment of the handlers: the emulator, the seeded spec (random-1, 150x150, flatten). */
function handlerEnv(endpoint: string, extra: Record<string, string> = {}): void {
  Object.assign(process.env, {
    [ENV.BUCKET]: SCALE_BUCKET,
    [ENV.REGION]: REGION,
    [ENV.ENDPOINT]: endpoint,
    [ENV.WEIGHTS]: 'random:1',
    [ENV.INPUT_SIZE]: '150',
    [ENV.POOLING]: 'flatten',
    [ENV.AWS_TIMEOUT_MS]: '60000',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    ...extra,
  });
}

function context(name: string): Context {
  return {
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:000000000000:function:${name}`,
    memoryLimitInMB: '10240',
    awsRequestId: `bench-${name}`,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'bench',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => 900_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

const rssMB = () => Math.round(process.memoryUsage().rss / 2 ** 20);

async function emulator(p: { dataDir: string }): Promise<void> {
  const t0 = performance.now();
  const emu = await startLocalEmulator({
    port: 0,
    region: REGION,
    buckets: [SCALE_BUCKET],
    dataDir: p.dataDir,
    log: silentLog,
  });
  const restore = { endpoint: emu.endpoint, restored: emu.restoredObjects, ms: performance.now() - t0 };
  process.stdout.write(`${RESULT_MARKER}${JSON.stringify(restore)}\n`);
  process.stdin.resume();
  await new Promise<void>((resolve) => process.stdin.on('end', resolve));
  await emu.stop();
}

async function seed(p: { dataDir: string; dataset: string; n: number; labels: number }): Promise<void> {
  const r = await seedScaleDataset(p.dataDir, SCALE_BUCKET, {
    dataset: p.dataset,
    n: p.n,
    labels: p.labels,
    spec: SCALE_SPEC,
    onProgress: (done) => {
      if (done % 10_000 === 0) process.stderr.write(`[scale] seeded ${done}/${p.n}\n`);
    },
  });
  emit(r);
}

async function readiness(p: { endpoint: string; dataset: string }): Promise<void> {
  handlerEnv(p.endpoint);
  const { handler } = await import('../functions/check-readiness/handler.ts');
  const rssBefore = rssMB();
  const t0 = performance.now();
  const report = await handler({ dataset: p.dataset }, context('check-readiness'));
  emit({ ms: performance.now() - t0, rssBeforeMB: rssBefore, report });
}

type Handler = (input: unknown, ctx: Context) => Promise<unknown>;

async function train(p: { endpoint: string; dataset: string; maxIter: number }): Promise<void> {
  handlerEnv(p.endpoint, { [ENV.TRAIN_MAX_ITER]: String(p.maxIter), [ENV.LAMBDA_MEMORY_MB]: '10240' });
  const synthesized = await synthesizeTrainingDefinition({ settleSeconds: 0, pollSeconds: 1, maxRounds: 2 });
  // Every task state's function, by name: functions/{name}/handler.ts (as the CDK app packages them).
  const handlers = new Map<string, Handler>();
  for (const task of new Set(Object.values(synthesized.taskStates)))
    handlers.set(
      task,
      ((await import(`../../functions/${task}/handler.ts`)) as { handler: Handler }).handler,
    );
  const steps: { state: string; task: string; ms: number; rssBeforeMB: number; peakRssMB: number }[] = [];
  const bound = Object.fromEntries(
    Object.entries(synthesized.taskStates).map(([state, task]) => [
      state,
      async (input: unknown) => {
        const handler = handlers.get(task);
        if (!handler) throw new Error(`no handler for task ${task}`);
        const rssBeforeMB = rssMB();
        const t0 = performance.now();
        try {
          return (await handler(input, context(task))) as never;
        } finally {
          steps.push({
            state,
            task,
            ms: performance.now() - t0,
            rssBeforeMB,
            peakRssMB: kbToMB(process.resourceUsage().maxRSS),
          });
        }
      },
    ]),
  );
  const machine = new StateMachine(synthesized.definition as unknown as StateMachineDefinition);
  const t0 = performance.now();
  const execution = machine.run(
    { dataset: p.dataset, trigger: 'manual', requestedAt: new Date().toISOString() },
    {
      overrides: {
        taskResourceLocalHandlers: bound,
        waitTimeOverrides: { Settle: 0, WaitForFeatures: 0 },
      },
    },
  );
  const output = (await execution.result) as { training?: Record<string, unknown> };
  emit({ ms: performance.now() - t0, steps, training: output.training });
}

const [mode, json] = process.argv.slice(2);
const params = JSON.parse(json ?? '{}');
const modes: Record<string, (p: never) => Promise<void>> = { emulator, seed, readiness, train };
const run = mode ? modes[mode] : undefined;
if (!run) {
  process.stderr.write(`usage: scale-child.ts emulator|seed|readiness|train JSON\n`);
  process.exit(2);
}
run(params as never).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
