/**
 * Checks that imports point down the layers (run by `npm run lint`):
 *
 *   functions/          → lib/ (not lib/local, lib/cli)       Lambda handlers
 *   infra/              → lib/ (not lib/local, lib/cli)       the CDK app
 *   lib/cli/            → the rest of lib/, lib/local/        the command line
 *   lib/local/          → the rest of lib/; and, as the local stand-in of the CDK app, the
 *                         handlers (functions/<name>/handler.ts), infra/definition.ts and the
 *                         console's build (console/build.ts, as the image build runs it)
 *   lib/ (the rest)     → lib/ only (never lib/local, lib/cli, functions/, infra/)
 *   bin/, scripts/, test/, bench/ → anything (entry points, tools, tests, benchmarks)
 *
 * Inside lib/, every module (a folder, or a file directly in lib/) has a floor, and a module
 * imports only from lower floors (never a peer on its own floor, never up): `LIB_FLOORS` below,
 * lowest first. A module missing from the list is reported, so a new folder gets a floor.
 *
 * Every relative module reference counts: static and dynamic imports, `export … from`, type-only
 * imports, and `new URL('…', import.meta.url)` (how the local stack loads the handlers).
 *
 *   node bin/run-ts.js scripts/check-layers.ts [ROOT]   exit 1 and one line per violation
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

/** A folder's layer, from its path relative to the repo root (POSIX separators). */
export type Layer = 'functions' | 'infra' | 'lib' | 'lib/local' | 'lib/cli' | 'free';

export function layerOf(path: string): Layer {
  if (path.startsWith('functions/')) return 'functions';
  if (path.startsWith('infra/')) return 'infra';
  if (path.startsWith('lib/local/')) return 'lib/local';
  if (path.startsWith('lib/cli/')) return 'lib/cli';
  if (path.startsWith('lib/')) return 'lib';
  return 'free';
}

/**
 * The floors of lib/, lowest first; modules on one floor are peers and do not import each other.
 * docs/ARCHITECTURE.md "Map of the code" says what each module owns.
 */
export const LIB_FLOORS: readonly (readonly string[])[] = [
  ['errors.ts', 'functions.ts'],
  ['util'],
  ['model'],
  ['images'],
  ['cost'],
  ['training'],
  ['quality'],
  ['report'],
  ['config.ts', 'bundling.ts'],
  ['storage'],
  ['features', 'export', 'upload'],
  ['serving'],
  ['pipeline'],
  ['capture'],
  ['estimate', 'batch'],
  ['api'],
  ['local'],
  ['cli'],
];

/** The module of a path under lib/ (its first folder, or the file itself), else undefined. */
export function libModuleOf(path: string): string | undefined {
  const m = /^lib\/([^/]+)(\/)?/.exec(path);
  if (!m?.[1]) return undefined;
  return m[1];
}

/** A lib/ module's floor (its index in {@link LIB_FLOORS}), or -1 when it has none. */
export function floorOf(module: string): number {
  return LIB_FLOORS.findIndex((floor) => floor.includes(module));
}

/**
 * Whether a file of lib/ module `from` may import lib/ path `target`: same module, or a module
 * on a lower floor.
 */
export function mayImportInLib(from: string, target: string): boolean {
  const to = libModuleOf(target);
  if (to === undefined) return false;
  if (to === from) return true;
  const a = floorOf(from);
  const b = floorOf(to);
  return a >= 0 && b >= 0 && b < a;
}

/** Whether a file in layer `from` may reference `target` (a repo-relative path). */
export function mayImport(from: Layer, target: string): boolean {
  const to = layerOf(target);
  switch (from) {
    case 'free':
      return true;
    case 'functions':
      return to === 'functions' || to === 'lib';
    case 'infra':
      return to === 'infra' || to === 'lib';
    case 'lib':
      return to === 'lib';
    case 'lib/cli':
      return to === 'lib' || to === 'lib/local' || to === 'lib/cli';
    case 'lib/local':
      return (
        to === 'lib' ||
        to === 'lib/local' ||
        /^functions\/([^/]+\/)?(handler\.ts)?$/.test(target) ||
        target === 'infra/definition.ts' ||
        target === 'console/build.ts'
      );
  }
}

/** Relative module references of a TypeScript source (imports, re-exports, import(), new URL). */
export function referencesOf(text: string): string[] {
  const refs = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
  // `new URL('../x.ts', import.meta.url)` and template literals up to their first `${`.
  for (const m of text.matchAll(/new URL\(\s*['"`]([^'"`$]*)/g)) if (m[1]) refs.push(m[1]);
  return refs.filter((r) => r.startsWith('./') || r.startsWith('../'));
}

/** One import that points the wrong way. */
export interface LayerViolation {
  file: string;
  target: string;
  /** The layer, or for an import between lib/ modules the importing module (`lib/model`). */
  layer: string;
}

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(p);
    else if (/\.(ts|mts|js|mjs)$/.test(entry.name)) yield p;
  }
}

/** Every violation under `root`'s functions/, infra/ and lib/. */
export function checkLayers(root: string): LayerViolation[] {
  const out: LayerViolation[] = [];
  for (const top of ['functions', 'infra', 'lib']) {
    if (!existsSync(join(root, top))) continue;
    for (const file of sources(join(root, top))) {
      const rel = relative(root, file).split(sep).join('/');
      const layer = layerOf(rel);
      for (const ref of referencesOf(readFileSync(file, 'utf8'))) {
        const target = relative(root, resolve(dirname(file), ref))
          .split(sep)
          .join('/');
        // A reference ending in `/` (a folder prefix, as in `new URL('../functions/')`) keeps it.
        const t = ref.endsWith('/') ? `${target}/` : target;
        if (!mayImport(layer, t)) out.push({ file: rel, target: t, layer });
        else if (rel.startsWith('lib/') && t.startsWith('lib/')) {
          const module = libModuleOf(rel) ?? '';
          if (!mayImportInLib(module, t)) out.push({ file: rel, target: t, layer: `lib/${module}` });
        }
      }
    }
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));
  const violations = checkLayers(root);
  for (const v of violations) {
    const module = libModuleOf(v.file);
    const unplaced = v.layer.startsWith('lib/') && module !== undefined && floorOf(module) < 0;
    const target = libModuleOf(v.target);
    console.error(
      unplaced
        ? `${v.file}: lib/${module} has no floor: add it to LIB_FLOORS in scripts/check-layers.ts`
        : target !== undefined && floorOf(target) < 0 && v.layer.startsWith('lib/')
          ? `${v.file}: imports ${v.target}, whose module lib/${target} has no floor in LIB_FLOORS`
          : `${v.file}: imports ${v.target}, which the ${v.layer}/ layer must not`,
    );
  }
  if (violations.length > 0) {
    console.error(
      `${violations.length} import(s) point up or sideways; see scripts/check-layers.ts for the layers`,
    );
    process.exit(1);
  }
  console.log('layers: every import points down');
}
