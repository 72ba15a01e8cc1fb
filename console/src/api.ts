/**
 * The console's API client. Every URL is relative to the page (`GET /` on the API), so the same
 * bundle works at http://127.0.0.1:3000/ and at https://…/v1/ behind API Gateway. The API key is
 * asked once (only when the API answers 403 Forbidden) and kept in sessionStorage for the tab.
 */

const KEY_STORAGE = 'tlearn.apiKey';

/** An API answer that is not 2xx, with the API's `{error: {code, message}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The page's base URL, always ending in '/' (so `datasets` resolves under the stage). */
export function baseUrl(): string {
  const u = new URL(window.location.href);
  u.hash = '';
  u.search = '';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.href;
}

export function apiUrl(path: string): string {
  return new URL(path.replace(/^\//, ''), baseUrl()).href;
}

export function getApiKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key: string | null): void {
  if (key === null || key === '') sessionStorage.removeItem(KEY_STORAGE);
  else sessionStorage.setItem(KEY_STORAGE, key);
}

type KeyListener = (reason: string) => void;
let onKeyNeeded: KeyListener = () => {};
/** Called when a call was refused for want of a (valid) key; the app then shows the key form. */
export function whenKeyNeeded(listener: KeyListener): void {
  onKeyNeeded = listener;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = getApiKey();
  return { ...(key ? { 'x-api-key': key } : {}), ...extra };
}

async function toError(res: Response): Promise<ApiError> {
  let code = `HTTP${res.status}`;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string }; message?: string };
    if (body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
    } else if (body.message) message = body.message;
  } catch {
    // not JSON: keep the status line
  }
  if (res.status === 403 && (code === 'Forbidden' || message === 'Forbidden')) {
    onKeyNeeded(getApiKey() ? 'the API refused this key' : 'this API needs a key');
  }
  return new ApiError(res.status, code, message);
}

/** A request to the API; JSON in, JSON out. */
export async function api<T>(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
  init: { raw?: Blob; contentType?: string } = {},
): Promise<T> {
  const res = await fetch(apiUrl(path), {
    method,
    headers: headers(
      init.raw
        ? { 'content-type': init.contentType ?? 'application/octet-stream' }
        : body !== undefined
          ? { 'content-type': 'application/json' }
          : {},
    ),
    body: init.raw ?? (body !== undefined ? JSON.stringify(body) : undefined),
  });
  if (!res.ok) throw await toError(res);
  return (await res.json()) as T;
}

const thumbs = new Map<string, Promise<string>>();
/** A thumbnail as a blob: URL (fetched with the key, which an <img src> could not send). Cached. */
export function thumbnail(dataset: string, key: string, size = 128): Promise<string> {
  const id = `${dataset}\u0000${key}\u0000${size}`;
  let p = thumbs.get(id);
  if (!p) {
    p = fetch(apiUrl(`datasets/${dataset}/images?key=${encodeURIComponent(key)}&size=${size}`), {
      headers: headers({ accept: 'image/jpeg' }),
    }).then(async (res) => {
      if (!res.ok) throw await toError(res);
      return URL.createObjectURL(await res.blob());
    });
    p.catch(() => thumbs.delete(id));
    thumbs.set(id, p);
  }
  return p;
}

/**
 * PUTs a file to a presigned URL with upload progress (fetch has none for request bodies).
 * Resolves on 2xx; rejects with the status otherwise.
 */
export function putWithProgress(
  url: string,
  file: Blob,
  hdrs: Record<string, string>,
  onProgress: (sent: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [k, v] of Object.entries(hdrs)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300
        ? resolve()
        : reject(new Error(`upload refused by storage: HTTP ${xhr.status}`));
    xhr.onerror = () => reject(new Error('upload failed: network error (CORS?)'));
    xhr.send(file);
  });
}
