import { MIN_SAMPLES_PER_LABEL } from '../../training/train.ts';
import { numberFlag, parseCommandArgs } from '../args.ts';
import { type ApiClient, ApiError, type DatasetStatus } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  processContext,
  RANDOM_WEIGHTS_WARNING,
  reportRemoteError,
} from '../remote.ts';
import { resolveTarget, TARGET_HELP, TARGET_OPTIONS, targetFlags, timeoutMsFlag } from '../target.ts';

const HELP = `tlearn train D [--wait] [--wait-timeout SECONDS] [--interval SECONDS]

Starts a training of a dataset (POST /datasets/D/trainings). The stack waits for pending
features, fits the head, evaluates it and promotes the new model. Trainings also start by
themselves after uploads; this is for retraining on demand.

options:
  --wait                 wait until a new model is promoted, with progress; stops early when the
                         dataset cannot train (fewer than 2 labels with 2 usable images each).
                         When a training of D is already running, follows that one to its end
  --wait-timeout S       give up waiting after S seconds (default 1800; the training goes on)
  --interval S           seconds between status checks while waiting (default 5)

${TARGET_HELP}

examples:
  tlearn train pets
  tlearn train pets --wait && tlearn model pets

exit codes: 0 started (with --wait: a new model is promoted), 1 refused (a training is already
running, without --wait), failed, ended without a new model or still running at --wait-timeout,
2 usage, 4 the stack could not be reached`;

/**
 * How long a version written by a training may stay unpromoted before --wait gives up on it: the
 * promote step runs right after the trainer writes model.json, so a minute is far beyond normal.
 */
export const PROMOTION_GRACE_MS = 60_000;

/**
 * Why no training of this dataset can succeed as it stands, or undefined. Only decided once every
 * feature is settled; the rule is the trainer's (lib/training/train.ts): at least 2 labels with
 * usable images, and at least MIN_SAMPLES_PER_LABEL usable images in each of them.
 */
export function trainingBlocker(s: DatasetStatus): string | undefined {
  if (!s.featuresSettled) return undefined;
  const usable = Object.entries(s.labels).filter(([, c]) => c.ready > 0);
  const need = `training needs at least 2 labels with at least ${MIN_SAMPLES_PER_LABEL} usable images each`;
  if (usable.length === 0)
    return `no image of '${s.dataset}' has a usable feature (${s.images.failed} failed); ${need}`;
  const [only] = usable;
  if (usable.length === 1 && only) return `only label '${only[0]}' has usable images; ${need}`;
  const short = usable.filter(([, c]) => c.ready < MIN_SAMPLES_PER_LABEL);
  if (short.length > 0)
    return `too few usable images for ${short.map(([l, c]) => `'${l}' (${c.ready})`).join(', ')}; ${need}`;
  return undefined;
}

/** Whether the newest training is one that started no earlier than `startedAt` (versions have seconds). */
function isNewTraining(s: DatasetStatus, before: DatasetStatus, startedAt: string): boolean {
  const t = s.lastTraining;
  if (t === null || t.version === before.lastTraining?.version) return false;
  if (t.at === null) return true;
  return Date.parse(t.at) >= Math.floor(Date.parse(startedAt) / 1000) * 1000;
}

/** A one-line summary of where a training is, for the wait loop. */
function waitLine(s: DatasetStatus, newTraining: boolean, elapsedMs: number): string {
  const i = s.images;
  const parts = [`features ${i.ready}/${i.total} ready, ${i.failed} failed, ${i.pending} pending`];
  if (newTraining && s.lastTraining) parts.push(`model ${s.lastTraining.version} written, promoting`);
  else if (s.featuresSettled) parts.push('training');
  const secs = Math.round(elapsedMs / 1000);
  parts.push(`${Math.floor(secs / 60)}m${String(secs % 60).padStart(2, '0')}s`);
  return `waiting: ${parts.join('; ')}`;
}

/**
 * Polls the dataset until a model other than the one current `before` is promoted. Gives up
 * (exit 1) when the counts show no training can succeed, when a version this training wrote stays
 * unpromoted for PROMOTION_GRACE_MS, when the API reports this training's execution as failed
 * (with the state machine's error and cause), or after `timeoutMs`.
 */
async function waitForModel(
  api: ApiClient,
  before: DatasetStatus,
  startedAt: string,
  executionArn: string,
  opts: { timeoutMs: number; intervalMs: number },
  ctx: CliContext,
): Promise<number> {
  const now = ctx.now ?? Date.now;
  const sleep = ctx.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const dataset = before.dataset;
  const start = now();
  let unpromotedSince: number | undefined;
  let last = '';
  for (;;) {
    const { parsed: s } = await api.getDataset(dataset);
    const m = s.model;
    if (m !== null && m.version !== before.model?.version) {
      ctx.out(`promoted model ${m.version} (trained ${m.trainedAt}, classes ${m.classes.join(', ')})`);
      if (m.randomWeights) ctx.err(RANDOM_WEIGHTS_WARNING);
      return EXIT.OK;
    }
    const e = s.lastExecution;
    if (
      e !== null &&
      e.executionArn === executionArn &&
      ['FAILED', 'TIMED_OUT', 'ABORTED'].includes(e.status)
    ) {
      ctx.err(
        `tlearn train: the training ${e.status.toLowerCase()}: ${e.error ?? 'Error'}: ${e.cause ?? '(no cause given)'}`,
      );
      return EXIT.FAILURE;
    }
    // Promotion is a step of the execution: once it succeeded, no new model is coming from it.
    if (e !== null && e.executionArn === executionArn && e.status === 'SUCCEEDED') {
      ctx.err(
        `tlearn train: the training ${e.name} ended without promoting a new model${m ? `; ${m.version} is still current` : ''} (tlearn model ${dataset})`,
      );
      return EXIT.FAILURE;
    }
    const blocker = trainingBlocker(s);
    if (blocker !== undefined) {
      ctx.err(`tlearn train: the training cannot succeed: ${blocker} (tlearn status ${dataset})`);
      return EXIT.FAILURE;
    }
    const newTraining = isNewTraining(s, before, startedAt);
    if (newTraining && s.lastTraining && !s.lastTraining.promoted) {
      unpromotedSince ??= now();
      if (now() - unpromotedSince >= PROMOTION_GRACE_MS) {
        ctx.err(
          `tlearn train: the training wrote model ${s.lastTraining.version} but it was not promoted within ${PROMOTION_GRACE_MS / 1000} s` +
            `${m ? `; ${m.version} is still current` : ''} (see the promote step's logs)`,
        );
        return EXIT.FAILURE;
      }
    }
    const line = waitLine(s, newTraining, now() - start);
    if (line.replace(/; \d+m\d+s$/, '') !== last.replace(/; \d+m\d+s$/, '')) ctx.err(line);
    last = line;
    if (now() - start >= opts.timeoutMs) {
      ctx.err(
        `tlearn train: no new model after ${Math.round(opts.timeoutMs / 1000)} s; the training may still be running (or failed: see the state machine's executions), check with: tlearn status ${dataset}`,
      );
      return EXIT.FAILURE;
    }
    await sleep(opts.intervalMs);
  }
}

/** Starts a training; with `follow`, a 409 TrainingInProgress answers undefined instead of failing. */
async function startOrFollow(
  api: ApiClient,
  dataset: string,
  follow: boolean,
  ctx: CliContext,
): Promise<Awaited<ReturnType<ApiClient['startTraining']>> | undefined> {
  try {
    return await api.startTraining(dataset);
  } catch (err) {
    if (follow && err instanceof ApiError && err.code === 'TrainingInProgress') {
      ctx.err(`a training of '${dataset}' is already running: following it`);
      return undefined;
    }
    throw err;
  }
}

/**
 * `--wait` when a training already runs: follows the dataset's running execution (the newest one,
 * as GET /datasets/{d} reports it) like one this command started.
 */
async function followRunning(
  api: ApiClient,
  dataset: string,
  before: DatasetStatus | undefined,
  opts: { timeoutMs: number; intervalMs: number },
  ctx: CliContext,
): Promise<number> {
  const now = await api.getDataset(dataset);
  const e = now.parsed.lastExecution;
  const running = e !== null && e.status === 'RUNNING' ? e : undefined;
  if (running)
    ctx.out(`following training of '${dataset}' started at ${running.startedAt}: ${running.executionArn}`);
  return waitForModel(
    api,
    before ?? now.parsed,
    running?.startedAt ?? new Date((ctx.now ?? Date.now)()).toISOString(),
    running?.executionArn ?? '',
    opts,
    ctx,
  );
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
    // The state before, so --wait can tell a newly promoted model and a newly written version.
    const before = values.wait ? (await api.getDataset(dataset)).parsed : undefined;
    const started = await startOrFollow(api, dataset, before !== undefined, ctx);
    if (started === undefined)
      return await followRunning(api, dataset, before, { timeoutMs: waitTimeoutMs, intervalMs }, ctx);
    ctx.out(`started training of '${dataset}' at ${started.startedAt}: ${started.executionArn}`);
    if (before === undefined) {
      ctx.err(`follow with: tlearn status ${dataset}   (or tlearn train ${dataset} --wait)`);
      return EXIT.OK;
    }
    return await waitForModel(
      api,
      before,
      started.startedAt,
      started.executionArn,
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
