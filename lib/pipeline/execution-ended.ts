import { z } from 'zod';
import { TrainingInput } from '../features/messages.ts';
import {
  type ExecutionStarterDeps,
  handOverLock,
  LockContentionError,
  readTrainingLock,
  startLockHolder,
  writeTrainingLock,
} from './training-lock.ts';

/**
 * The end of a training execution that did not release its lock (docs/ARCHITECTURE.md
 * "Orchestration: one training per dataset"): stopped from outside, timed out, or failed where no
 * Finish/Release step ran. Step Functions sends an EventBridge "Step Functions Execution Status
 * Change" event for every status change; a rule of the stack (infra/stack.ts) forwards the
 * statuses below of the training state machine to finish-training, and the local Step Functions
 * runner sends the same event to the same handler (lib/local/sfn-events.ts).
 */

/** EventBridge `source` of Step Functions' events. */
export const STEP_FUNCTIONS_EVENT_SOURCE = 'aws.states';
/** EventBridge `detail-type` of an execution's status change. */
export const EXECUTION_STATUS_CHANGE = 'Step Functions Execution Status Change';
/**
 * The ends that may leave the lock held. SUCCEEDED is not among them: the only way to succeed is
 * through Finish, which already released (or handed over) the lock.
 */
export const LOCK_RELEASING_STATUSES = ['FAILED', 'TIMED_OUT', 'ABORTED'] as const;

/** The event as EventBridge delivers it to a Lambda target (the fields this code reads). */
export const ExecutionStatusChangeEvent = z.object({
  source: z.literal(STEP_FUNCTIONS_EVENT_SOURCE),
  'detail-type': z.literal(EXECUTION_STATUS_CHANGE),
  version: z.string().optional(),
  id: z.string().optional(),
  account: z.string().optional(),
  time: z.string().optional(),
  region: z.string().optional(),
  resources: z.array(z.string()).optional(),
  detail: z.object({
    executionArn: z.string().min(1),
    stateMachineArn: z.string().min(1),
    name: z.string().min(1),
    status: z.enum(['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE']),
    /** Epoch milliseconds. */
    startDate: z.number().nullable().optional(),
    stopDate: z.number().nullable().optional(),
    /** The execution's input, JSON text (null when it is over 256 KB; ours is ~100 bytes). */
    input: z.string().nullable().optional(),
    output: z.string().nullable().optional(),
    error: z.string().nullable().optional(),
    cause: z.string().nullable().optional(),
  }),
});
export type ExecutionStatusChangeEvent = z.infer<typeof ExecutionStatusChangeEvent>;

/** What the end of an execution did to its dataset's lock. */
export interface ExecutionEndedResult {
  dataset: string | null;
  /**
   * `released`: the lock went idle (nothing new to train); `restarted`: a fresh execution (`next`)
   * trains what the ended one left; `not-holder`: the lock names another execution (already
   * released or handed over: a duplicate or late delivery), which is made sure to exist;
   * `gave-up`: restarts used up, released with images untrained (the next request trains them);
   * `ignored`: not a training of this kind (no dataset in its input, or a status that needs nothing).
   */
  action: 'released' | 'restarted' | 'not-holder' | 'gave-up' | 'ignored';
  next?: string;
}

/** Dependencies of {@link finishEndedExecution}. */
export interface ExecutionEndedDeps extends ExecutionStarterDeps {
  /** Fresh executions after ended ones, in a row, before a dirty lock is left to the next request. */
  maxRestarts: number;
}

/**
 * Releases the lock of an execution that ended without releasing it, only if the lock still names
 * it: idle when nothing arrived since the last finished training, else a fresh execution trains
 * what is waiting (at most `maxRestarts` in a row, so an execution that always times out cannot
 * loop). Idempotent: EventBridge delivers at least once, and every change is a conditional write
 * of the lock; a repeated delivery finds the lock naming another execution (or idle) and only
 * makes sure that execution exists (a start by name is idempotent).
 */
export async function finishEndedExecution(
  event: ExecutionStatusChangeEvent,
  deps: ExecutionEndedDeps,
): Promise<ExecutionEndedResult> {
  const { detail } = event;
  const input = TrainingInput.safeParse(safeJson(detail.input ?? ''));
  if (!input.success) {
    deps.log.warn('execution ended without a training input; nothing to release', { name: detail.name });
    return { dataset: null, action: 'ignored' };
  }
  const dataset = input.data.dataset;
  if (!(LOCK_RELEASING_STATUSES as readonly string[]).includes(detail.status))
    return { dataset, action: 'ignored' };
  for (let attempt = 0; attempt < 25; attempt++) {
    const current = await readTrainingLock(deps.s3, deps.bucket, dataset);
    if (current === undefined || current.lock.state !== 'running') return { dataset, action: 'not-holder' };
    const lock = current.lock;
    if (lock.executionName !== detail.name) {
      // Handed over already (a repeated delivery, or Finish did it): the holder must exist, so a
      // hand-over whose start failed is completed here.
      await startLockHolder(dataset, lock, deps);
      return { dataset, action: 'not-holder' };
    }
    deps.log.warn('training execution ended holding its lock', {
      dataset,
      executionName: detail.name,
      status: detail.status,
      error: detail.error ?? undefined,
    });
    const dirty = lock.generation > lock.trainedGeneration;
    if (dirty && lock.restarts < deps.maxRestarts) {
      const next = await handOverLock(dataset, current, { restarts: lock.restarts + 1 }, deps);
      if (next !== undefined) return { dataset, action: 'restarted', next };
      continue;
    }
    const now = (deps.now ?? (() => new Date()))().toISOString();
    if (
      await writeTrainingLock(
        deps.s3,
        deps.bucket,
        dataset,
        { ...lock, state: 'idle', updatedAt: now },
        current,
      )
    ) {
      if (dirty)
        deps.log.error(
          'training ended abnormally too often in a row; the next upload or request retries it',
          {
            dataset,
            restarts: lock.restarts,
          },
        );
      return { dataset, action: dirty ? 'gave-up' : 'released' };
    }
  }
  throw new LockContentionError(dataset);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
