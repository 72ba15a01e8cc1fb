/**
 * The prediction API in a process of its own, for the cold-start and latency benchmarks
 * (`bench/api.ts` spawns it with an IPC channel and the usual environment variables).
 *
 *   node bin/run-ts.js bench/api-server.ts
 *
 * It imports the API Lambda handler (`functions/api/handler.ts`) exactly as deployed: its module
 * init reads the config, loads the weights, picks the engine (TLEARN_BACKEND forces one) and runs
 * the warm-up pass; then it serves the handler through the local API Gateway stand-in
 * (`lib/local/http-api.ts`), as the local stack does, with its keys: the admin key of
 * TLEARN_BENCH_ADMIN_KEY (the stack's `--api-key`) and the scoped keys of TLEARN_API_KEYS_FILE.
 *
 * Messages: sends `{type:'ready', port, uptimeMs}` once listening; answers `{type:'usage'}` with
 * `{type:'usage', usage}`; exits on `{type:'stop'}` or when the parent goes away.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { LambdaHandler } from '../lib/local/lambda-context.ts';
import { silentLog } from '../lib/util/log.ts';
import { ownUsage } from './lib/child.ts';

type Handler = LambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>;

async function main(): Promise<void> {
  const handler = (await import('../functions/api/handler.ts')).handler as unknown as Handler;
  const { startHttpApi } = await import('../lib/local/http-api.ts');
  const { createLocalKeyStore } = await import('../lib/api/keys.ts');
  const region = process.env.AWS_REGION ?? '';
  // Keys as the local stack has them: the admin key (its --api-key) and the keys file of the API.
  const adminKey = process.env.TLEARN_BENCH_ADMIN_KEY;
  const keysFile = process.env.TLEARN_API_KEYS_FILE;
  const api = await startHttpApi({
    port: 0,
    handler,
    region,
    log: silentLog,
    ...(adminKey ? { apiKey: adminKey } : {}),
    ...(keysFile ? { keys: createLocalKeyStore({ file: keysFile, adminKey }) } : {}),
  });
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'usage') process.send?.({ type: 'usage', usage: ownUsage() });
    if (m.type === 'stop') void api.stop(1000).finally(() => process.exit(0));
  });
  // The benchmark went away (crash, Ctrl-C): do not linger.
  process.on('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', port: api.port, uptimeMs: performance.now() });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
