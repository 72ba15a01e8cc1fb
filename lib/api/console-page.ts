/**
 * `GET /`: the web console, one self-contained HTML file (script and styles inline, no
 * CDN) built by `console/build.ts` into the folder `TLEARN_CONSOLE_DIR` names. Public: it holds
 * no data; every data call the page makes sends the API key. Served with an ETag (a 304 for an
 * unchanged page) and a Content-Security-Policy that allows exactly the built script.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { NotFoundError } from '../errors.ts';
import { getHeader } from './http.ts';
import type { RouteContext } from './types.ts';

/** The console page as served. */
export interface ConsolePage {
  html: string;
  etag: string;
  csp: string;
}

/** The file `console/build.ts` writes. */
export const CONSOLE_FILE = 'index.html';

/**
 * Reads the built page and derives its ETag and CSP (the sha256 of the one inline script).
 *
 * @example const page = await loadConsolePage('/var/task/console');
 */
export async function loadConsolePage(dir: string): Promise<ConsolePage> {
  const html = await readFile(join(dir, CONSOLE_FILE), 'utf8');
  const scripts = [...html.matchAll(/<script type="module">([\s\S]*?)<\/script>/g)].map(
    (m) =>
      `'sha256-${createHash('sha256')
        .update(m[1] ?? '')
        .digest('base64')}'`,
  );
  const csp = [
    "default-src 'none'",
    // 'self': the lazily imported onnxruntime-web module (GET /console/ort/browser-model.mjs);
    // 'wasm-unsafe-eval': compiling its WebAssembly (nothing else is eval'd).
    `script-src ${scripts.join(' ') || "'none'"} 'self' 'wasm-unsafe-eval'`,
    // Preact sets element styles through the CSSOM; the stylesheet is inline.
    "style-src 'unsafe-inline'",
    // Thumbnails are fetched with the key and shown as blob: URLs; dropped images as data/blob.
    'img-src blob: data:',
    // The API itself, and presigned S3 URLs (https on AWS, the loopback emulator locally).
    "connect-src 'self' https: http://127.0.0.1:* http://localhost:*",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, etag: `"${createHash('sha256').update(html).digest('hex').slice(0, 32)}"`, csp };
}

const pages = new Map<string, Promise<ConsolePage>>();

/** 404 for a stack whose console was not built (the page or its lazily loaded files). */
export function consoleNotBuiltError(cause?: unknown): NotFoundError {
  return new NotFoundError(
    'the console is not built here: run `npm run build:console` and set TLEARN_CONSOLE_DIR',
    { code: 'ConsoleNotBuilt', cause },
  );
}

/** `GET /` → the console page (404 with what to do when the console was not built). */
export async function consolePageRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<APIGatewayProxyResult> {
  const dir = ctx.config.consoleDir;
  const notBuilt = consoleNotBuiltError;
  if (dir === undefined) throw notBuilt();
  let loading = pages.get(dir);
  if (loading === undefined) {
    loading = loadConsolePage(dir);
    pages.set(dir, loading);
    // A failed read is retried on the next request (e.g. the folder was being written).
    loading.catch(() => pages.delete(dir));
  }
  let page: ConsolePage;
  try {
    page = await loading;
  } catch (err) {
    throw notBuilt(err);
  }
  const headers = {
    etag: page.etag,
    'cache-control': 'no-cache',
    'content-security-policy': page.csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  if (getHeader(event, 'if-none-match') === page.etag) return { statusCode: 304, headers, body: '' };
  return {
    statusCode: 200,
    headers: { 'content-type': 'text/html; charset=utf-8', ...headers },
    body: page.html,
  };
}
