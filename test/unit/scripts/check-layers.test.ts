import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLayers, LIB_FLOORS, layerOf, mayImport, referencesOf } from '../../../scripts/check-layers.ts';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
let dir: string | undefined;

function tree(files: Record<string, string>): string {
  dir = mkdtempSync(join(tmpdir(), 'tlearn-layers-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('the layering check', () => {
  it('finds no import pointing up or sideways in this repository', () => {
    expect(checkLayers(REPO)).toEqual([]);
  });

  it('reports lib importing lib/cli, infra importing functions and functions importing lib/local', () => {
    const root = tree({
      'lib/a.ts': "import { x } from './cli/target.ts';\nexport const a = x;\n",
      'lib/cli/target.ts': 'export const x = 1;\n',
      'lib/local/stack.ts': "import type { X } from '../cli/target.ts';\n",
      'infra/stack.ts': "const m = await import('../functions/shared/powertools.ts');\n",
      'functions/api/handler.ts': "export { s } from '../../lib/local/stack.ts';\n",
      'functions/shared/powertools.ts': '',
    });

    expect(checkLayers(root).map((v) => `${v.file} -> ${v.target}`)).toEqual([
      'functions/api/handler.ts -> lib/local/stack.ts',
      'infra/stack.ts -> functions/shared/powertools.ts',
      'lib/a.ts -> lib/cli/target.ts',
      'lib/local/stack.ts -> lib/cli/target.ts',
    ]);
  });

  it('lets the local stack load the handlers and the synthesized definition, and nothing else above it', () => {
    const dynamicHandler = ['new URL(`../../functions/', '$', '{name}/handler.ts`, import.meta.url)'].join(
      '',
    );
    expect(referencesOf(dynamicHandler)).toEqual(['../../functions/']);
    expect(mayImport('lib/local', 'functions/')).toBe(true);
    expect(mayImport('lib/local', 'functions/api/handler.ts')).toBe(true);
    expect(mayImport('lib/local', 'infra/definition.ts')).toBe(true);
    expect(mayImport('lib/local', 'functions/shared/powertools.ts')).toBe(false);
    expect(mayImport('lib/local', 'infra/stack.ts')).toBe(false);
    expect(mayImport('lib/cli', 'lib/local/stack.ts')).toBe(true);
    expect(mayImport('lib', 'lib/local/defaults.ts')).toBe(false);
  });

  it('holds lib/ to its floor order: no import up, none between peers, type-only ones included', () => {
    const root = tree({
      'lib/errors.ts': 'export class E extends Error {}\n',
      'lib/api/http.ts': "import { E } from '../errors.ts';\nexport const h = E;\n",
      'lib/api/types.ts': 'export interface RouteContext { x: number }\n',
      // The probe: the lowest floor reaching for the API, once for a value and once for a type.
      'lib/model/x.ts': "import { h } from '../api/http.ts';\nexport const x = h;\n",
      'lib/model/y.ts':
        "import type { RouteContext } from '../api/types.ts';\nexport type Y = RouteContext;\n",
      // Peers (one floor) may not import each other; down is fine.
      'lib/features/a.ts':
        "import { u } from '../upload/u.ts';\nimport { E } from '../errors.ts';\nexport const a = [u, E];\n",
      'lib/upload/u.ts':
        "import type { RouteContext } from '../api/types.ts';\nexport const u = 1 as unknown as RouteContext;\n",
      'lib/serving/s.ts': "import { a } from '../features/a.ts';\nexport const s = a;\n",
      // A folder nobody placed.
      'lib/newthing/n.ts': "import { E } from '../errors.ts';\nexport const n = E;\n",
    });

    expect(checkLayers(root).map((v) => `${v.file} -> ${v.target}`)).toEqual([
      'lib/features/a.ts -> lib/upload/u.ts',
      'lib/model/x.ts -> lib/api/http.ts',
      'lib/model/y.ts -> lib/api/types.ts',
      'lib/newthing/n.ts -> lib/errors.ts',
      'lib/upload/u.ts -> lib/api/types.ts',
    ]);
  });

  it('places every module of lib/ on exactly one floor', () => {
    const all = LIB_FLOORS.flat();
    expect(new Set(all).size).toBe(all.length);
    const here = readdirSync(join(REPO, 'lib'), { withFileTypes: true })
      .filter((e) => e.isDirectory() || /\.ts$/.test(e.name))
      .map((e) => e.name);
    expect(here.filter((m) => !all.includes(m))).toEqual([]);
    expect(all.filter((m) => !here.includes(m))).toEqual([]);
  });

  it('leaves bin/, scripts/, test/ and bench/ free, and keeps lib/ from importing bench/lib/', () => {
    for (const file of [
      'bin/tlearn.js',
      'scripts/openapi.ts',
      'test/setup.ts',
      'bench/run.ts',
      'bench/lib/x.ts',
    ])
      expect(layerOf(file)).toBe('free');
    expect(mayImport('free', 'lib/local/stack.ts')).toBe(true);
    expect(mayImport('lib', 'bench/lib/stats.ts')).toBe(false);
  });
});
