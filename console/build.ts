/**
 * Builds the console (console/src, preact) into ONE self-contained `index.html`: the esbuild bundle
 * and the stylesheet inline, no external resource, so `GET /` is one response and works offline.
 * Run by `npm run build:console` (→ console/dist/), by the local stack at start (into its data
 * dir) and by the container image build (functions/Dockerfile → /var/task/console).
 *
 *   node bin/run-ts.js console/build.ts [--out DIR]
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { BROWSER_MODEL_MODULE, ORT_DIR, ORT_WASM_FILE } from '../lib/api/console-assets.ts';

const SRC = join(dirname(fileURLToPath(import.meta.url)), 'src');

/** What a build wrote. */
export interface ConsoleBuild {
  /** The folder holding index.html (the API's TLEARN_CONSOLE_DIR). */
  dir: string;
  bytes: number;
  gzipBytes: number;
}

/** Builds console/src into `{outDir}/index.html`. */
export async function buildConsole(outDir: string): Promise<ConsoleBuild> {
  const result = await build({
    entryPoints: [join(SRC, 'main.tsx')],
    bundle: true,
    write: false,
    format: 'esm',
    target: ['chrome111', 'firefox111', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const js = result.outputFiles[0]?.text ?? '';
  const css = (await readFile(join(SRC, 'style.css'), 'utf8'))
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\s*\n\s*/g, '');
  // `</script` cannot occur in esbuild's output of our sources; checked to keep the inlining safe.
  if (/<\/script/i.test(js)) throw new Error('the console bundle contains </script; cannot inline it');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>tlearn console</title>
<style>${css}</style>
</head><body><div id="app"></div>
<script type="module">${js}</script>
</body></html>
`;
  const dir = resolve(outDir);
  await mkdir(join(dir, ORT_DIR), { recursive: true });
  await writeFile(join(dir, 'index.html'), html);
  // "Run in this browser" (lib/api/console-assets.ts serves these): loaded only when asked.
  await build({
    entryPoints: [join(SRC, 'browser-model.ts')],
    bundle: true,
    outfile: join(dir, ORT_DIR, BROWSER_MODEL_MODULE),
    format: 'esm',
    target: ['chrome111', 'firefox111', 'safari16'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const ortDist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web/wasm'));
  await copyFile(join(ortDist, ORT_WASM_FILE), join(dir, ORT_DIR, ORT_WASM_FILE));
  return { dir, bytes: Buffer.byteLength(html), gzipBytes: gzipSync(html).length };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  if (process.argv.includes('--help')) {
    console.log('usage: node bin/run-ts.js console/build.ts [--out DIR]   (default console/dist)');
  } else {
    const out = i > 0 ? (process.argv[i + 1] ?? '') : join(dirname(SRC), 'dist');
    const b = await buildConsole(out);
    console.log(
      `console: ${join(b.dir, 'index.html')} ${(b.bytes / 1024).toFixed(1)} KB (${(b.gzipBytes / 1024).toFixed(1)} KB gzip)`,
    );
  }
}
