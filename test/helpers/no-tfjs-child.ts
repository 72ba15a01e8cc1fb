/**
 * The local stack with the demo trained and one prediction answered, in a process of its own that
 * records every module it loads: test/integration/local/no-tfjs.test.ts runs it to check that the
 * onnx engine's path loads no @tensorflow package (lib/model/tfjs/import-tfjs.ts).
 *
 *   node bin/run-ts.js test/helpers/no-tfjs-child.ts '{"dataDir":"…","weights":"…","logFile":"…"}'
 *
 * Prints one JSON line: `{backend, prediction, resolved, required}`: the engine /health reports,
 * the prediction's status, every URL an `import` resolved (test/helpers/resolve-log.mjs) and every
 * file `require` loaded (CommonJS, which the resolve hook does not see).
 */
import { readFile } from 'node:fs/promises';
import { createRequire, register } from 'node:module';

const params = JSON.parse(process.argv[2] ?? '{}') as { dataDir: string; weights: string; logFile: string };
// Before the stack's modules are imported, so every import they make goes through the hook.
register(new URL('./resolve-log.mjs', import.meta.url), { data: { logFile: params.logFile } });

const { startLocalStack } = await import('../../lib/local/stack.ts');
const { silentLog } = await import('../../lib/util/log.ts');
const stack = await startLocalStack({
  dataDir: params.dataDir,
  apiPort: 0,
  awsPort: 0,
  sfnPort: 0,
  weights: params.weights,
  fetchWeights: false,
  inputSize: 32,
  pooling: 'avg',
  settleSeconds: 1,
  demoPerClass: 4,
  log: silentLog,
  print: () => {},
  onDemoProgress: () => {},
});
let out: Record<string, unknown>;
try {
  const outcome = await stack.demo;
  const res = await fetch(`${stack.apiUrl}/datasets/demo/predictions`, {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: await readFile(outcome?.sampleFile ?? ''),
  });
  const health = (await (await fetch(`${stack.apiUrl}/health`)).json()) as { backend?: string };
  out = {
    backend: health.backend,
    prediction: res.status,
    resolved: (await readFile(params.logFile, 'utf8')).split('\n').filter(Boolean),
    required: Object.keys(createRequire(import.meta.url).cache),
  };
} finally {
  await stack.stop();
}
// Exit once written: a handle some library keeps (esbuild's service) must not hold the test.
process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
