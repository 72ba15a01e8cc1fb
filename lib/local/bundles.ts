/**
 * `tlearn local --bundles DIR`: the handlers come from the Lambda bundles `npm run bundle` wrote
 * (bin/bundle.ts) instead of functions/<name>/handler.ts, so the local stack runs the deployed
 * artifacts: a missing external, a file looked up next to the bundle, an ESM/CJS interop default
 * or a dev dependency imported at run time fails here as it would on Lambda.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BUNDLE_MANIFEST_FILE, type BundleManifest, BundleManifestSchema } from '../bundling.ts';
import { ConfigError, describeError } from '../errors.ts';
import type { LambdaHandler } from './lambda-context.ts';

/** Reads and validates `DIR/manifest.json`. */
export async function readBundleManifest(dir: string): Promise<BundleManifest> {
  const file = join(dir, BUNDLE_MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`no bundles in ${dir} (${describeError(err)}); build them with: npm run bundle`, {
      cause: err,
    });
  }
  const parsed = BundleManifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`${file} is not a bundles manifest of this version; rebuild with: npm run bundle`);
  }
  return parsed.data;
}

/**
 * The web console the bundles' image serves (built by `npm run bundle`, as the image build does),
 * so the stack need not build it: that would load a second copy of tfjs into this process beside
 * the bundles' own (console/build.ts imports the model code).
 */
export async function bundledConsoleDir(dir: string): Promise<string | undefined> {
  const manifest = await readBundleManifest(dir);
  return manifest.console === undefined ? undefined : resolve(dir, manifest.console);
}

/**
 * The `node_modules` folders outside `dir` that a bundle in it could load packages from (Node
 * looks in every ancestor): with any, a package missing from the bundles may still be found.
 */
export function leakyModulePaths(dir: string, handlerFile: string): string[] {
  const root = resolve(dir);
  const paths = createRequire(handlerFile).resolve.paths('any-package') ?? [];
  return paths.filter((p) => !`${p}${sep}`.startsWith(`${root}${sep}`) && existsSync(p));
}

/**
 * Imports `handler` of each named function's bundle. `instance` > 1 imports fresh module instances
 * (a query on the URL): a handler binds its configuration at import, like the sources.
 */
export async function importBundleHandlers<N extends string>(
  dir: string,
  names: readonly N[],
  instance: number,
): Promise<Partial<Record<N, LambdaHandler>>> {
  const manifest = await readBundleManifest(dir);
  const out: Partial<Record<N, LambdaHandler>> = {};
  for (const name of names) {
    const entry = manifest.functions[name];
    if (entry === undefined) {
      throw new ConfigError(`${dir} has no bundle of the ${name} function; rebuild with: npm run bundle`);
    }
    const file = resolve(dir, entry.handler);
    if (!`${file}${sep}`.startsWith(`${resolve(dir)}${sep}`)) {
      throw new ConfigError(`${join(dir, BUNDLE_MANIFEST_FILE)} names a handler outside ${dir}`);
    }
    out[name] = await importHandler(pathToFileURL(file), instance, `the ${name} bundle`);
  }
  return out;
}

/**
 * Imports the `handler` a module exports (a handler's source or its bundle); `instance` > 1 imports
 * a fresh module instance (a query on the URL): a handler binds its configuration at import. A
 * module that fails to load, or exports no handler, is a ConfigError naming `what` and its file.
 */
export async function importHandler(url: URL, instance: number, what: string): Promise<LambdaHandler> {
  const href = instance > 1 ? `${url.href}?stack=${instance}` : url.href;
  try {
    const mod = (await import(href)) as { handler?: LambdaHandler };
    if (typeof mod.handler !== 'function') throw new Error('it exports no handler function');
    return mod.handler;
  } catch (err) {
    throw new ConfigError(
      `cannot load ${what} (${relative(process.cwd(), fileURLToPath(url))}): ${describeError(err)}`,
      { cause: err },
    );
  }
}
