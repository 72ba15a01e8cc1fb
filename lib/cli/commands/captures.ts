import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResponseOf } from '../../api/client.ts';
import { formatPercent } from '../../util/format.ts';
import { parseCommandArgs, UsageError } from '../args.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import { createProgress } from '../progress.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  formatTable,
  processContext,
  reportRemoteError,
} from '../remote.ts';
import { resolveTarget, TARGET_HELP, TARGET_OPTIONS, targetFlags, timeoutMsFlag } from '../target.ts';

const HELP = `tlearn captures D [--order uncertain|recent] [--limit N] [--export DIR] [--json]

Lists the production predictions of dataset D captured for review (GET /datasets/D/captures):
most uncertain first (smallest margin between the two top classes), or newest first. Capture is
turned on per dataset (PUT /datasets/D/settings, e.g. {"capture": {"sample": 0.05,
"belowConfidence": 0.6}}) or per request (POST …/predictions?capture=true). Label them in the
console's Review tab or with POST /datasets/D/captures/{id}/label {"label": "cat"}.

options:
  --order O            uncertain (default) or recent
  --limit N            captures to show (default 50; --export takes every one)
  --export DIR         write every capture to DIR: its image as DIR/{id}.jpg (a 512-pixel JPEG)
                       and captures.jsonl with the predictions, for labelling elsewhere
  --json               print the API's answer as JSON

${TARGET_HELP}

examples:
  tlearn captures pets
  tlearn captures pets --order recent --limit 10
  tlearn captures pets --export ./to-label

exit codes: 0 ok, 1 the API said no, 2 usage, 4 the stack could not be reached`;

type CapturePage = ResponseOf<'GET /datasets/{d}/captures'>;

/** The lines `tlearn captures` prints for a page. */
export function formatCaptures(page: CapturePage): string[] {
  const rows = page.captures.map((c) => [
    c.id,
    c.label ?? '(abstained)',
    formatPercent(c.confidence),
    c.margin.toFixed(3),
    c.reason,
  ]);
  return [
    `${page.pending} to review, ${page.reviewed} reviewed`,
    ...(rows.length > 0
      ? formatTable(['capture', 'model said', 'confidence', 'margin', 'why'], rows, [
          false,
          false,
          true,
          true,
        ])
      : ['(nothing captured yet: turn capture on with PUT /datasets/{d}/settings)']),
  ];
}

/** `tlearn captures` with an explicit context (tests). */
export async function runCaptures(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    json: { type: 'boolean' },
    order: { type: 'string' },
    limit: { type: 'string' },
    export: { type: 'string' },
  });
  const dataset = datasetArg(positionals[0]);
  const order = values.order ?? 'uncertain';
  if (order !== 'uncertain' && order !== 'recent')
    throw new UsageError(`--order must be uncertain or recent`);
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new UsageError('--limit must be 1 to 200');
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMsFlag(values), ctx);
  const path = `/datasets/${encodeURIComponent(dataset)}`;
  const page = async (token?: string) => {
    const body = await api.call('GET /datasets/{d}/captures', {
      params: { d: dataset },
      query: {
        order,
        limit: values.export !== undefined ? 200 : limit,
        ...(token !== undefined ? { token } : {}),
      },
    });
    return { parsed: body, raw: body };
  };
  try {
    if (values.export === undefined) {
      const { parsed, raw } = await page();
      if (values.json === true) ctx.out(JSON.stringify(raw, null, 2));
      else for (const line of formatCaptures(parsed)) ctx.out(line);
      return EXIT.OK;
    }
    const dir = values.export;
    await mkdir(dir, { recursive: true });
    const lines: string[] = [];
    let token: string | undefined;
    let first = true;
    let progress: ReturnType<typeof createProgress> | undefined;
    do {
      const { parsed } = await page(token);
      if (first) progress = createProgress('captures', parsed.pending);
      first = false;
      for (const c of parsed.captures) {
        const { body } = await api.request('GET', `${path}/images`, {
          query: { key: c.imageKey, size: '512' },
          accept: 'image/jpeg',
        });
        if (!(body instanceof Uint8Array))
          throw new Error(`image of capture ${c.id} did not come back as bytes`);
        await writeFile(join(dir, `${c.id}.jpg`), body);
        lines.push(JSON.stringify({ ...c, file: `${c.id}.jpg` }));
        progress?.tick();
      }
      token = parsed.nextToken;
    } while (token !== undefined);
    progress?.done();
    await writeFile(join(dir, 'captures.jsonl'), lines.length > 0 ? `${lines.join('\n')}\n` : '');
    ctx.out(`${lines.length} captures written to ${dir} (images + captures.jsonl)`);
    return EXIT.OK;
  } catch (err) {
    return reportRemoteError('captures', target, 'api', err, ctx);
  }
}

export const command: Command = {
  summary: 'list (or export) the production predictions captured for review',
  help: HELP,
  run: (argv) => runCaptures(argv, processContext()),
};
