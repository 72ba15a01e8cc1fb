#!/usr/bin/env node
// The `tlearn` CLI. Source is TypeScript run through tsx, so `npx tlearn` works in a checkout.
import { register } from 'tsx/esm/api';

register();
// `tlearn local` is one long-lived process: it runs with lib/local/defaults.ts LOCAL_PROCESS_ENV,
// which only counts when the process starts, so it re-executes itself with it (process.execve:
// the same process, no parent left waiting; Node ≥ 22.15 on Linux, else it runs as it is).
if (process.argv[2] === 'local' && typeof process.execve === 'function') {
  const { LOCAL_PROCESS_ENV } = await import('../lib/local/defaults.ts');
  const missing = Object.entries(LOCAL_PROCESS_ENV).filter(([k]) => process.env[k] === undefined);
  if (missing.length > 0)
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      ...process.env,
      ...Object.fromEntries(missing),
    });
}
// Node 20 here, 22 in Lambda: the SDK's support notice would only be noise for CLI users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
await import('../lib/util/polyfills.ts');
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
