import { resolve } from 'node:path';
import type { DemoProgress } from '../../local/demo.ts';
import { POOLINGS, type Pooling } from '../../model/spec.ts';
import { localPipelineSettings } from '../../pipeline/settings.ts';
import { consoleLog } from '../../util/log.ts';
import { numberFlag, parseCommandArgs, precisionFlag, UsageError } from '../args.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import { createProgress, type Progress } from '../progress.ts';
import { LOCAL_DEFAULTS } from '../target.ts';

const HELP = `usage: tlearn local [options]        (= npm start)

Runs the whole pipeline on this machine, through the same handlers as in AWS, on loopback only:
  an S3 + SQS endpoint (bucket ${LOCAL_DEFAULTS.bucket}, kept under the data dir), the S3 → queue
  notifications, the extractor and start-training consumers, the training state machine as the
  CDK app synthesizes it (behind a local Step Functions endpoint), and the HTTP API.
When the bucket holds no dataset it uploads a small demo dataset, trains it, prints the report
and a curl that predicts a demo image.

options:
  --port N           HTTP API port (default ${LOCAL_DEFAULTS.apiPort})
  --aws-port N       S3 + SQS port (default ${LOCAL_DEFAULTS.s3Port}, as LocalStack)
  --sfn-port N       Step Functions port (default 8083, as Step Functions Local)
  --data-dir DIR     where objects, executions and demo images are kept (default ./.tlearn)
  --weights W        random | random:SEED | a tfjs model folder (default: the newest under
                     DIR/base-models/ from tlearn base-model import|fetch; without one, seeded
                     random weights, announced loudly)
  --size N           network input size in pixels, 32-1024 (default 150)
  --pooling P        flatten | avg | max (default flatten)
  --precision P      fp32 | int8 (default fp32): int8 runs the quantized VGG16 in every handler
                     (sets TLEARN_PRECISION, as the CDK context tlearn:precision does on AWS)
  --settle S         seconds the state machine waits before checking readiness (default: the
                     deployed 60 s scaled for one machine, lib/pipeline/settings.ts)
  --no-fetch         without imported weights, do not try once to download the real ones
  --no-demo          do not create the demo dataset
  --api-key KEY      require this x-api-key on the API, like API Gateway (default: none)
  --bundles DIR      run the Lambda bundles of DIR (npm run bundle) instead of the TypeScript
                     handlers: the deployed artifacts, production dependencies only
  -h, --help         this help

Ctrl-C stops: requests and batches in flight finish, the bucket is flushed to disk, exit 0.

exit codes: 0 stopped cleanly, 1 failed to start (e.g. a port in use), 2 usage error`;

function portFlag(name: string, raw: unknown, dflt: number): number {
  return numberFlag(name, raw, dflt, { min: 0, max: 65535, integer: true });
}

/** Renders demo progress: a bar for features, lines for the rest. */
function demoProgressRenderer() {
  let bar: Progress | undefined;
  let shown = 0;
  return (p: DemoProgress) => {
    switch (p.phase) {
      case 'uploading':
        if (p.done === p.total) {
          console.error(`demo: uploaded ${p.total} images (dataset 'demo')`);
          // Started now, so its rate counts extraction time only.
          bar = createProgress('demo: features ready', p.total);
        }
        return;
      case 'features':
        bar ??= createProgress('demo: features ready', p.total);
        if (p.done > shown) bar.tick(p.done - shown, p.failed ? `${p.failed} failed` : undefined);
        shown = Math.max(shown, p.done);
        return;
      case 'training':
        bar?.done();
        bar = undefined;
        console.error('demo: training the head (state machine running)…');
        return;
      case 'promoted':
        bar?.done();
        bar = undefined;
        console.error(`demo: model ${p.version} promoted`);
        return;
    }
  };
}

/** Says which bundles run, and warns when packages outside them are reachable from them. */
async function announceBundles(dir: string): Promise<void> {
  const { leakyModulePaths, readBundleManifest } = await import('../../local/bundles.ts');
  const manifest = await readBundleManifest(dir);
  const names = Object.keys(manifest.functions);
  console.error(
    `handlers: the Lambda bundles in ${dir} (${names.length} functions, built ${manifest.builtAt})`,
  );
  const leaks = new Set(
    Object.values(manifest.functions).flatMap((f) => leakyModulePaths(dir, resolve(dir, f.handler))),
  );
  if (leaks.size > 0) {
    console.error(
      `note: the bundles can also load packages from ${[...leaks].join(', ')}; a package missing from the bundles would go unnoticed. For a strict check bundle outside the repository: npm run bundle -- --out /tmp/tlearn-dist`,
    );
  }
}

export const command: Command = {
  summary: 'run the whole pipeline on this machine (= npm start)',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, {
      port: { type: 'string' },
      'aws-port': { type: 'string' },
      'sfn-port': { type: 'string' },
      'data-dir': { type: 'string' },
      weights: { type: 'string' },
      size: { type: 'string' },
      pooling: { type: 'string' },
      precision: { type: 'string' },
      settle: { type: 'string' },
      'no-demo': { type: 'boolean' },
      'no-fetch': { type: 'boolean' },
      'api-key': { type: 'string' },
      bundles: { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const pooling = (values.pooling ?? 'flatten') as Pooling;
    if (!POOLINGS.includes(pooling))
      throw new UsageError(`--pooling must be one of ${POOLINGS.join(', ')} (got '${pooling}')`);
    const apiKey = values['api-key'];
    if (apiKey !== undefined && apiKey.length < 1) throw new UsageError('--api-key must not be empty');
    const opts = {
      apiPort: portFlag('port', values.port, LOCAL_DEFAULTS.apiPort),
      awsPort: portFlag('aws-port', values['aws-port'], LOCAL_DEFAULTS.s3Port),
      sfnPort: portFlag('sfn-port', values['sfn-port'], 8083),
      dataDir: values['data-dir'] ?? '.tlearn',
      inputSize: numberFlag('size', values.size, 150, { min: 32, max: 1024, integer: true }),
      settleSeconds: numberFlag('settle', values.settle, localPipelineSettings().training.settleSeconds, {
        min: 0,
        max: 3600,
        integer: true,
      }),
      pooling,
      precision: precisionFlag(values.precision),
      demo: values['no-demo'] !== true,
      fetchWeights: values['no-fetch'] !== true,
      ...(values.weights !== undefined ? { weights: values.weights } : {}),
      ...(apiKey !== undefined ? { apiKey } : {}),
      ...(values.bundles !== undefined ? { bundles: values.bundles } : {}),
    };

    // Signal handlers go in before anything starts: a Ctrl-C during startup then stops the stack
    // as soon as it is up, instead of killing the process halfway through writing.
    let signals = 0;
    let requestStop: (sig: NodeJS.Signals) => void = () => {};
    const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
      requestStop = resolve;
    });
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        // Objects on disk are written atomically: a forced exit leaves no half-written file.
        console.error(`\n${sig} again: exiting now`);
        process.exit(130);
      }
      console.error(`\n${sig}: stopping (finishing work in flight; ${sig} again to force)…`);
      requestStop(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      console.error(
        'starting the local stack (loading the handlers and the state machine takes a few seconds)…',
      );
      // Loaded here so `tlearn --help` and `tlearn local --help` stay fast.
      const { startLocalStack } = await import('../../local/stack.ts');
      if (opts.bundles !== undefined) await announceBundles(opts.bundles);
      const stack = await startLocalStack({
        ...opts,
        log: consoleLog,
        onDemoProgress: demoProgressRenderer(),
      });
      await stopRequested;
      await stack.stop();
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    console.error(`stopped; data kept under ${opts.dataDir}`);
    // Handlers may hold timers or worker threads (tfjs backends, caches); nothing is left to do.
    setTimeout(() => process.exit(EXIT.OK), 2000).unref();
    return EXIT.OK;
  },
};
