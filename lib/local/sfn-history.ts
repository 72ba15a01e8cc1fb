/**
 * The AWS-shaped history of an execution run by lib/local/sfn-runner.ts (TaskStateEntered,
 * LambdaFunctionSucceeded, ExecutionFailed …), built from two sources: the interpreter's event log
 * and the task events of lib/local/sfn-tasks.ts.
 */
import type { StateMachine } from 'aws-local-stepfunctions';
import { describeError } from '../errors.ts';
import { LOCAL_ACCOUNT_ID } from './lambda-context.ts';
import type { ExecutionRecord } from './sfn-records.ts';
import type { TaskEventSink } from './sfn-tasks.ts';

/** A running execution of the interpreter. */
export type InterpreterExecution = ReturnType<StateMachine['run']>;
/** One event of the interpreter's log (the package does not export the type). */
type InterpreterEvent = InterpreterExecution['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

/** The history of one execution, as it is written. */
export interface ExecutionHistory {
  /** Appends an event (timestamp: now, unless given). */
  push(type: string, details?: Record<string, unknown>, at?: Date): void;
  /** A task event: appended once its state's Entered event is (see {@link createExecutionHistory}). */
  taskEvent: TaskEventSink;
  /** After a state's Entered event: the state is open, its held task events follow. */
  open(stateName: string): void;
  /** Before a state's Exited event: its held task events go first, the state closes. */
  close(stateName: string): void;
}

/**
 * A history appending to `rec.events`. Task events are raised by our handler wrapper, in real
 * time; the interpreter's state events arrive through an async generator, a little later. Task
 * events wait for their state's Entered event so the history reads in order.
 */
export function createExecutionHistory(rec: ExecutionRecord): ExecutionHistory {
  let nextId = 1;
  const push = (type: string, details: Record<string, unknown> = {}, at = new Date()): void => {
    const id = nextId++;
    rec.events.push({ id, previousEventId: id - 1, timestamp: at, type, ...details });
  };
  const openStates = new Set<string>();
  const queued = new Map<string, { type: string; details: Record<string, unknown>; at: Date }[]>();
  const flush = (stateName: string): void => {
    for (const e of queued.get(stateName) ?? []) push(e.type, e.details, e.at);
    queued.delete(stateName);
  };
  return {
    push,
    taskEvent(stateName, type, details) {
      if (openStates.has(stateName)) push(type, details);
      else queued.set(stateName, [...(queued.get(stateName) ?? []), { type, details, at: new Date() }]);
    },
    open(stateName) {
      openStates.add(stateName);
      flush(stateName);
    },
    close(stateName) {
      flush(stateName);
      openStates.delete(stateName);
    },
  };
}

/** What {@link recordEventLogs} needs besides the history. */
export interface EventLogContext {
  rec: ExecutionRecord;
  history: ExecutionHistory;
  /** Whether the runner aborted the execution for its long timeout (lib/local/sfn-machines.ts). */
  timedOut(): boolean;
  /** The execution entered a state of this type. */
  onStateEntered(stateType: string): void;
}

/** Adds one event of the interpreter's log to the history (and its error to the record). */
function recordEvent(ev: InterpreterEvent, ctx: EventLogContext): void {
  const { rec, history } = ctx;
  const at = new Date(ev.timestamp);
  switch (ev.type) {
    case 'ExecutionStarted':
      history.push(
        'ExecutionStarted',
        {
          executionStartedEventDetails: {
            input: JSON.stringify(ev.input),
            roleArn: `arn:aws:iam::${LOCAL_ACCOUNT_ID}:role/local`,
          },
        },
        at,
      );
      break;
    case 'StateEntered':
      history.push(
        `${ev.state.type}StateEntered`,
        { stateEnteredEventDetails: { name: ev.state.name, input: JSON.stringify(ev.state.input) } },
        at,
      );
      history.open(ev.state.name);
      ctx.onStateEntered(ev.state.type);
      break;
    case 'StateExited':
      history.close(ev.state.name);
      history.push(
        `${ev.state.type}StateExited`,
        { stateExitedEventDetails: { name: ev.state.name, output: JSON.stringify(ev.state.output ?? null) } },
        at,
      );
      break;
    case 'StateFailed':
      history.close(ev.state.name);
      if (ev.Error === 'States.Timeout' && ev.state.type === 'Task') {
        history.push(
          'LambdaFunctionTimedOut',
          { lambdaFunctionTimedOutEventDetails: { error: ev.Error, cause: String(ev.Cause) } },
          at,
        );
      }
      break;
    case 'ExecutionSucceeded':
      history.push(
        'ExecutionSucceeded',
        { executionSucceededEventDetails: { output: JSON.stringify(ev.output) } },
        at,
      );
      break;
    case 'ExecutionFailed':
      history.push(
        'ExecutionFailed',
        { executionFailedEventDetails: { error: ev.Error, cause: String(ev.Cause) } },
        at,
      );
      rec.error = ev.Error;
      rec.cause = typeof ev.Cause === 'string' ? ev.Cause : describeError(ev.Cause);
      break;
    case 'ExecutionAborted':
      if (ctx.timedOut()) history.push('ExecutionTimedOut', { executionTimedOutEventDetails: {} }, at);
      else
        history.push(
          'ExecutionAborted',
          { executionAbortedEventDetails: { error: rec.error, cause: rec.cause } },
          at,
        );
      break;
    case 'ExecutionTimeout':
      history.push('ExecutionTimedOut', { executionTimedOutEventDetails: {} }, at);
      break;
    default:
      break; // retries, catches, map/parallel bookkeeping: not part of our minimal history
  }
}

/** Reads the interpreter's event log to its end into the history. */
export async function recordEventLogs(execution: InterpreterExecution, ctx: EventLogContext): Promise<void> {
  for await (const ev of execution.eventLogs) recordEvent(ev, ctx);
}
