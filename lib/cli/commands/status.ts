import { parseCommandArgs } from '../args.ts';
import type { DatasetStatus } from '../client.ts';
import type { Command } from '../main.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  formatTable,
  processContext,
  RANDOM_WEIGHTS_WARNING,
  showFromApi,
} from '../remote.ts';
import { resolveTarget, TARGET_HELP, TARGET_OPTIONS, targetFlags, timeoutMsFlag } from '../target.ts';

const HELP = `tlearn status D [--timeline] [--json]

Shows a dataset of a stack (GET /datasets/D): images, features ready / failed / pending, a
table per label, the current model (with a warning when it was trained on random base weights)
and the last training (the newest model version, promoted or not).

options:
  --timeline           also where the time of the last upload and its training went: uploads,
                       end of extraction, each phase of the last execution (settle wait,
                       readiness rounds, train, promote, finish; again per follow-up training)
                       with its duration, and the promotion (GET /datasets/D?timeline=true)
  --json               print the API's answer as JSON

${TARGET_HELP}

examples:
  tlearn status pets
  tlearn status pets --timeline
  tlearn status pets --json | jq .images
  tlearn status pets --endpoint https://abc123.execute-api.eu-west-1.amazonaws.com/prod --api-key …

exit codes: 0 ok, 1 the API said no (e.g. no such dataset), 2 usage, 4 the stack could not be reached`;

/** `features: 30 ready, 1 failed, 5 pending` (+ skipped keys when there are any). */
export function featureCounts(images: DatasetStatus['images']): string {
  return (
    `${images.ready} ready, ${images.failed} failed, ${images.pending} pending` +
    (images.skipped > 0 ? ` (${images.skipped} unusable keys skipped)` : '')
  );
}

/** One line about the newest training (a model version written by a training, promoted or not). */
export function describeLastTraining(s: DatasetStatus): string {
  const t = s.lastTraining;
  if (t === null) return 'none yet';
  const when = t.at ? ` at ${t.at}` : '';
  if (t.promoted) return `${t.version}${when}, promoted`;
  const current = s.model ? `; the current model is ${s.model.version}` : '';
  return `${t.version}${when}, not promoted${current}`;
}

/** Lines describing a dataset's status, for humans. */
export function formatStatus(s: DatasetStatus): string[] {
  const lines: string[] = [
    `dataset   ${s.dataset}`,
    `images    ${s.images.total}   features: ${featureCounts(s.images)}`,
  ];
  if (!s.featuresSettled)
    lines.push('          features are still being extracted; a training starts when they are ready');
  const rows = Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (rows.length > 0) {
    lines.push('');
    lines.push(
      ...formatTable(
        ['label', 'images', 'ready', 'failed', 'pending'],
        rows.map(([label, c]) => [
          label,
          String(c.images),
          String(c.ready),
          String(c.failed),
          String(c.pending),
        ]),
        [false, true, true, true, true],
      ),
    );
    lines.push('');
  }
  if (s.model) {
    const m = s.model;
    lines.push(`model     ${m.version}, trained ${m.trainedAt}, promoted ${m.promotedAt}`);
    lines.push(`          ${m.classes.length} classes (${m.classes.join(', ')}), spec ${m.spec}`);
    if (m.randomWeights) lines.push(`          ${RANDOM_WEIGHTS_WARNING}`);
  } else {
    lines.push(`model     none yet (tlearn train ${s.dataset})`);
  }
  lines.push(`training  ${describeLastTraining(s)}`);
  const e = s.lastExecution;
  if (e !== null) {
    const ended = e.stoppedAt ? `, ended ${e.stoppedAt}` : '';
    lines.push(
      `execution ${e.name} ${e.status} (${e.trigger ?? 'unknown'} trigger, started ${e.startedAt}${ended})`,
    );
    if (e.status !== 'RUNNING' && e.status !== 'SUCCEEDED' && (e.error || e.cause)) {
      lines.push(`          ${e.error ?? 'Error'}: ${e.cause ?? ''}`);
    }
  }
  return lines;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * The timeline of the last upload and training, one line per phase, with times relative to the
 * first upload: `+12.3 s  train (training 1)  4.1 s`.
 */
export function formatTimeline(t: NonNullable<DatasetStatus['timeline']>): string[] {
  const origin = Date.parse(t.firstUploadAt ?? t.phases[0]?.startedAt ?? '');
  const at = (iso: string | null): string => {
    if (iso === null || !Number.isFinite(origin)) return '';
    return `+${((Date.parse(iso) - origin) / 1000).toFixed(1)} s`;
  };
  const rows: string[][] = [];
  if (t.firstUploadAt) rows.push([at(t.firstUploadAt), 'first image uploaded', '']);
  if (t.lastUploadAt) rows.push([at(t.lastUploadAt), 'last image uploaded', '']);
  if (t.lastFeatureAt) rows.push([at(t.lastFeatureAt), 'last feature written (extraction done)', '']);
  const trainings = new Set(t.phases.map((p) => p.training)).size;
  for (const p of t.phases) {
    const what = `${p.phase}${p.rounds ? ` (${p.rounds} check${p.rounds > 1 ? 's' : ''})` : ''}`;
    rows.push([at(p.startedAt), trainings > 1 ? `${what}, training ${p.training}` : what, seconds(p.ms)]);
  }
  if (t.promotedAt) rows.push([at(t.promotedAt), 'model promoted', '']);
  rows.sort((a, b) => Number.parseFloat((a[0] ?? '').slice(1)) - Number.parseFloat((b[0] ?? '').slice(1)));
  const lines = ['timeline of the last upload and training (times from the first upload):'];
  lines.push(...formatTable(['at', 'what', 'took'], rows, [true, false, true]).map((l) => `  ${l}`));
  if (t.phases.length === 0)
    lines.push('  (no execution history: the training has not run, or it is not readable)');
  return lines;
}

/** `tlearn status` with an explicit context (tests). */
export async function runStatus(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    json: { type: 'boolean' },
    timeline: { type: 'boolean' },
  });
  const timeline = values.timeline === true;
  const dataset = datasetArg(positionals[0]);
  const timeoutMs = timeoutMsFlag(values);
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMs, ctx);
  return showFromApi(
    'status',
    target,
    () => api.getDataset(dataset, { timeline }),
    (s) => [...formatStatus(s), ...(s.timeline ? ['', ...formatTimeline(s.timeline)] : [])],
    values.json === true,
    ctx,
  );
}

export const command: Command = {
  summary: "show a dataset's images, features and model",
  help: HELP,
  run: (argv) => runStatus(argv, processContext()),
};
