/**
 * Bundles one handler for the container image with the settings of lib/bundling.ts (the ones the
 * CDK app's zip functions use too). functions/Dockerfile runs it per image function:
 *
 *   node bin/run-ts.js bin/bundle-function.ts functions/api/handler.ts /build/dist/functions/api/handler.mjs
 */
import { build } from 'esbuild';
import { imageBundleOptions } from '../lib/bundling.ts';

const [entry, outfile] = process.argv.slice(2);
if (entry === undefined || outfile === undefined) {
  console.error('usage: node bin/run-ts.js bin/bundle-function.ts ENTRY.ts OUTFILE.mjs');
  process.exit(2);
}
await build({ ...imageBundleOptions(entry, outfile), logLevel: 'warning' });
