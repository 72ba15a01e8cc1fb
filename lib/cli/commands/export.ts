import { promises as fs } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ExportResponse } from '../../api/export.ts';
import { ValidationError } from '../../errors.ts';
import { readOnnxMetadata } from '../../export/onnx-metadata.ts';
import { buildModelExport } from '../../export/onnx-model.ts';
import { loadWeights } from '../../model/weights.ts';
import { parseModelDocument } from '../../training/model-document.ts';
import { consoleLog } from '../../util/log.ts';
import { parseCommandArgs, UsageError } from '../args.ts';
import { ApiError, UnreachableError, unreachableReason } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import { createProgress } from '../progress.ts';
import { type CliContext, datasetArg, processContext, reportRemoteError } from '../remote.ts';
import {
  requireApiKey,
  resolveTarget,
  TARGET_HELP,
  TARGET_OPTIONS,
  type Target,
  targetFlags,
  timeoutMsFlag,
} from '../target.ts';
import { loadHeadFile, weightsFor } from './predict.ts';

const HELP = `tlearn export D [--version V] --out model.onnx      a stack's model
tlearn export --model DIR --out model.onnx [--weights W]   offline, a folder written by tlearn fit

Writes the whole classifier as one ONNX file: input 'image' float32 [N, H, W, 3] (RGB, 0-255,
already resized to the spec's size, e.g. 150x150), output 'probabilities' [N, classes]. Inside:
the caffe preprocessing, the VGG16 base, flatten/pooling, the logistic head and softmax. The
class labels, spec, dataset, version and input contract are in the file's metadata_props
(tlearn.classes, tlearn.spec, tlearn.dataset, tlearn.version, tlearn.input).

Against a stack this asks GET /datasets/D/model/export?format=onnx and downloads the file the
API points to (a presigned S3 URL; the stack writes it once per version).

options:
  --out FILE         where to write the .onnx file (required)
  --version V        a model version other than the promoted one (stack only)
  --model DIR        offline: folder holding model.json (or its path)
  --weights W        offline: the base model (a tfjs model folder, file://…, s3://…, random[:SEED]);
                     default as for tlearn predict --model

${TARGET_HELP}

examples:
  tlearn export pets --out pets.onnx
  tlearn export --model ./head --out pets.onnx
  python -c "import onnxruntime as ort; s = ort.InferenceSession('pets.onnx'); print(s.get_modelmeta().custom_metadata_map)"

exit codes: 0 written, 1 failed (no model, spec mismatch, …), 2 usage, 4 the stack could not be reached`;

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.part`;
  await fs.writeFile(tmp, bytes);
  await fs.rename(tmp, path);
}

function describeExport(path: string, bytes: Uint8Array): string {
  const meta = readOnnxMetadata(bytes);
  const classes = JSON.parse(meta['tlearn.classes'] ?? '[]') as string[];
  const parts = [
    `wrote ${path} (${mb(bytes.byteLength)})`,
    meta['tlearn.dataset'] && `dataset ${meta['tlearn.dataset']}`,
    meta['tlearn.version'] && `version ${meta['tlearn.version']}`,
    `classes ${classes.join(', ')}`,
  ].filter(Boolean);
  return `${parts.join('; ')}\n  spec ${meta['tlearn.spec'] ?? '?'}`;
}

async function runOffline(model: string, out: string, weightsFlag: string | undefined, ctx: CliContext) {
  const loaded = await loadHeadFile(model);
  const doc = parseModelDocument(await fs.readFile(loaded.path, 'utf8'));
  const weights = await loadWeights(await weightsFor(loaded, weightsFlag, undefined), { log: consoleLog });
  const bytes = await buildModelExport({
    weights: weights.weights,
    weightsId: weights.weightsId,
    model: doc,
  });
  await writeAtomically(out, bytes);
  ctx.out(describeExport(out, bytes));
  return EXIT.OK;
}

/** Reads a response body with a progress bar (sized by content-length). */
async function readWithProgress(res: Response, ctx: CliContext): Promise<Uint8Array> {
  const total = Number(res.headers.get('content-length') ?? 0);
  if (res.body === null) return new Uint8Array(await res.arrayBuffer());
  const progress = createProgress('download MB', Math.max(1, Math.round(total / 1e6)), ctx.progress);
  const chunks: Uint8Array[] = [];
  let got = 0;
  let shown = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    got += chunk.byteLength;
    const mbs = Math.floor(got / 1e6);
    if (mbs > shown) {
      progress.tick(mbs - shown);
      shown = mbs;
    }
  }
  progress.done();
  return Buffer.concat(chunks);
}

async function runRemote(
  dataset: string,
  version: string | undefined,
  out: string,
  target: Target,
  timeoutMs: number,
  ctx: CliContext,
): Promise<number> {
  const doFetch = ctx.fetch ?? fetch;
  const query = new URLSearchParams({ format: 'onnx', ...(version ? { version } : {}) });
  const url = `${target.apiUrl}/datasets/${encodeURIComponent(dataset)}/model/export?${query}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  const key = requireApiKey(target);
  if (key !== undefined) headers['x-api-key'] = key;
  try {
    let res: Response;
    try {
      // The first export of a version is built by the API (a few seconds): the usual timeout applies.
      res = await doFetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      const reason = unreachableReason(err);
      if (reason === undefined) throw err;
      throw new UnreachableError(reason, { cause: err });
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.status !== 302) {
      const e = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(e?.code ?? `Http${res.status}`, e?.message ?? text.slice(0, 200), res.status);
    }
    const answer = body as ExportResponse;
    const location = res.headers.get('location') ?? answer.url;
    ctx.err(`exporting ${dataset} version ${answer.version} (${mb(answer.bytes)})`);
    // The presigned URL is S3's: no API key, and a long download gets its own generous timeout.
    const file = await doFetch(location, { signal: AbortSignal.timeout(Math.max(timeoutMs, 600_000)) });
    if (!file.ok)
      throw new ApiError(
        `Http${file.status}`,
        `downloading the export failed: HTTP ${file.status}`,
        file.status,
      );
    const bytes = await readWithProgress(file, ctx);
    await writeAtomically(out, bytes);
    ctx.out(describeExport(out, bytes));
    return EXIT.OK;
  } catch (err) {
    return reportRemoteError('export', target, 'api', err, ctx);
  }
}

/** `tlearn export D --out FILE` / `tlearn export --model DIR --out FILE`. */
export async function runExport(argv: string[], ctx: CliContext = processContext()): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    out: { type: 'string', short: 'o' },
    version: { type: 'string' },
    model: { type: 'string', short: 'm' },
    weights: { type: 'string' },
  });
  if (values.out === undefined) throw new UsageError('--out FILE is required');
  const out = resolve(ctx.cwd, String(values.out));
  if (values.model !== undefined) {
    if (positionals.length > 0) throw new UsageError('give either a dataset or --model DIR, not both');
    if (values.version !== undefined)
      throw new UsageError('--version is for a stack; --model names one model');
    return runOffline(String(values.model), out, values.weights as string | undefined, ctx);
  }
  if (positionals.length !== 1) throw new UsageError('give one dataset name (or --model DIR)');
  if (values.weights !== undefined) throw new UsageError('--weights only applies with --model DIR');
  const dataset = datasetArg(positionals[0]);
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const version = values.version as string | undefined;
  if (version !== undefined && version.trim() === '') throw new ValidationError('--version is empty');
  return runRemote(dataset, version, out, target, timeoutMsFlag(values), ctx);
}

export const command: Command = {
  summary: 'write a model as one ONNX file (from a stack, or offline from a tlearn fit folder)',
  help: HELP,
  run: (argv) => runExport(argv),
};
