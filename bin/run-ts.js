#!/usr/bin/env node
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
// Runs a TypeScript entry point through tsx's ESM loader: `node bin/run-ts.js file.ts [args…]`.
import { register } from 'tsx/esm/api';

register();
await import('../lib/util/polyfills.ts');
const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node bin/run-ts.js FILE.ts [args…]');
  process.exit(2);
}
process.argv = [process.argv[0] ?? 'node', resolve(entry), ...rest];
await import(pathToFileURL(resolve(entry)).href);
