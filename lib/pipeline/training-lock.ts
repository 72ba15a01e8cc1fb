import type { S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  StartExecutionCommand,
  type StartExecutionCommandOutput,
} from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { TlearnError } from '../errors.ts';
import { TrainingInput, type TrainingTrigger } from '../features/messages.ts';
import { DatasetName, trainingLockKey } from '../storage/keys.ts';
import { getObjectIfExists, isConditionFailed, putObject } from '../storage/s3.ts';
import type { Log } from '../util/log.ts';

/**
 * Single flight per dataset (docs/ARCHITECTURE.md "Orchestration: one training per dataset"): one
 * S3 object per dataset, `locks/{d}/training.json`, written only with conditional writes
 * (`If-None-Match: *` to create, `If-Match: <etag>` to change), says whether a training execution
 * of the dataset runs and which.
 *
 * - A burst of feature messages bumps `generation` (compare-and-swap). The first bump that finds
 *   the lock idle (or its execution ended) takes it and starts one execution; the others only bump.
 * - The execution's name and input are functions of the lock ({@link trainingExecutionName},
 *   {@link trainingInputOf}), so any retried start meets the same execution, never a second one.
 * - The execution's CheckReadiness reads `generation` before it lists; its Finish step compares:
 *   moved → features arrived after the check → it trains again (in a fresh execution once its
 *   retrains are used up), unless a fresh listing of the dataset equals the one the model was
 *   trained from (late messages of features the trainer already listed); else the lock goes idle.
 * - However else the execution ends (stopped, timed out, failed where no Finish ran), Step
 *   Functions' status change event reaches lib/pipeline/execution-ended.ts, which releases the
 *   lock or hands it to a fresh execution. A lock whose execution ended is also taken over by the
 *   next request.
 */

/** The lock object. */
export const TrainingLock = z.object({
  state: z.enum(['running', 'idle']),
  /** The execution holding the lock (the last one, when idle). */
  executionName: z.string().nullable(),
  /** When the holder took the lock (its execution's name and `requestedAt` are made from it). */
  acquiredAt: z.string().datetime(),
  /** Bumped by every batch of feature messages and every request. */
  generation: z.number().int().nonnegative(),
  /** The generation the last finished training had seen at its readiness check. */
  trainedGeneration: z.number().int().nonnegative(),
  trigger: z.string(),
  /** Fresh executions started after ended ones that did not release the lock, in a row (bounded). */
  restarts: z.number().int().nonnegative().default(0),
  updatedAt: z.string().datetime(),
});
export type TrainingLock = z.infer<typeof TrainingLock>;
/** A lock as written (`restarts` may be left out: 0). */
export type TrainingLockInput = z.input<typeof TrainingLock>;

/** The lock and the ETag its next write must match. */
export interface LockRead {
  lock: TrainingLock;
  etag: string;
}

/** Reads a dataset's lock; undefined when the dataset never trained under the lock. */
export async function readTrainingLock(
  s3: S3Client,
  bucket: string,
  dataset: string,
): Promise<LockRead | undefined> {
  const obj = await getObjectIfExists(s3, bucket, trainingLockKey(dataset));
  if (obj === undefined) return undefined;
  const parsed = TrainingLock.safeParse(safeJson(new TextDecoder().decode(obj.body)));
  // An unreadable lock is treated as stale: overwritten (conditionally) by the next request.
  if (!parsed.success) {
    return {
      etag: obj.etag,
      lock: {
        state: 'idle',
        executionName: null,
        acquiredAt: new Date(0).toISOString(),
        generation: 0,
        trainedGeneration: 0,
        trigger: 'auto',
        restarts: 0,
        updatedAt: new Date(0).toISOString(),
      },
    };
  }
  return { lock: parsed.data, etag: obj.etag };
}

/** Writes the lock if it is still `expected` (undefined: only if none exists); false when it changed. */
export async function writeTrainingLock(
  s3: S3Client,
  bucket: string,
  dataset: string,
  lock: TrainingLockInput,
  expected: LockRead | undefined,
): Promise<boolean> {
  try {
    await putObject(s3, bucket, trainingLockKey(dataset), `${JSON.stringify(lock)}\n`, {
      contentType: 'application/json',
      ...(expected ? { ifMatch: expected.etag } : { ifNoneMatch: '*' as const }),
    });
    return true;
  } catch (err) {
    if (isConditionFailed(err)) return false;
    throw err;
  }
}

/** Step Functions execution names: at most 80 characters. */
const MAX_EXECUTION_NAME = 80;

/**
 * The one execution name of a dataset's training, a function of the lock that names it:
 * `{dataset}-{time}{generation}` where time is the lock's `acquiredAt` in milliseconds, base 36,
 * and generation the lock's generation at that moment, base 36, at least three characters. At most
 * 77 characters for the longest (63-character) dataset name below generation 46,656, so the full
 * dataset name is always its prefix (lib/api/executions.ts finds a dataset's executions by it).
 * Deterministic: whoever retries the start of a lock's execution asks for the same name (and the
 * same input, {@link trainingInputOf}), so Step Functions answers with the one execution (or
 * ExecutionAlreadyExists), never a second one.
 *
 * @example trainingExecutionName('pets', new Date('2026-01-01T00:00:00Z'), 7) // 'pets-mjudtcw0007'
 */
export function trainingExecutionName(dataset: string, at: Date, generation: number): string {
  const name = `${dataset}-${at.getTime().toString(36)}${generation.toString(36).padStart(3, '0')}`;
  if (name.length > MAX_EXECUTION_NAME)
    throw new TlearnError('InvalidDatasetName', `dataset name too long: ${dataset}`);
  return name;
}

/** The execution input of a lock's holder: made from the lock alone, so every retried start sends the same. */
export function trainingInputOf(dataset: string, lock: TrainingLock): TrainingInput {
  return TrainingInput.parse({ dataset, trigger: lock.trigger, requestedAt: lock.acquiredAt });
}

/** `arn:…:stateMachine:{sm}` + name → `arn:…:execution:{sm}:{name}` (how Step Functions names executions). */
export function executionArnOf(stateMachineArn: string, executionName: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${executionName}`;
}

/** The Step Functions calls the lock needs (an `SFNClient` fits). */
export interface TrainingSfnClient {
  send(
    command: StartExecutionCommand | DescribeExecutionCommand,
  ): Promise<
    Partial<
      Pick<StartExecutionCommandOutput, 'executionArn' | 'startDate'> &
        Pick<DescribeExecutionCommandOutput, 'status'>
    >
  >;
}

/** What starting a lock's execution needs. */
export interface ExecutionStarterDeps {
  s3: S3Client;
  bucket: string;
  sfn: TrainingSfnClient;
  stateMachineArn: string;
  log: Log;
  now?: () => Date;
}

/** Dependencies of {@link requestTraining}. */
export type TrainingLockDeps = ExecutionStarterDeps;

/**
 * Starts the execution a running lock names, idempotently: the name and the input come from the
 * lock, so a retry after a start whose answer was lost (the SDK gave up, the function crashed)
 * meets the same execution (Step Functions answers the same ARN while it runs with the same
 * input) or `ExecutionAlreadyExists` (it ended, or another writer's start won): both mean the
 * lock's execution exists, which is all a start must ensure.
 */
export async function startLockHolder(
  dataset: string,
  lock: TrainingLock,
  deps: ExecutionStarterDeps,
): Promise<string> {
  const name = lock.executionName;
  if (name === null) throw new TlearnError('InvalidLock', `the lock of '${dataset}' names no execution`);
  const executionArn = executionArnOf(deps.stateMachineArn, name);
  try {
    const out = await deps.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: deps.stateMachineArn,
        name,
        input: JSON.stringify(trainingInputOf(dataset, lock)),
      }),
    );
    return out.executionArn ?? executionArn;
  } catch (err) {
    if (err instanceof Error && err.name === 'ExecutionAlreadyExists') {
      deps.log.info('the lock’s execution was already started', { dataset, executionName: name });
      return executionArn;
    }
    throw err;
  }
}

/** What a request did. */
export type TrainingRequestOutcome =
  /** The lock was free (or stale), or its execution had not started yet: it runs now. */
  | { status: 'started'; executionName: string; executionArn: string; tookOverFrom?: string }
  /** An execution runs; it was told (generation bumped) to train again if it already checked readiness. */
  | { status: 'marked'; executionName: string; executionArn: string }
  /** An execution runs and the caller asked not to mark it (manual training: 409). */
  | { status: 'busy'; executionName: string; executionArn: string };

/** CAS attempts before giving up (a contended lock is rare: one writer per feature batch). */
const MAX_ATTEMPTS = 25;

/** Another writer kept winning the lock's compare-and-swap; retrying later is safe. */
export class LockContentionError extends TlearnError {
  constructor(dataset: string) {
    super('LockContention', `the training lock of '${dataset}' kept changing; retry in a moment`, 503);
  }
}

/**
 * Asks for a training of `dataset`: starts one execution when none runs, otherwise marks the
 * running one dirty (`whenRunning: 'mark'`, the feature messages' way) or reports it
 * (`whenRunning: 'refuse'`, the API's 409). Safe to call concurrently from any number of
 * processes: every change is a conditional write; a lost race re-reads and decides again.
 * A failed StartExecution leaves the lock naming its execution (AWS may have accepted it): the
 * caller's retry finds the lock, and starts that same execution if it does not exist.
 *
 * @example const r = await requestTraining('pets', 'auto', { whenRunning: 'mark' }, deps);
 */
export async function requestTraining(
  dataset: string,
  trigger: TrainingTrigger,
  opts: { whenRunning: 'mark' | 'refuse' },
  deps: TrainingLockDeps,
): Promise<TrainingRequestOutcome> {
  const clock = deps.now ?? (() => new Date());
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(Math.min(1000, 20 * 2 ** Math.min(attempt, 6)) * Math.random());
    const current = await readTrainingLock(deps.s3, deps.bucket, dataset);
    const now = clock();
    const lock = current?.lock;
    let tookOverFrom: string | undefined;
    if (lock?.state === 'running' && lock.executionName !== null) {
      const executionArn = executionArnOf(deps.stateMachineArn, lock.executionName);
      const holder = await holderStatus(executionArn, deps);
      if (holder === 'missing') {
        // Written, but its start failed or has not happened yet: start it (same name, same input).
        await startLockHolder(dataset, lock, deps);
        return { status: 'started', executionName: lock.executionName, executionArn };
      }
      if (holder === 'running') {
        if (opts.whenRunning === 'refuse')
          return { status: 'busy', executionName: lock.executionName, executionArn };
        const marked: TrainingLock = {
          ...lock,
          generation: lock.generation + 1,
          updatedAt: now.toISOString(),
        };
        if (await writeTrainingLock(deps.s3, deps.bucket, dataset, marked, current)) {
          return { status: 'marked', executionName: lock.executionName, executionArn };
        }
        continue;
      }
      tookOverFrom = lock.executionName;
      deps.log.warn('taking over a stale training lock', { dataset, executionName: lock.executionName });
    }
    const generation = (lock?.generation ?? 0) + 1;
    const next: TrainingLock = {
      state: 'running',
      executionName: trainingExecutionName(dataset, now, generation),
      acquiredAt: now.toISOString(),
      generation,
      trainedGeneration: lock?.trainedGeneration ?? 0,
      trigger,
      restarts: 0,
      updatedAt: now.toISOString(),
    };
    if (!(await writeTrainingLock(deps.s3, deps.bucket, dataset, next, current))) continue;
    const executionArn = await startLockHolder(dataset, next, deps);
    return {
      status: 'started',
      executionName: next.executionName ?? '',
      executionArn,
      ...(tookOverFrom ? { tookOverFrom } : {}),
    };
  }
  throw new LockContentionError(dataset);
}

/** `running`, `ended` (any closed status) or `missing` (never started). */
async function holderStatus(
  executionArn: string,
  deps: TrainingLockDeps,
): Promise<'running' | 'ended' | 'missing'> {
  try {
    const out = await deps.sfn.send(new DescribeExecutionCommand({ executionArn }));
    return out.status === 'RUNNING' ? 'running' : 'ended';
  } catch (err) {
    if (err instanceof Error && err.name === 'ExecutionDoesNotExist') return 'missing';
    throw err;
  }
}

/**
 * Hands a dirty lock on to a fresh execution: the lock names a new execution (new name from
 * `now` and the generation) and that execution is started. Used at the retrain limit (no more
 * history in the old execution) and after an execution ended without releasing its lock.
 * Returns the new execution's name, or undefined when the lock changed meanwhile (the caller
 * re-reads).
 */
export async function handOverLock(
  dataset: string,
  current: LockRead,
  change: Partial<Pick<TrainingLock, 'trainedGeneration' | 'restarts'>>,
  deps: ExecutionStarterDeps,
): Promise<string | undefined> {
  const now = (deps.now ?? (() => new Date()))();
  const next: TrainingLock = {
    ...current.lock,
    ...change,
    state: 'running',
    executionName: trainingExecutionName(dataset, now, current.lock.generation),
    acquiredAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  if (!(await writeTrainingLock(deps.s3, deps.bucket, dataset, next, current))) return undefined;
  // A failed start throws; the lock names the new execution, and the next request, the end
  // event of the old execution (lib/pipeline/execution-ended.ts) or a retry starts it.
  await startLockHolder(dataset, next, deps);
  deps.log.info('training handed over to a fresh execution', {
    dataset,
    from: current.lock.executionName,
    executionName: next.executionName,
  });
  return next.executionName ?? undefined;
}

/** Input of the state machine's Finish/Release steps (the finish-training function). */
export const FinishTrainingInput = z.object({
  dataset: DatasetName,
  /** `$$.Execution.Name`: only the holder may change the lock. */
  executionName: z.string().min(1),
  /** The lock generation CheckReadiness saw (absent when the run failed before its check). */
  generation: z.number().int().nonnegative().optional(),
  /** `trained`: model written and promoted (or skipped); `failed`: a step failed. */
  outcome: z.enum(['trained', 'failed']),
  /** `$.training.fingerprint` (Finish only): what the trained model saw of the dataset. */
  fingerprint: z.string().min(1).optional(),
  /** Follow-up trainings this execution already ran. */
  retrains: z.number().int().nonnegative(),
  maxRetrains: z.number().int().nonnegative(),
});
export type FinishTrainingInput = z.infer<typeof FinishTrainingInput>;

/** Result of the Finish/Release steps (`$.finish`): `again` loops the state machine back to Settle. */
export interface FinishTrainingResult {
  again: boolean;
  /**
   * Why: `dirty` (features arrived after the check: round again), `clean` (released), `unchanged`
   * (dirty, but the dataset lists as the trained model saw it: released), `limit` (dirty, but this
   * execution's retrains are used up: a fresh execution, `next`, trains them), `not-holder`.
   */
  reason: 'dirty' | 'clean' | 'unchanged' | 'limit' | 'not-holder';
  generation: number | null;
  /** The fresh execution that took the lock over (`limit`). */
  next?: string;
}

/** Dependencies of {@link finishTraining}. */
export interface FinishTrainingDeps extends ExecutionStarterDeps {
  /**
   * The dataset's `scanFingerprint` now (lib/pipeline/readiness.ts, which imports this module:
   * passed in). Without it, every dirty lock trains again.
   */
  datasetFingerprint?: (dataset: string) => Promise<string>;
}

/**
 * The state machine's last step (and the failure paths' release): trains again when the lock's
 * generation moved since the execution's readiness check (features or deletes arrived after it):
 * in this execution while its retrains last, else in a fresh execution (its history stays
 * bounded); a lock that did not move goes idle. A dirty lock is never set idle, with one
 * exception: after a training, when the dataset, listed after the lock was read, has the
 * fingerprint of the listing the trainer used (the messages were late news of features it
 * already had, or duplicates), the lock goes idle at its current generation. Any change the
 * listing missed is announced by a message sent after it, so after the lock was read: that
 * message's bump fails the idle write (re-read, listed again) or finds the lock idle and starts a
 * training. Only the holder changes the lock: an execution whose lock was taken over (it was
 * presumed stale) leaves it alone.
 */
export async function finishTraining(
  input: FinishTrainingInput,
  deps: FinishTrainingDeps,
): Promise<FinishTrainingResult> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await readTrainingLock(deps.s3, deps.bucket, input.dataset);
    if (current?.lock.state !== 'running' || current.lock.executionName !== input.executionName) {
      deps.log.warn('finishing a training that does not hold the lock', { dataset: input.dataset });
      return { again: false, reason: 'not-holder', generation: current?.lock.generation ?? null };
    }
    const lock = current.lock;
    const now = (deps.now ?? (() => new Date()))().toISOString();
    // A run that failed before its readiness check has nothing to compare: it does not loop.
    const checked = input.generation ?? lock.trainedGeneration;
    const trainedGeneration = input.outcome === 'trained' ? checked : lock.trainedGeneration;
    const dirty = input.generation !== undefined && lock.generation > input.generation;
    if (
      dirty &&
      input.outcome === 'trained' &&
      input.fingerprint !== undefined &&
      deps.datasetFingerprint !== undefined &&
      (await deps.datasetFingerprint(input.dataset)) === input.fingerprint
    ) {
      const idle: TrainingLock = {
        ...lock,
        state: 'idle',
        trainedGeneration: lock.generation,
        restarts: 0,
        updatedAt: now,
      };
      if (await writeTrainingLock(deps.s3, deps.bucket, input.dataset, idle, current)) {
        deps.log.info('late feature messages brought nothing the model lacks: no retrain', {
          dataset: input.dataset,
          checked: input.generation,
          generation: lock.generation,
        });
        return { again: false, reason: 'unchanged', generation: lock.generation };
      }
    } else if (dirty && input.retrains >= input.maxRetrains) {
      const next = await handOverLock(input.dataset, current, { trainedGeneration, restarts: 0 }, deps);
      if (next !== undefined) return { again: false, reason: 'limit', generation: lock.generation, next };
    } else {
      const written: TrainingLock = dirty
        ? { ...lock, trainedGeneration, updatedAt: now }
        : { ...lock, state: 'idle', trainedGeneration, restarts: 0, updatedAt: now };
      if (await writeTrainingLock(deps.s3, deps.bucket, input.dataset, written, current)) {
        return { again: dirty, reason: dirty ? 'dirty' : 'clean', generation: lock.generation };
      }
    }
    await sleep(20 * Math.random() * (attempt + 1));
  }
  throw new LockContentionError(input.dataset);
}

/** The generation CheckReadiness records (0 when the dataset has no lock yet). */
export async function lockGeneration(s3: S3Client, bucket: string, dataset: string): Promise<number> {
  return (await readTrainingLock(s3, bucket, dataset))?.lock.generation ?? 0;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
