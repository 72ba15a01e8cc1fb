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

/**
 * esbuild build options of one container-image handler (`bin/bundle-function.ts` runs them).
 * @example imageBundleOptions('functions/api/handler.ts', '/build/dist/functions/api/handler.mjs')
 */
export function imageBundleOptions(entry: string, outfile: string) {
  return {
    ...BUNDLE_SETTINGS,
    mainFields: [...BUNDLE_SETTINGS.mainFields],
    entryPoints: [entry],
    outfile,
    bundle: true,
    external: [...IMAGE_EXTERNALS],
    legalComments: 'none' as const,
    banner: { js: ESM_REQUIRE_BANNER },
  };
}
