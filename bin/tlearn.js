#!/usr/bin/env node
// The `tlearn` CLI. Source is TypeScript run through tsx, so `npx tlearn` works in a checkout.
import { register } from 'tsx/esm/api';

register();
await import('../lib/util/polyfills.ts');
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
