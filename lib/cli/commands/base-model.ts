import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  downloadFile,
  KERAS_VGG16_NOTOP_FILE,
  KERAS_VGG16_NOTOP_MD5,
  KERAS_VGG16_NOTOP_URL,
  UnavailableError,
} from '../../model/download.ts';
import type { ImportResult } from '../../model/h5-import.ts';
import { consoleLog, type Log } from '../../util/log.ts';
import { parseCommandArgs, UsageError } from '../args.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import { createProgress } from '../progress.ts';

const HELP = `usage: tlearn base-model import FILE.h5 [--out DIR]
       tlearn base-model fetch [--url URL] [--out DIR]

Turns Keras' ImageNet VGG16 weights without the top (${KERAS_VGG16_NOTOP_FILE}, 58 MB)
into a tfjs layers model folder (model.json + weight shards) that the extractor loads:
point BASE_MODEL_URI at the folder, or upload it under s3://BUCKET/base-models/.

commands:
  import FILE.h5   convert a Keras weights file you already have
  fetch            download the file from Keras' storage, check its md5, then import it
                   (needs internet; offline, download it elsewhere and use import)

options:
  --out DIR        output folder (default ./.tlearn/base-models/vgg16-<weights id>/)
  --url URL        fetch from this URL instead (the md5 is checked only for the official one)
  -h, --help       this help

Prints the weights id (the 'weights' part of every feature spec: the first 16 hex chars of the
sha256 of the weights) and the folder.
exit codes: 0 ok, 1 failure, 2 usage error, 4 cannot reach the download URL`;

function outFlag(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  const out = String(raw);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(out)) {
    throw new UsageError(`--out must be a local folder (got '${out}'); copy the folder to S3 afterwards`);
  }
  return resolve(out);
}

/** Loads tfjs + h5wasm only when there is something to convert, then converts. */
async function convert(file: string, out: string | undefined, log: Log): Promise<ImportResult> {
  const [{ selectBackend }, { importKerasH5 }, { loadBackendConfig }] = await Promise.all([
    import('../../model/backend.ts'),
    import('../../model/h5-import.ts'),
    import('../../config.ts'),
  ]);
  // Only the saved topology needs tensors; picking the backend up front keeps tfjs quiet.
  // onnx is an inference engine only; the import itself runs on a tfjs backend.
  const forced = loadBackendConfig().backend;
  await selectBackend(forced === 'onnx' ? undefined : forced, { ...log, info: log.debug });
  return importKerasH5(file, { log, ...(out ? { out } : {}) });
}

function report(result: ImportResult): void {
  console.log(`weights id: ${result.weightsId}`);
  console.log(`model: ${result.modelJson}`);
  console.log(`use it with: BASE_MODEL_URI=${result.out}`);
}

async function runImport(args: string[], log: Log): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { out: { type: 'string' } });
  const [file, ...extra] = positionals;
  if (file === undefined)
    throw new UsageError(`import needs the Keras file: tlearn base-model import ${KERAS_VGG16_NOTOP_FILE}`);
  if (extra.length > 0) throw new UsageError(`import takes one file (got also ${extra.join(' ')})`);
  const out = outFlag(values.out);
  report(await convert(resolve(file), out, log));
  return EXIT.OK;
}

async function runFetch(args: string[], log: Log): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    out: { type: 'string' },
    url: { type: 'string' },
  });
  if (positionals.length > 0)
    throw new UsageError(`fetch takes no file (got ${positionals.join(' ')}); use --url`);
  const url = values.url === undefined ? KERAS_VGG16_NOTOP_URL : String(values.url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url is not a URL: '${url}'`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw new UsageError(`--url must be http(s): '${url}'`);
  const out = outFlag(values.out);
  const official = url === KERAS_VGG16_NOTOP_URL;
  const tmp = await mkdtemp(join(tmpdir(), 'tlearn-fetch-'));
  try {
    const file = join(tmp, KERAS_VGG16_NOTOP_FILE);
    let progress: ReturnType<typeof createProgress> | undefined;
    let shownKiB = 0;
    log.info(`downloading ${url}`);
    try {
      const { bytes } = await downloadFile(url, file, {
        ...(official ? { md5: KERAS_VGG16_NOTOP_MD5 } : {}),
        onProgress(received, total) {
          if (total <= 0) return;
          progress ??= createProgress('download (KiB)', Math.ceil(total / 1024));
          const kib = received >= total ? Math.ceil(total / 1024) : Math.floor(received / 1024);
          if (kib > shownKiB) {
            progress.tick(kib - shownKiB);
            shownKiB = kib;
          }
        },
      });
      progress?.done(`downloaded ${(bytes / 1_048_576).toFixed(1)} MB${official ? ' (md5 ok)' : ''}`);
    } catch (err) {
      if (err instanceof UnavailableError) {
        console.error(`tlearn base-model fetch: ${err.message}`);
        return EXIT.UNAVAILABLE;
      }
      throw err;
    }
    report(await convert(file, out, log));
    return EXIT.OK;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** `tlearn base-model import|fetch`: Keras VGG16 weights → tfjs layers model folder. */
export const command: Command = {
  summary: 'import (Keras .h5) or fetch the VGG16 weights as a tfjs layers model',
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'import') return runImport(rest, consoleLog);
    if (sub === 'fetch') return runFetch(rest, consoleLog);
    throw new UsageError(
      sub === undefined ? 'say import or fetch' : `unknown sub-command '${sub}' (import or fetch)`,
    );
  },
};
