import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { TlearnError, WeightsError } from '../errors.ts';

/** File name of the Keras ImageNet VGG16 weights without the top, as Keras downloads it. */
export const KERAS_VGG16_NOTOP_FILE = 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5';

/** Where Keras itself downloads the VGG16 ImageNet weights without the top. */
export const KERAS_VGG16_NOTOP_URL =
  'https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5';

/** md5 of that file, as `keras.applications.vgg16` checks it (`file_hash`). */
export const KERAS_VGG16_NOTOP_MD5 = '6d6bbae143d832006294945121d1f1fc';

/** A remote resource could not be reached (offline, DNS, refused, timed out, 5xx). CLI exit 4. */
export class UnavailableError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('Unavailable', message, 503, options);
  }
}

/** Options of `downloadFile`. */
export interface DownloadOptions {
  /** Lowercase hex md5 the file must have; checked after the last byte. */
  md5?: string;
  /** Called with (bytes so far, total bytes or 0 when the server does not say). */
  onProgress?: (received: number, total: number) => void;
  /** Give up when no response headers arrived, or no bytes for this long. @default 30000 */
  stallTimeoutMs?: number;
}

const OFFLINE_HINT = 'you are offline? Download the file elsewhere and run `tlearn base-model import FILE`';

function reason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}

/**
 * Downloads `url` to `dest` (via `dest.part`, renamed at the end so a partial download is never
 * mistaken for the file), reporting progress and checking the md5 when given.
 * Network failures (and 5xx answers) throw UnavailableError naming the host; other HTTP errors
 * and a wrong md5 throw WeightsError.
 */
export async function downloadFile(
  url: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<{ bytes: number; md5: string }> {
  const host = new URL(url).host;
  const stallMs = opts.stallTimeoutMs ?? 30_000;
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(new Error(`no answer in ${stallMs} ms`)), stallMs);
  const resetTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(new Error(`stalled for ${stallMs} ms`)), stallMs);
  };
  const part = `${dest}.part`;
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: abort.signal, redirect: 'follow' });
    } catch (err) {
      throw new UnavailableError(`cannot reach ${host} (${reason(err)}); ${OFFLINE_HINT}`, { cause: err });
    }
    if (!res.ok || res.body === null) {
      const msg = `download of ${url} failed: HTTP ${res.status} ${res.statusText}`.trim();
      if (res.status >= 500 || res.status === 429) throw new UnavailableError(`${msg}; try again later`);
      throw new WeightsError(msg);
    }
    const total = Number(res.headers.get('content-length') ?? 0) || 0;
    const md5 = createHash('md5');
    const out = createWriteStream(part);
    let received = 0;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        resetTimer();
        md5.update(chunk);
        received += chunk.byteLength;
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        opts.onProgress?.(received, total);
      }
    } catch (err) {
      throw new UnavailableError(`download from ${host} broke off after ${received} bytes (${reason(err)})`, {
        cause: err,
      });
    } finally {
      await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
    }
    if (total > 0 && received !== total) {
      throw new UnavailableError(`download from ${host} ended after ${received} of ${total} bytes`);
    }
    const digest = md5.digest('hex');
    if (opts.md5 !== undefined && digest !== opts.md5.toLowerCase()) {
      throw new WeightsError(
        `downloaded file has md5 ${digest}, expected ${opts.md5} (corrupt or not the Keras file)`,
      );
    }
    await rename(part, dest);
    return { bytes: received, md5: digest };
  } finally {
    clearTimeout(timer);
    await rm(part, { force: true });
  }
}
