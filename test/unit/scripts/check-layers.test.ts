import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLayers, layerOf, mayImport, referencesOf } from '../../../scripts/check-layers.ts';

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
