import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  StartExecutionCommand,
  type StartExecutionCommandOutput,
} from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { describeError, TlearnError } from '../errors.ts';
import { TrainingInput, type TrainingTrigger } from '../features/messages.ts';
import { getObjectIfExists, isConditionFailed, putObject } from '../storage/s3.ts';
import type { Log } from '../util/log.ts';

/**
 * Single flight per dataset (DESIGN.md "Training state machine"): one S3 object per dataset,
 * `locks/{d}/training.json`, written only with conditional writes (`If-None-Match: *` to create,
 * `If-Match: <etag>` to change), says whether a training execution of the dataset runs and which.
 *
 * - A burst of feature messages bumps `generation` (compare-and-swap). The first bump that finds
 *   the lock idle (or stale) takes it and starts one execution; the others only bump.
 * - The execution's CheckReadiness reads `generation` before it lists; its Finish step compares:
 *   moved → features arrived after the check → it trains again (bounded); else the lock goes idle.
 * - A lock whose execution is no longer RUNNING (crashed, aborted, timed out, or a Finish that
 *   could not write) is stale and is taken over by the next request; so is one whose execution
 *   never started (StartExecution failed after the lock was written) after a grace period.
 */

/** Prefix of the lock objects (IAM grants are scoped to it). */
export const LOCKS_PREFIX = 'locks/';

/** `locks/{d}/training.json` */
export function trainingLockKey(dataset: string): string {
  return `${LOCKS_PREFIX}${dataset}/training.json`;
}

/** The lock object. */
export const TrainingLock = z.object({
  state: z.enum(['running', 'idle']),
  /** The execution holding the lock (the last one, when idle). */
  executionName: z.string().nullable(),
  /** When the holder took the lock (or last started a follow-up training). */
  acquiredAt: z.string().datetime(),
  /** Bumped by every batch of feature messages and every request. */
  generation: z.number().int().nonnegative(),
  /** The generation the last finished training had seen at its readiness check. */
  trainedGeneration: z.number().int().nonnegative(),
  trigger: z.string(),
  updatedAt: z.string().datetime(),
});
export type TrainingLock = z.infer<typeof TrainingLock>;

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
  lock: TrainingLock,
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
 * The one execution name of a dataset's training: `{dataset}-{time}{random}` where time is the
 * start in milliseconds, base 36, and random three base-36 characters; at most 77 characters for
 * the longest (63-character) dataset name, so the full dataset name is always its prefix
 * (lib/api/executions.ts finds a dataset's executions by it).
 *
 * @example trainingExecutionName('pets', new Date('2026-01-01T00:00:00Z'), 'abc') // 'pets-mjudtcw0abc'
 */
export function trainingExecutionName(dataset: string, at: Date, random = randomSuffix()): string {
  const name = `${dataset}-${at.getTime().toString(36)}${random}`;
  if (name.length > MAX_EXECUTION_NAME)
    throw new TlearnError('InvalidDatasetName', `dataset name too long: ${dataset}`);
  return name;
}

function randomSuffix(): string {
  return [...randomBytes(3)].map((b) => (b % 36).toString(36)).join('');
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

/** Dependencies of {@link requestTraining}. */
export interface TrainingLockDeps {
  s3: S3Client;
  bucket: string;
  sfn: TrainingSfnClient;
  stateMachineArn: string;
  log: Log;
  /** A lock whose execution does not exist is taken over after this many seconds. */
  graceSeconds: number;
  now?: () => Date;
}

/** What a request did. */
export type TrainingRequestOutcome =
  /** The lock was free (or stale): a new execution runs. */
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
      if (!(await isStale(lock, executionArn, now, deps))) {
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
    const executionName = trainingExecutionName(dataset, now);
    const next: TrainingLock = {
      state: 'running',
      executionName,
      acquiredAt: now.toISOString(),
      generation: (lock?.generation ?? 0) + 1,
      trainedGeneration: lock?.trainedGeneration ?? 0,
      trigger,
      updatedAt: now.toISOString(),
    };
    if (!(await writeTrainingLock(deps.s3, deps.bucket, dataset, next, current))) continue;
    const input: TrainingInput = TrainingInput.parse({ dataset, trigger, requestedAt: now.toISOString() });
    try {
      const out = await deps.sfn.send(
        new StartExecutionCommand({
          stateMachineArn: deps.stateMachineArn,
          name: executionName,
          input: JSON.stringify(input),
        }),
      );
      return {
        status: 'started',
        executionName,
        executionArn: out.executionArn ?? executionArnOf(deps.stateMachineArn, executionName),
        ...(tookOverFrom ? { tookOverFrom } : {}),
      };
    } catch (err) {
      // Give the lock back so the retry (or the next message) does not wait for the grace period.
      await releaseIfHeld(dataset, executionName, deps).catch((e: unknown) =>
        deps.log.warn('could not release the lock after a failed StartExecution', {
          error: describeError(e),
        }),
      );
      throw err;
    }
  }
  throw new LockContentionError(dataset);
}

async function releaseIfHeld(dataset: string, executionName: string, deps: TrainingLockDeps): Promise<void> {
  const current = await readTrainingLock(deps.s3, deps.bucket, dataset);
  if (!current || current.lock.executionName !== executionName || current.lock.state !== 'running') return;
  const now = (deps.now ?? (() => new Date()))().toISOString();
  await writeTrainingLock(
    deps.s3,
    deps.bucket,
    dataset,
    { ...current.lock, state: 'idle', updatedAt: now },
    current,
  );
}

async function isStale(
  lock: TrainingLock,
  executionArn: string,
  now: Date,
  deps: TrainingLockDeps,
): Promise<boolean> {
  try {
    const out = await deps.sfn.send(new DescribeExecutionCommand({ executionArn }));
    return out.status !== 'RUNNING';
  } catch (err) {
    if (err instanceof Error && err.name === 'ExecutionDoesNotExist') {
      // Written but not started yet (or StartExecution failed): give the writer its grace period.
      return now.getTime() - Date.parse(lock.acquiredAt) > deps.graceSeconds * 1000;
    }
    throw err;
  }
}

/** Input of the state machine's Finish/Release steps (the finish-training function). */
export const FinishTrainingInput = z.object({
  dataset: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  /** `$$.Execution.Name`: only the holder may change the lock. */
  executionName: z.string().min(1),
  /** The lock generation CheckReadiness saw (absent when the run failed before its check). */
  generation: z.number().int().nonnegative().optional(),
  /** `trained`: model written and promoted (or skipped); `failed`: a step failed. */
  outcome: z.enum(['trained', 'failed']),
  /** Follow-up trainings this execution already ran. */
  retrains: z.number().int().nonnegative(),
  maxRetrains: z.number().int().nonnegative(),
});
export type FinishTrainingInput = z.infer<typeof FinishTrainingInput>;

/** Result of the Finish/Release steps (`$.finish`): `again` loops the state machine back to Settle. */
export interface FinishTrainingResult {
  again: boolean;
  /** Why: `dirty` (features arrived after the check), `clean`, `limit` (retrains used up), `not-holder`. */
  reason: 'dirty' | 'clean' | 'limit' | 'not-holder';
  generation: number | null;
}

/**
 * The state machine's last step (and the failure paths' release): trains again when the lock's
 * generation moved since the execution's readiness check (features or deletes arrived after it),
 * else marks the lock idle. Only the holder changes the lock: an execution whose lock was taken
 * over (it was presumed stale) leaves it alone.
 */
export async function finishTraining(
  input: FinishTrainingInput,
  deps: { s3: S3Client; bucket: string; log: Log; now?: () => Date },
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
    const dirty = input.generation !== undefined && lock.generation > input.generation;
    const again = dirty && input.retrains < input.maxRetrains;
    const next: TrainingLock = again
      ? { ...lock, acquiredAt: now, updatedAt: now }
      : {
          ...lock,
          state: 'idle',
          trainedGeneration: input.outcome === 'trained' ? checked : lock.trainedGeneration,
          updatedAt: now,
        };
    if (await writeTrainingLock(deps.s3, deps.bucket, input.dataset, next, current)) {
      return { again, reason: again ? 'dirty' : dirty ? 'limit' : 'clean', generation: lock.generation };
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
