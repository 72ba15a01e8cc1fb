import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { ZIP_EXTERNALS, zipBundleOptions } from '../../../lib/bundling.ts';
import { FUNCTION_NAMES, IMAGE_FUNCTIONS } from '../../../lib/functions.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

/**
 * A zip function's asset holds its bundle only: an external (sharp, onnxruntime-node, h5wasm) that
 * it imports statically is missing on Lambda and the function fails to load. Only the container
 * image's functions (IMAGE_FUNCTIONS of lib/functions.ts) have them in node_modules.
 */
describe('the zip functions', () => {
  const zipFunctions = FUNCTION_NAMES.filter((n) => !IMAGE_FUNCTIONS.includes(n));

  it.each(zipFunctions)('%s imports no package its zip asset leaves out', async (name) => {
    const entry = join(ROOT, 'functions', name, 'handler.ts');
    const out = await build({
      ...zipBundleOptions(entry, join(ROOT, 'dist-test', name, 'index.mjs')),
      absWorkingDir: ROOT,
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const imports = Object.values(out.metafile.outputs).flatMap((o) => o.imports);
    const missing = imports
      .filter((i) => i.external && i.kind !== 'dynamic-import')
      .map((i) => i.path)
      .filter((p) => ZIP_EXTERNALS.some((e) => p === e || p.startsWith(`${e}/`)));
    expect(missing).toEqual([]);
  });

  it('are checked at all: the extract-features handler, bundled as a zip, would import sharp', async () => {
    const entry = join(ROOT, 'functions', 'extract-features', 'handler.ts');
    const out = await build({
      ...zipBundleOptions(entry, join(ROOT, 'dist-test', 'x', 'index.mjs')),
      absWorkingDir: ROOT,
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const paths = Object.values(out.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
    expect(paths).toContain('sharp');
  });
});
