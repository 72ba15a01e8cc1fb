/**
 * Checks that the zip bundles of `npm run bundle` are, byte for byte, the assets `cdk synth` built
 * for the same functions (so `tlearn local --bundles` runs what deploy uploads). .ci/run runs it
 * after its synth:
 *
 *   node bin/run-ts.js scripts/check-bundles.ts BUNDLES_DIR [CDK_OUT]   (CDK_OUT default cdk.out)
 *
 * exit codes: 0 every zip bundle has an identical synthesized asset, 1 one has none, 2 usage
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readBundleManifest } from '../lib/local/bundles.ts';

const HELP = `usage: node bin/run-ts.js scripts/check-bundles.ts BUNDLES_DIR [CDK_OUT]

Compares each zip function's bundle (npm run bundle) with the index.mjs assets of cdk synth
(default cdk.out): every bundle must equal one of them byte for byte.

exit codes: 0 all equal, 1 a bundle differs from every asset, 2 usage`;

/** The names of the zip functions of `bundles` with no byte-identical `index.mjs` asset in `cdkOut`. */
export async function unmatchedZipBundles(bundles: string, cdkOut: string): Promise<string[]> {
  const manifest = await readBundleManifest(bundles);
  const assets: Buffer[] = [];
  for (const entry of await readdir(cdkOut, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith('asset.')) continue;
    const file = join(cdkOut, entry.name, 'index.mjs');
    const bytes = await readFile(file).catch(() => undefined);
    if (bytes !== undefined) assets.push(bytes);
  }
  const unmatched: string[] = [];
  for (const [name, f] of Object.entries(manifest.functions)) {
    if (f.kind !== 'zip') continue;
    const bytes = await readFile(resolve(bundles, f.handler));
    if (!assets.some((a) => a.equals(bytes))) unmatched.push(name);
  }
  return unmatched;
}

async function main(): Promise<number> {
  const [bundles, cdkOut = 'cdk.out'] = process.argv.slice(2);
  if (bundles === undefined || bundles === '--help' || bundles === '-h') {
    console.error(HELP);
    return bundles === undefined ? 2 : 0;
  }
  const unmatched = await unmatchedZipBundles(bundles, cdkOut);
  if (unmatched.length > 0) {
    console.error(
      `bundles: ${unmatched.join(', ')} differ from every asset of ${cdkOut}: npm run bundle and the CDK app no longer build alike (lib/bundling.ts, infra/constructs/tlearn-function.ts)`,
    );
    return 1;
  }
  console.error(`bundles: every zip bundle in ${bundles} equals its asset in ${cdkOut}`);
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  process.exitCode = await main();
}
