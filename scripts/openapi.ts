/**
 * Writes the API's OpenAPI 3.1 document (lib/api/openapi.ts, generated from lib/api/routes.ts and
 * lib/api/contract.ts) to docs/openapi.json, so it can be read, diffed and imported without a
 * running stack. `--check` writes nothing and exits 1 when the committed file is not current.
 *
 *   npm run openapi            (= node bin/run-ts.js scripts/openapi.ts [--check])
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openApiDocument } from '../lib/api/openapi.ts';

/** Where the document is committed. */
export const OPENAPI_FILE = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));

/** The file's exact text: two-space JSON and a final newline. */
export function openApiText(): string {
  return `${JSON.stringify(openApiDocument(), null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = openApiText();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(OPENAPI_FILE, 'utf8');
    } catch {
      // missing: not current
    }
    if (current !== text) {
      console.error('docs/openapi.json is not current: run npm run openapi');
      process.exit(1);
    }
  } else {
    writeFileSync(OPENAPI_FILE, text);
    console.log(`wrote docs/openapi.json (${Object.keys(JSON.parse(text).paths).length} paths)`);
  }
}
