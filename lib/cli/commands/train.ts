import { numberFlag, parseCommandArgs } from '../args.ts';
import type { ApiClient, DatasetStatus } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  percent,
  processContext,
  reportRemoteError,
} from '../remote.ts';
import { resolveTarget, TARGET_HELP, TARGET_OPTIONS, targetFlags, timeoutMsFlag } from '../target.ts';
import { imageCount } from './status.ts';

const HELP = `tlearn train D [--wait] [--wait-timeout SECONDS] [--interval SECONDS]

Starts a training of a dataset (POST /datasets/D/trainings). The stack waits for pending
features, fits the head, evaluates it and promotes the new model. Trainings also start by
themselves after uploads; this is for retraining on demand.

options:
  --wait                 wait until a new model is promoted (or the training fails), with progress
  --wait-timeout S       give up waiting after S seconds (default 1800; the training goes on)
  --interval S           seconds between status checks while waiting (default 5)

${TARGET_HELP}

examples:
  tlearn train pets
  tlearn train pets --wait && tlearn model pets

exit codes: 0 started (with --wait: a new model is promoted), 1 refused, failed or still running at
--wait-timeout, 2 usage, 4 the stack could not be reached`;

const FAILED_STATES = new Set(['FAILED', 'TIMED_OUT', 'ABORTED']);

/** A one-line summary of where a training is, for the wait loop. */
function waitLine(s: DatasetStatus, elapsedMs: number): string {
  const f = s.features;
  const total = imageCount(s);
  const parts: string[] = [];
  if (f)
    parts.push(
      `features ${f.ready ?? '?'}/${total ?? '?'} ready, ${f.failed ?? 0} failed, ${f.pending ?? 0} pending`,
    );
  if (s.lastTraining?.status) parts.push(`training ${s.lastTraining.status}`);
  const secs = Math.round(elapsedMs / 1000);
  parts.push(`${Math.floor(secs / 60)}m${String(secs % 60).padStart(2, '0')}s`);
  return `waiting: ${parts.join('; ')}`;
}

/**
 * Polls the dataset until a model other than `before` is current (promoted), the training with
 * `executionArn` ends without one, or `timeoutMs` passes. Returns the exit code.
 */
async function waitForModel(
  api: ApiClient,
  dataset: string,
  before: string | undefined,
  executionArn: string,
  startedAt: string | undefined,
  opts: { timeoutMs: number; intervalMs: number },
  ctx: CliContext,
): Promise<number> {
  const now = ctx.now ?? Date.now;
  const sleep = ctx.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const start = now();
  let last = '';
  for (;;) {
    const { parsed: s } = await api.getDataset(dataset);
    const version = s.model?.version;
    if (version !== undefined && version !== before) {
      const acc = s.model?.accuracy;
      ctx.out(`promoted model ${version}${acc !== undefined ? ` (accuracy ${percent(acc)})` : ''}`);
      return EXIT.OK;
    }
    const t = s.lastTraining;
    // Without an ARN, only a training that started no earlier than ours can be ours.
    const ours =
      t?.executionArn !== undefined
        ? t.executionArn === executionArn
        : t?.startedAt !== undefined && startedAt !== undefined && t.startedAt >= startedAt;
    if (t && ours && t.status !== undefined) {
      if (FAILED_STATES.has(t.status)) {
        ctx.err(
          `tlearn train: training ${t.status}${t.error || t.cause ? `: ${[t.error, t.cause].filter(Boolean).join(': ')}` : ''}`,
        );
        return EXIT.FAILURE;
      }
      if (t.status === 'SUCCEEDED' && t.executionArn === executionArn) {
        ctx.err('tlearn train: the training finished but promoted no new model (a newer one may be current)');
        return EXIT.FAILURE;
      }
    }
    const line = waitLine(s, now() - start);
    if (line.replace(/; \d+m\d+s$/, '') !== last.replace(/; \d+m\d+s$/, '')) ctx.err(line);
    last = line;
    if (now() - start >= opts.timeoutMs) {
      ctx.err(
        `tlearn train: no new model after ${Math.round(opts.timeoutMs / 1000)} s; the training goes on, check with: tlearn status ${dataset}`,
      );
      return EXIT.FAILURE;
    }
    await sleep(opts.intervalMs);
  }
}

/** `tlearn train` with an explicit context (tests). */
export async function runTrain(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    wait: { type: 'boolean' },
    'wait-timeout': { type: 'string' },
    interval: { type: 'string' },
  });
  const dataset = datasetArg(positionals[0]);
  const timeoutMs = timeoutMsFlag(values);
  const waitTimeoutMs =
    numberFlag('wait-timeout', values['wait-timeout'], 1800, { min: 0, max: 86_400 }) * 1000;
  const intervalMs = numberFlag('interval', values.interval, 5, { min: 0.01, max: 600 }) * 1000;
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMs, ctx);
  try {
    // The model before, so --wait can tell a newly promoted one.
    const before = values.wait ? (await api.getDataset(dataset)).parsed.model?.version : undefined;
    const started = await api.startTraining(dataset);
    ctx.out(
      `started training of '${dataset}'${started.startedAt ? ` at ${started.startedAt}` : ''}: ${started.executionArn}`,
    );
    if (!values.wait) {
      ctx.err(`follow with: tlearn status ${dataset}   (or tlearn train ${dataset} --wait)`);
      return EXIT.OK;
    }
    return await waitForModel(
      api,
      dataset,
      before,
      started.executionArn,
      started.startedAt,
      { timeoutMs: waitTimeoutMs, intervalMs },
      ctx,
    );
  } catch (err) {
    return reportRemoteError('train', target, 'api', err, ctx);
  }
}

export const command: Command = {
  summary: 'start a training of a dataset',
  help: HELP,
  run: (argv) => runTrain(argv, processContext()),
};
