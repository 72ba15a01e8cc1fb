import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseQualityDocument, type QualityDocument } from '../../quality/document.ts';
import { formatQuality } from '../../report/quality.ts';
import { MODEL_VERSION_RE } from '../../storage/keys.ts';
import { parseCommandArgs, UsageError } from '../args.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  formatTable,
  processContext,
  showFromApi,
} from '../remote.ts';
import { resolveTarget, TARGET_HELP, TARGET_OPTIONS, targetFlags, timeoutMsFlag } from '../target.ts';

const HELP = `tlearn quality D [--version V] [--json]
tlearn quality --file PATH [--json]

Shows what the newest training of dataset D found in its data (GET /datasets/D/quality): exact
and near duplicates, the same image under different labels (conflicts), held-out images with a
copy in train (leaks; the accuracy without them), likely label errors (most suspicious first)
and the label counts. Offline, --file reads the quality.json that tlearn fit writes (PATH: the
file or the fit's --out folder). Nothing is changed: review the images and fix the dataset.

options:
  --version V          that model version's findings instead of the newest
  --file PATH          a quality.json (or a folder holding one) instead of a stack
  --json               print the document as JSON

${TARGET_HELP}

examples:
  tlearn quality pets
  tlearn quality pets --json | jq '.labelErrors[:10]'
  tlearn quality --file model/

exit codes: 0 ok, 1 the API said no (e.g. no training yet) or the file is not a quality.json,
2 usage, 4 the stack could not be reached`;

const table = (header: string[], rows: string[][]) => formatTable(header, rows).map((l) => `  ${l}`);

/** The lines `tlearn quality` prints for a document. */
export function formatQualityReport(q: QualityDocument): string[] {
  return formatQuality(q, table);
}

async function readLocal(path: string): Promise<{ parsed: QualityDocument; raw: unknown }> {
  const file = (await stat(path)).isDirectory() ? join(path, 'quality.json') : path;
  const text = await readFile(file, 'utf8');
  return { parsed: parseQualityDocument(text), raw: JSON.parse(text) };
}

/** `tlearn quality` with an explicit context (tests). */
export async function runQuality(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    json: { type: 'boolean' },
    version: { type: 'string' },
    file: { type: 'string' },
  });
  const json = values.json === true;
  if (values.file !== undefined) {
    if (positionals.length > 0) throw new UsageError('give either a dataset or --file, not both');
    const { parsed, raw } = await readLocal(values.file);
    if (json) ctx.out(JSON.stringify(raw, null, 2));
    else for (const line of formatQualityReport(parsed)) ctx.out(line);
    return EXIT.OK;
  }
  const dataset = datasetArg(positionals[0]);
  const version = values.version;
  if (version !== undefined && !MODEL_VERSION_RE.test(version))
    throw new UsageError(`--version '${version}' is not a model version (YYYYMMDDTHHMMSSZ-id)`);
  const timeoutMs = timeoutMsFlag(values);
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMs, ctx);
  return showFromApi(
    'quality',
    target,
    async () => {
      const { body } = await api.request('GET', `/datasets/${encodeURIComponent(dataset)}/quality`, {
        query: version !== undefined ? { version } : {},
      });
      return { parsed: parseQualityDocument(body), raw: body };
    },
    formatQualityReport,
    json,
    ctx,
  );
}

export const command: Command = {
  summary: "show a dataset's duplicates, leaks and likely label errors",
  help: HELP,
  run: (argv) => runQuality(argv, processContext()),
};
