/**
 * How the handlers are bundled with esbuild, in one place for both kinds of function: the zip
 * functions (CDK `NodejsFunction`, infra/constructs/tlearn-function.ts) and the container image
 * (functions/Dockerfile runs bin/bundle-function.ts). Only the externals differ, on purpose:
 *
 * - both leave out the native / wasm-carrying packages, loaded from node_modules at run time;
 * - the image leaves out every `@tensorflow/*` package: tfjs-node requires `@tensorflow/tfjs`
 *   from node_modules, and a second, bundled copy of tfjs would register its own engine and
 *   backends; the wasm backend finds its `.wasm` files next to its package;
 * - the zip functions bundle tfjs (they never load tfjs-node: the tensor backend is imported
 *   lazily and falls back), so only tfjs-node stays out.
 */
import { z } from 'zod';
import { FUNCTION_PACKAGES } from './functions.ts';

/** Packages with native addons or wasm files that no bundle contains. */
export const NATIVE_EXTERNALS: readonly string[] = ['onnxruntime-node', 'sharp', 'h5wasm'];

/** Externals of the zip functions. */
export const ZIP_EXTERNALS: readonly string[] = ['@tensorflow/tfjs-node', ...NATIVE_EXTERNALS];

/** Externals of the container image's bundles. */
export const IMAGE_EXTERNALS: readonly string[] = ['@tensorflow/*', ...NATIVE_EXTERNALS];

/** The esbuild banner that lets bundled CommonJS dependencies `require` Node built-ins from ESM. */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __tlearnCreateRequire } from 'node:module'; const require = __tlearnCreateRequire(import.meta.url);";

/**
 * esbuild settings of every bundle. Minified, but `keepNames`: error classes name themselves
 * (`this.name = new.target.name`) and those names are the API's error codes and the state
 * machine's error names. Source maps without the sources (stack traces, not a second copy).
 */
export const BUNDLE_SETTINGS = {
  platform: 'node',
  target: 'node22',
  format: 'esm',
  mainFields: ['module', 'main'],
  minify: true,
  keepNames: true,
  sourcemap: true,
  sourcesContent: false,
} as const;

/** The esbuild options both kinds share, with the externals of one kind. */
function bundleOptions(entry: string, outfile: string, external: readonly string[]) {
  return {
    ...BUNDLE_SETTINGS,
    mainFields: [...BUNDLE_SETTINGS.mainFields],
    entryPoints: [entry],
    outfile,
    bundle: true,
    external: [...external],
    banner: { js: ESM_REQUIRE_BANNER },
  };
}

/**
 * esbuild build options of one container-image handler (`bin/bundle-function.ts` runs them).
 * @example imageBundleOptions('functions/api/handler.ts', '/build/dist/functions/api/handler.mjs')
 */
export function imageBundleOptions(entry: string, outfile: string) {
  return { ...bundleOptions(entry, outfile, IMAGE_EXTERNALS), legalComments: 'none' as const };
}

/**
 * esbuild build options of one zip function: what the CDK's `NodejsFunction` runs with the
 * bundling props of infra/constructs/tlearn-function.ts (its asset is `index.mjs` + its map,
 * exporting `handler`; the externals are left out of the asset, not installed next to it).
 * `npm run bundle` (bin/bundle.ts) builds with these.
 * @example zipBundleOptions('functions/train-head/handler.ts', 'dist/train-head/index.mjs')
 */
export function zipBundleOptions(entry: string, outfile: string) {
  return bundleOptions(entry, outfile, ZIP_EXTERNALS);
}

/**
 * Packages the container image leaves out of its `node_modules` after `npm prune --omit=dev`
 * (functions/Dockerfile): onnxruntime-node's binaries of every other OS and architecture.
 */
export const IMAGE_PRUNED_PATHS: readonly RegExp[] = [
  /^onnxruntime-node\/bin\/napi-v[^/]+\/(darwin|win32|linux\/arm64)(\/|$)/,
];

/** `manifest.json` of a bundles folder (`npm run bundle`): where each function's handler file is. */
export const BundleManifestSchema = z.object({
  format: z.literal('tlearn-bundles'),
  formatVersion: z.literal(1),
  builtAt: z.string(),
  /** Function name → its handler module relative to the folder, and how it is deployed. */
  functions: z.record(
    z.string(),
    z.object({ kind: z.enum(FUNCTION_PACKAGES), handler: z.string().min(1), bytes: z.number().int() }),
  ),
  /** The web console the image serves (TLEARN_CONSOLE_DIR), relative to the folder. */
  console: z.string().min(1).optional(),
});
export type BundleManifest = z.infer<typeof BundleManifestSchema>;

/** The manifest's file name in a bundles folder. */
export const BUNDLE_MANIFEST_FILE = 'manifest.json';
