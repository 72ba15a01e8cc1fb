#!/usr/bin/env node
// The `tlearn` CLI. Source is TypeScript run through tsx, so `npx tlearn` works in a checkout.
import { register } from 'tsx/esm/api';

register();
// Node 20 here, 22 in Lambda: the SDK's support notice would only be noise for CLI users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
await import('../lib/util/polyfills.ts');
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
