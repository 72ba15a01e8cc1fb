import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';

/** What one attempt to fetch the real VGG16 weights gave. */
export type FetchOutcome = { ok: true; dir: string } | { ok: false; reason: string };

/**
 * Tries once to download Keras' VGG16 weights (md5-checked) and import them under
 * `{baseModelsDir}/vgg16-keras/`, so a stack that is online gets real weights on its first start.
 * Offline it fails fast (DNS or connection refused) and says why; it never throws.
 */
export async function tryFetchBaseWeights(
  baseModelsDir: string,
  opts: { url?: string; stallTimeoutMs?: number; log: Log },
): Promise<FetchOutcome> {
  // Loaded lazily: h5wasm and tfjs are not needed when weights are already there.
  const { downloadFile, KERAS_VGG16_NOTOP_FILE, KERAS_VGG16_NOTOP_MD5, KERAS_VGG16_NOTOP_URL } = await import(
    '../model/download.ts'
  );
  const url = opts.url ?? KERAS_VGG16_NOTOP_URL;
  const tmp = await mkdtemp(join(tmpdir(), 'tlearn-fetch-'));
  try {
    const file = join(tmp, KERAS_VGG16_NOTOP_FILE);
    opts.log.info(`no imported VGG16 weights: trying to fetch them once from ${new URL(url).host}…`);
    await downloadFile(url, file, {
      ...(url === KERAS_VGG16_NOTOP_URL ? { md5: KERAS_VGG16_NOTOP_MD5 } : {}),
      stallTimeoutMs: opts.stallTimeoutMs ?? 15_000,
    });
    const { importKerasH5 } = await import('../model/h5-import.ts');
    const out = join(baseModelsDir, 'vgg16-keras');
    await importKerasH5(file, { out, log: opts.log });
    return { ok: true, dir: out };
  } catch (err) {
    return { ok: false, reason: describeError(err) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
