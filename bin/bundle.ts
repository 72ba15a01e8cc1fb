/**
 * `npm run bundle [-- --out DIR]`: every function of the app (FUNCTIONS of lib/functions.ts)
 * built as deploy builds it, so `tlearn local --bundles DIR` can run the deployed artifacts:
 *
 *   DIR/<fn>/index.mjs (+ .map)            a zip function's asset, as `NodejsFunction` bundles it
 *                                          (zipBundleOptions of lib/bundling.ts): its externals are
 *                                          left out and nothing is installed next to it
 *   DIR/image/functions/<fn>/handler.mjs   the container image's /var/task (functions/Dockerfile):
 *   DIR/image/node_modules/                bin/bundle-function.ts's bundles beside the production
 *                                          dependencies (`npm prune --omit=dev`), minus the pruned
 *                                          onnxruntime-node binaries of other platforms
 *   DIR/image/console/                     the web console the image serves (console/build.ts)
 *   DIR/manifest.json                      function → handler file (BundleManifestSchema)
 *
 * The production `node_modules` is the lockfile's non-dev packages copied from this checkout's
 * `node_modules` (what `npm ci --omit=dev` installs, without a registry). @tensorflow/tfjs-node is
 * kept only if it loads here (the image build requires it; without it the code falls back to the
 * next engine, as the image built with ALLOW_NO_TFJS_NODE=true does).
 *
 * Bundle outside the repository (`--out /tmp/tlearn-dist`) for a strict check: from DIR inside it,
 * Node's module lookup also reaches the repo's own node_modules (dev dependencies included).
 */
import { execFileSync } from 'node:child_process';
import {
  copyFile,
  link,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { REPO_ROOT } from '../infra/paths.ts';
import {
  BUNDLE_MANIFEST_FILE,
  type BundleManifest,
  IMAGE_PRUNED_PATHS,
  imageBundleOptions,
  zipBundleOptions,
} from '../lib/bundling.ts';
import { FUNCTIONS, handlerEntry } from '../lib/functions.ts';

const HELP = `usage: npm run bundle [-- --out DIR]

Bundles every Lambda function of the CDK app into DIR exactly as deploy builds it (same esbuild
settings and externals as the zip assets and the container image, production dependencies only),
for: npx tlearn local --bundles DIR

options:
  --out DIR    where to write (default dist/; emptied first). A folder outside the repository
               gives the strict check: from inside it the repo's dev dependencies stay reachable
  -h, --help   this help

exit codes: 0 written, 1 a bundle failed, 2 usage error`;

/** The lockfile's packages (`packages` of package-lock.json v3). */
interface LockPackage {
  dev?: boolean;
  link?: boolean;
}

/** `node_modules/…` paths of the lockfile's production packages (not dev-only), parents first. */
export async function productionPackages(root: string): Promise<string[]> {
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as {
    packages?: Record<string, LockPackage>;
  };
  return Object.entries(lock.packages ?? {})
    .filter(([path, p]) => path.startsWith('node_modules/') && p.dev !== true && p.link !== true)
    .map(([path]) => path)
    .sort();
}

/** Where the console goes in the folder: the image's /var/task/console (CONSOLE_IMAGE_DIR). */
const IMAGE_CONSOLE_DIR = 'image/console';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Whether a package loads with `require` from `root` (a native addon's binding is present). */
function loads(root: string, name: string): boolean {
  try {
    execFileSync(process.execPath, ['-e', `require(${JSON.stringify(name)})`], {
      cwd: root,
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * Recreates the tree `from` at `to` with hard links (no second copy of ~400 MB; a copy where links
 * cannot be made), keeping symlinks, skipping what `keep` refuses.
 */
async function linkTree(from: string, to: string, keep: (path: string) => boolean): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (!keep(src)) continue;
    if (entry.isDirectory()) await linkTree(src, dst, keep);
    else if (entry.isSymbolicLink()) await symlink(await readlink(src), dst);
    else await link(src, dst).catch(() => copyFile(src, dst));
  }
}

/** Copies the production packages of `root` into `dest/node_modules`; returns how many. */
async function copyProductionModules(root: string, dest: string, log: (s: string) => void): Promise<number> {
  const packages = await productionPackages(root);
  const skipTfjsNode = !loads(root, '@tensorflow/tfjs-node');
  if (skipTfjsNode)
    log('  @tensorflow/tfjs-node does not load here: left out (the code falls back to the next engine)');
  let copied = 0;
  for (const path of packages) {
    if (skipTfjsNode && path.startsWith('node_modules/@tensorflow/tfjs-node')) continue;
    const from = join(root, path);
    // Optional dependencies of other platforms (sharp's @img/*, esbuild's) are not installed.
    if (!(await exists(from))) continue;
    await linkTree(from, join(dest, path), (src) => {
      // A package's own nested node_modules are lockfile entries of their own (dev-only ones are not).
      if (relative(from, src).split(sep).includes('node_modules')) return false;
      const rel = relative(join(root, 'node_modules'), src).split(sep).join('/');
      return !IMAGE_PRUNED_PATHS.some((re) => re.test(rel));
    });
    copied++;
  }
  return copied;
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** Builds every bundle into `out`; returns the manifest written. */
export async function bundleAll(out: string, log: (s: string) => void = () => {}): Promise<BundleManifest> {
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const functions: BundleManifest['functions'] = {};
  const started = Date.now();
  await Promise.all(
    FUNCTIONS.map(async ({ name, package: kind }) => {
      const entry = join(REPO_ROOT, handlerEntry(name));
      const image = kind === 'image';
      const handler = image ? `image/functions/${name}/handler.mjs` : `${name}/index.mjs`;
      const outfile = join(out, handler);
      const options = image ? imageBundleOptions(entry, outfile) : zipBundleOptions(entry, outfile);
      await build({ ...options, absWorkingDir: REPO_ROOT, logLevel: 'warning' });
      const bytes = await fileSize(outfile);
      functions[name] = { kind, handler, bytes };
      log(
        `bundled ${name} (${image ? 'container image' : 'zip'}): ${handler}, ${(bytes / 1e6).toFixed(2)} MB`,
      );
    }),
  );
  // The web console, built as the image build does (functions/Dockerfile: console/build.ts).
  const { buildConsole } = await import('../console/build.ts');
  await buildConsole(join(out, IMAGE_CONSOLE_DIR));
  log(`built the web console: ${IMAGE_CONSOLE_DIR}/`);
  log(
    `copying the image's production dependencies into ${join(relative(process.cwd(), out) || '.', 'image/node_modules')}…`,
  );
  const copied = await copyProductionModules(REPO_ROOT, join(out, 'image'), log);
  log(`  ${copied} packages`);
  const manifest: BundleManifest = {
    format: 'tlearn-bundles',
    formatVersion: 1,
    builtAt: new Date().toISOString(),
    functions: Object.fromEntries(Object.entries(functions).sort(([a], [b]) => a.localeCompare(b))),
    console: IMAGE_CONSOLE_DIR,
  };
  await writeFile(join(out, BUNDLE_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`wrote ${FUNCTIONS.length} bundles in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return manifest;
}

async function main(): Promise<number> {
  let values: { out?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    console.error(`bundle: ${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const out = resolve(values.out ?? join(REPO_ROOT, 'dist'));
  if (out === REPO_ROOT || REPO_ROOT.startsWith(`${out}/`) || out === dirname(out)) {
    console.error(`bundle: refusing to empty ${out}; pass a folder of its own (--out DIR)`);
    return 2;
  }
  try {
    await bundleAll(out, (s) => console.error(s));
  } catch (err) {
    console.error(`bundle: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  console.error(`next: npx tlearn local --bundles ${relative(process.cwd(), out) || '.'}`);
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  process.exitCode = await main();
}
