import { parseCommandArgs } from '../args.ts';
import type { DatasetStatus } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  formatTable,
  percent,
  processContext,
  reportRemoteError,
} from '../remote.ts';
import {
  describeTarget,
  resolveTarget,
  TARGET_HELP,
  TARGET_OPTIONS,
  targetFlags,
  timeoutMsFlag,
} from '../target.ts';

const HELP = `tlearn status D [--json]

Shows a dataset of a stack (GET /datasets/D): images, features ready / failed / pending, a
table per label, the current model and the last training.

options:
  --json               print the API's answer as JSON

${TARGET_HELP}

examples:
  tlearn status pets
  tlearn status pets --json | jq .features
  tlearn status pets --endpoint https://abc123.execute-api.eu-west-1.amazonaws.com/prod --api-key …

exit codes: 0 ok, 1 the API said no (e.g. no such dataset), 2 usage, 4 the stack could not be reached`;

/** One row of the labels table, whatever form the API sent it in. */
export interface LabelRow {
  label: string;
  images: number | undefined;
  ready: number | undefined;
  failed: number | undefined;
  pending: number | undefined;
}

/** Normalizes `labels` (a list of rows, or a map label → counts / image count) to rows sorted by label. */
export function labelRows(labels: DatasetStatus['labels']): LabelRow[] {
  if (labels === undefined) return [];
  const rows: LabelRow[] = Array.isArray(labels)
    ? labels.map((l) => ({
        label: l.label,
        images: l.images,
        ready: l.ready,
        failed: l.failed,
        pending: l.pending,
      }))
    : Object.entries(labels).map(([label, v]) =>
        typeof v === 'number'
          ? { label, images: v, ready: undefined, failed: undefined, pending: undefined }
          : { label, images: v.images, ready: v.ready, failed: v.failed, pending: v.pending },
      );
  return rows.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

/** Total image count from `images` (a number or `{ total }`). */
export function imageCount(s: DatasetStatus): number | undefined {
  return typeof s.images === 'number' ? s.images : s.images?.total;
}

/** Lines describing a dataset's status, for humans. */
export function formatStatus(dataset: string, s: DatasetStatus): string[] {
  const n = (v: number | undefined) => (v === undefined ? '-' : String(v));
  const lines: string[] = [`dataset   ${s.dataset ?? dataset}`];
  const f = s.features;
  lines.push(
    `images    ${n(imageCount(s))}` +
      (f ? `   features: ${n(f.ready)} ready, ${n(f.failed)} failed, ${n(f.pending)} pending` : ''),
  );
  const rows = labelRows(s.labels);
  if (rows.length > 0) {
    lines.push('');
    lines.push(
      ...formatTable(
        ['label', 'images', 'ready', 'failed', 'pending'],
        rows.map((r) => [r.label, n(r.images), n(r.ready), n(r.failed), n(r.pending)]),
        [false, true, true, true, true],
      ),
    );
    lines.push('');
  }
  if (s.model) {
    const m = s.model;
    lines.push(
      `model     ${m.version}` +
        (m.trainedAt ? `, trained ${m.trainedAt}` : '') +
        (m.accuracy !== undefined ? `, accuracy ${percent(m.accuracy)}` : '') +
        (m.promotedAt ? `, promoted ${m.promotedAt}` : ''),
    );
  } else {
    lines.push(`model     none yet (tlearn train ${dataset})`);
  }
  const t = s.lastTraining;
  if (t) {
    lines.push(
      `training  ${t.status ?? 'unknown'}` +
        (t.trigger ? ` (${t.trigger})` : '') +
        (t.startedAt ? `, started ${t.startedAt}` : '') +
        (t.stoppedAt ? `, stopped ${t.stoppedAt}` : ''),
    );
    if (t.error || t.cause) lines.push(`          ${[t.error, t.cause].filter(Boolean).join(': ')}`);
  } else {
    lines.push('training  none yet');
  }
  return lines;
}

/** `tlearn status` with an explicit context (tests). */
export async function runStatus(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { ...TARGET_OPTIONS, json: { type: 'boolean' } });
  const dataset = datasetArg(positionals[0]);
  const timeoutMs = timeoutMsFlag(values);
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMs, ctx);
  try {
    const { parsed, raw } = await api.getDataset(dataset);
    if (values.json) ctx.out(JSON.stringify(raw, null, 2));
    else {
      for (const line of formatStatus(dataset, parsed)) ctx.out(line);
      ctx.err(`(${describeTarget(target)})`);
    }
    return EXIT.OK;
  } catch (err) {
    return reportRemoteError('status', target, 'api', err, ctx);
  }
}

export const command: Command = {
  summary: "show a dataset's images, features and model",
  help: HELP,
  run: (argv) => runStatus(argv, processContext()),
};
