/**
 * The local stack (`tlearn local`, lib/local/stack.ts) in a process of its own, for the `local-rss`
 * and `e2e` benchmarks (bench/local-stack.ts spawns it with an IPC channel): its memory is
 * then the stack's own, as `npm start`'s would be.
 *
 *   node bin/run-ts.js bench/local-stack-child.ts '{"dataDir":"…","weights":"random:1",…}'
 *
 * Messages: sends `{type:'ready', apiUrl, awsEndpoint, sfnEndpoint, bucket, region,
 * stateMachineArn}` once listening and `{type:'demo', ok}` when the demo has its model; answers
 * `{type:'usage'}` with `{type:'usage', rssMB, peakRssMB}` (resident now, and the process's peak);
 * stops on `{type:'stop'}` or when the parent goes away.
 */
import type { Pooling } from '../lib/model/spec.ts';

/** What the benchmark asks of the stack. */
export interface LocalStackChildParams {
  dataDir: string;
  weights: string;
  inputSize: number;
  pooling: Pooling;
  demo: boolean;
  demoPerClass?: number;
}

/** Resident memory of this process now and at its peak, MB. */
function memory(): Record<string, number> {
  (globalThis as { gc?: () => void }).gc?.();
  const mb = (b: number) => Math.round(b / 2 ** 20);
  const m = process.memoryUsage();
  return {
    rssMB: mb(m.rss),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    heapUsedMB: mb(m.heapUsed),
    externalMB: mb(m.external),
    arrayBuffersMB: mb(m.arrayBuffers),
  };
}

async function main(): Promise<void> {
  const params = JSON.parse(process.argv[2] ?? '{}') as LocalStackChildParams;
  const { startLocalStack } = await import('../lib/local/stack.ts');
  const { silentLog } = await import('../lib/util/log.ts');
  const stack = await startLocalStack({
    dataDir: params.dataDir,
    apiPort: 0,
    awsPort: 0,
    sfnPort: 0,
    weights: params.weights,
    fetchWeights: false,
    inputSize: params.inputSize,
    pooling: params.pooling,
    demo: params.demo,
    ...(params.demoPerClass ? { demoPerClass: params.demoPerClass } : {}),
    log: silentLog,
    print: () => {},
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await stack.stop().catch(() => undefined);
    process.exit(0);
  };
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'usage') process.send?.({ type: 'usage', ...memory() });
    if (m.type === 'stop') void stop();
  });
  // The benchmark went away (crash, Ctrl-C): do not linger.
  process.on('disconnect', () => void stop());
  process.send?.({
    type: 'ready',
    apiUrl: stack.apiUrl,
    awsEndpoint: stack.awsEndpoint,
    sfnEndpoint: stack.sfnEndpoint,
    bucket: stack.bucket,
    region: stack.region,
    stateMachineArn: stack.stateMachineArn,
  });
  if (params.demo) {
    const outcome = await stack.demo;
    process.send?.({ type: 'demo', ok: outcome !== undefined });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
