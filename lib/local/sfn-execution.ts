/**
 * One execution of lib/local/sfn-runner.ts from start to end: the interpreter runs the state
 * machine with its Task states bound to local handlers, the history is written as it goes, and
 * at the end the record gets its status, is logged and written, and the end is reported.
 */
import type { StateMachine } from 'aws-local-stepfunctions';
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';
import { LOCAL_ACCOUNT_ID } from './lambda-context.ts';
import { createExecutionHistory, type InterpreterExecution, recordEventLogs } from './sfn-history.ts';
import { type LoadedMachine, longTimer } from './sfn-machines.ts';
import { type ExecutionRecord, type RecordWriter, STACK_STOPPED_ERROR } from './sfn-records.ts';
import { createLocalTaskHandlers, type TaskEventSink } from './sfn-tasks.ts';

/** An execution in flight. */
export interface RunningExecution {
  rec: ExecutionRecord;
  abort: () => void;
  /** Settles once the record is closed and written. */
  done: Promise<void>;
  /** Type of the state the execution is in (from its history). */
  stateType?: string;
  /** Aborted by the stack's stop (see the runner's close). */
  interrupted?: boolean;
}

/** What every execution of a runner shares. */
export interface ExecutionDeps {
  region: string;
  functionTimeoutMs?: number;
  log: Log;
  /** The runner's executions in flight: this one is in it from its start until its record is closed. */
  running: Map<string, RunningExecution>;
  records: RecordWriter;
  onExecutionEnded?: (rec: ExecutionRecord) => void;
}

/** Starts the interpreter on `input`, with the execution's context object and local task handlers. */
function startInterpreter(
  rec: ExecutionRecord,
  loaded: LoadedMachine,
  input: unknown,
  deps: ExecutionDeps,
  taskEvent: TaskEventSink,
): InterpreterExecution {
  const localHandlers = createLocalTaskHandlers(loaded.tasks, {
    region: deps.region,
    functionTimeoutMs: deps.functionTimeoutMs,
    taskEvent,
  });
  return loaded.machine.run(input as Parameters<StateMachine['run']>[0], {
    overrides: {
      taskResourceLocalHandlers: localHandlers as never,
      waitTimeOverrides: loaded.spec.waitTimeOverrides,
    },
    context: {
      Execution: {
        Id: rec.executionArn,
        Name: rec.name,
        RoleArn: `arn:aws:iam::${LOCAL_ACCOUNT_ID}:role/local`,
      },
      StateMachine: { Id: rec.stateMachineArn, Name: loaded.spec.name },
    },
  });
}

/** Sets the record's status (and error, when the log did not give one) from the interpreter's result. */
async function settleStatus(
  rec: ExecutionRecord,
  execution: InterpreterExecution,
  timedOut: () => boolean,
): Promise<void> {
  try {
    const result = await execution.result;
    rec.status = 'SUCCEEDED';
    rec.output = JSON.stringify(result ?? null);
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    if (name === 'ExecutionAbortedError') rec.status = timedOut() ? 'TIMED_OUT' : 'ABORTED';
    else if (name === 'ExecutionTimeoutError') rec.status = 'TIMED_OUT';
    else {
      rec.status = 'FAILED';
      if (rec.error === undefined) {
        const inner = err instanceof Error && err.cause instanceof Error ? err.cause : err;
        rec.error = inner instanceof Error ? inner.name : 'Error';
        rec.cause = inner instanceof Error ? inner.message : String(inner);
      }
    }
  }
}

/** Logs the end of an execution: info when it succeeded, a warning otherwise. */
function logEnd(rec: ExecutionRecord, log: Log): void {
  const line = `execution ${rec.name}: ${rec.status}${rec.error ? ` (${rec.error}: ${String(rec.cause).slice(0, 300)})` : ''}`;
  if (rec.status === 'SUCCEEDED') log.info(line);
  else log.warn(line);
}

/**
 * Runs an execution of `loaded` whose record is RUNNING, and adds it to `deps.running` until its
 * record is closed. Its end is reported to `onExecutionEnded` unless the stack's stop interrupted
 * it (it is resumed at the next start).
 */
export function runExecution(
  rec: ExecutionRecord,
  loaded: LoadedMachine,
  input: unknown,
  deps: ExecutionDeps,
): void {
  const { running, log } = deps;
  const history = createExecutionHistory(rec);
  const execution = startInterpreter(rec, loaded, input, deps, history.taskEvent);
  let timedOut = false;
  const timer =
    loaded.longTimeoutMs === undefined
      ? undefined
      : longTimer(loaded.longTimeoutMs, () => {
          timedOut = true;
          execution.abort();
        });

  const done = (async () => {
    const consumed = recordEventLogs(execution, {
      rec,
      history,
      timedOut: () => timedOut,
      onStateEntered: (type) => {
        const r = running.get(rec.executionArn);
        if (r) r.stateType = type;
      },
    }).catch((err: unknown) =>
      log.warn(`execution ${rec.name}: history incomplete`, { error: describeError(err) }),
    );
    await settleStatus(rec, execution, () => timedOut);
    timer?.clear();
    await Promise.race([consumed, new Promise((r) => setTimeout(r, 1000))]);
    rec.stopDate ??= new Date();
    logEnd(rec, log);
    running.delete(rec.executionArn);
    await deps.records.persist(rec);
    if (rec.error !== STACK_STOPPED_ERROR) deps.onExecutionEnded?.(rec);
  })();
  running.set(rec.executionArn, { rec, abort: execution.abort, done });
}
