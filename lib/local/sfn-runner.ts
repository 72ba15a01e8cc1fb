/**
 * Executions of Step Functions state machines on this machine: the definition (as CDK
 * synthesizes it) runs in `aws-local-stepfunctions`, with every Task state bound to an in-process
 * Lambda handler, and each execution keeps an AWS-shaped history (TaskStateEntered,
 * LambdaFunctionSucceeded, ExecutionFailed …). `sfn-server.ts` puts the Step Functions API in
 * front of it. Node 20 needs `lib/util/polyfills.ts` loaded before this module runs executions.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import { ConfigError, describeError, TlearnError } from '../errors.ts';
import type { Log } from '../util/log.ts';
import { createLambdaContext, type LambdaHandler, LOCAL_ACCOUNT_ID } from './lambda-context.ts';

/** The Resource of a Task that calls Lambda through the optimized integration. */
const LAMBDA_INVOKE = /^arn:aws[a-z-]*:states:::lambda:invoke$/;

/** A state machine the runner can execute. */
export interface StateMachineSpec {
  /** Name in the ARN, e.g. `tlearn-train`. */
  name: string;
  /** Amazon States Language definition (JSONPath). */
  definition: Record<string, unknown>;
  /**
   * Handlers for the Task states, by the Lambda ARN the ASL names: the `Resource`, or
   * `Parameters.FunctionName` for `arn:aws:states:::lambda:invoke` tasks.
   */
  taskHandlers: Record<string, LambdaHandler>;
  /** Wait state durations to use instead of the definition's, ms, by state name. */
  waitTimeOverrides?: Record<string, number>;
}

/** Execution status, as the Step Functions API spells it. */
export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** One event of an execution's history (the API's HistoryEvent, timestamps as Dates). */
export interface HistoryEvent {
  id: number;
  previousEventId: number;
  timestamp: Date;
  type: string;
  [details: string]: unknown;
}

/** An execution, running or closed. */
export interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  /** JSON text. */
  input: string;
  /** JSON text, when SUCCEEDED. */
  output?: string;
  error?: string;
  cause?: string;
  events: HistoryEvent[];
  /** Name of the execution that took over after this one was interrupted by a stop. */
  resumedAs?: string;
}

/** Error of an execution aborted because the local stack stopped (resumed at the next start). */
export const STACK_STOPPED_ERROR = 'Local.StackStopped';

/** Errors the Step Functions API returns (`code` is the API's error type). */
export class SfnApiError extends TlearnError {}

/** Options of {@link createSfnRunner}. */
export interface SfnRunnerOptions {
  region: string;
  stateMachines: readonly StateMachineSpec[];
  /** Closed executions are written to `{dataDir}/sfn/executions/` and read back at start. */
  dataDir?: string;
  /** Lambda timeout for the handlers' context, ms. @default 900000 */
  functionTimeoutMs?: number;
  /**
   * Called once when an execution ends (any status), after its record is written: where Step
   * Functions would send its status change event (lib/local/sfn-events.ts). Not called for
   * executions the local stack's own stop interrupted (they are resumed at the next start).
   */
  onExecutionEnded?: (rec: ExecutionRecord) => void;
  log: Log;
}

/** Runs and remembers executions. */
export interface SfnRunner {
  /** ARN of each state machine, by name. */
  readonly stateMachineArns: Readonly<Record<string, string>>;
  describeStateMachine(arn: string): { spec: StateMachineSpec; arn: string; creationDate: Date };
  startExecution(req: { stateMachineArn: string; name?: string; input?: string }): {
    executionArn: string;
    startDate: Date;
  };
  getExecution(executionArn: string): ExecutionRecord;
  /** Executions of a state machine, newest first. */
  listExecutions(stateMachineArn: string): ExecutionRecord[];
  stopExecution(executionArn: string, error?: string, cause?: string): { stopDate: Date };
  /** Resolves when no execution is running. */
  idle(): Promise<void>;
  /**
   * Starts again, under a new name and with the same input, every execution an earlier stop
   * interrupted (recorded under the data dir); returns the new executions' names.
   */
  resumeInterrupted(): string[];
  /**
   * Stops: executions sitting in a Wait state are aborted at once (they are resumed at the next
   * start), the others get up to `graceMs` to finish their task before they are aborted too.
   * Every record is written before it resolves.
   */
  close(graceMs: number): Promise<void>;
}

/** Execution names: 1-80 chars, none of whitespace, brackets, wildcards, control chars (API rules). */
const INVALID_NAME_CHARS = /[\s<>{}[\]?*"#%\\^|~`$&,;:/]/;
const isInvalidName = (name: string): boolean =>
  name.length < 1 ||
  name.length > 80 ||
  INVALID_NAME_CHARS.test(name) ||
  [...name].some((ch) => {
    const c = ch.codePointAt(0) ?? 0;
    return c < 0x20 || (c >= 0x7f && c <= 0x9f);
  });

interface TaskBinding {
  functionName: string;
  handler: LambdaHandler;
  invokeIntegration: boolean;
}

/** Finds every Task state (nested branches and iterators too) and binds it to its handler. */
function bindTasks(spec: StateMachineSpec): Map<string, TaskBinding> {
  const bindings = new Map<string, TaskBinding>();
  const unbound: string[] = [];
  const visit = (states: unknown): void => {
    if (typeof states !== 'object' || states === null) return;
    for (const [stateName, raw] of Object.entries(states as Record<string, unknown>)) {
      const state = raw as Record<string, unknown>;
      if (state.Type === 'Task') {
        const resource = String(state.Resource ?? '');
        const invokeIntegration = LAMBDA_INVOKE.test(resource);
        const params = (state.Parameters ?? {}) as Record<string, unknown>;
        const arn = invokeIntegration ? String(params.FunctionName ?? '') : resource;
        const handler = spec.taskHandlers[arn];
        if (!handler) unbound.push(`${stateName} (${arn || resource})`);
        else
          bindings.set(stateName, { functionName: arn.split(':').pop() ?? arn, handler, invokeIntegration });
      }
      for (const branch of (state.Branches as { States?: unknown }[] | undefined) ?? []) visit(branch.States);
      visit((state.Iterator as { States?: unknown } | undefined)?.States);
      visit((state.ItemProcessor as { States?: unknown } | undefined)?.States);
    }
  };
  visit(spec.definition.States);
  if (unbound.length > 0) {
    // Without a local handler the interpreter would call the real AWS Lambda: refuse instead.
    throw new ConfigError(
      `state machine '${spec.name}': no local handler for Task state(s) ${unbound.join(', ')}; ` +
        `bound resources: ${Object.keys(spec.taskHandlers).join(', ') || 'none'}`,
    );
  }
  return bindings;
}

/** The error a Lambda invocation reports to Step Functions: Error = errorType, Cause = JSON. */
class LambdaFunctionError extends Error {
  constructor(errorType: string, cause: string) {
    super(cause);
    this.name = errorType;
  }
}

function lambdaErrorOf(err: unknown): LambdaFunctionError {
  const errorType = err instanceof Error ? err.name : 'Error';
  const errorMessage = err instanceof Error ? err.message : String(err);
  const trace = err instanceof Error && err.stack ? err.stack.split('\n') : [];
  return new LambdaFunctionError(errorType, JSON.stringify({ errorType, errorMessage, trace }));
}

/** Record as written to disk (dates as ISO text). */
type StoredRecord = Omit<ExecutionRecord, 'startDate' | 'stopDate' | 'events'> & {
  startDate: string;
  stopDate?: string;
  events: (Omit<HistoryEvent, 'timestamp'> & { timestamp: string })[];
};

function toStored(r: ExecutionRecord): StoredRecord {
  return {
    ...r,
    startDate: r.startDate.toISOString(),
    stopDate: r.stopDate?.toISOString(),
    events: r.events.map((e) => ({ ...e, timestamp: e.timestamp.toISOString() })),
  };
}

function fromStored(s: StoredRecord): ExecutionRecord {
  return {
    ...s,
    startDate: new Date(s.startDate),
    stopDate: s.stopDate === undefined ? undefined : new Date(s.stopDate),
    events: s.events.map((e) => ({ ...e, timestamp: new Date(e.timestamp) }) as HistoryEvent),
  };
}

/** Node timers hold at most 2^31 - 1 ms (24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The interpreter sets one Node timer for a definition's TimeoutSeconds, which fires at once past
 * 24.8 days; the training state machine's worst case is longer locally (many polling rounds, see
 * infra/constructs/training-state-machine.ts). Such a timeout is taken out of the definition the
 * interpreter sees and enforced by the runner with {@link longTimer}: the execution ends TIMED_OUT
 * at the same moment either way.
 */
function splitLongTimeout(definition: Record<string, unknown>): {
  definition: Record<string, unknown>;
  longTimeoutMs?: number;
} {
  const seconds = definition.TimeoutSeconds;
  if (typeof seconds !== 'number' || seconds * 1000 <= MAX_TIMER_MS) return { definition };
  const { TimeoutSeconds: _, ...rest } = definition;
  return { definition: rest, longTimeoutMs: seconds * 1000 };
}

/** Calls `fire` after `ms`, however long, in steps a Node timer can hold; does not keep the process alive. */
function longTimer(ms: number, fire: () => void): { clear(): void } {
  let handle: NodeJS.Timeout | undefined;
  const arm = (left: number): void => {
    handle = setTimeout(
      () => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fire()),
      Math.min(left, MAX_TIMER_MS),
    );
    handle.unref();
  };
  arm(ms);
  return { clear: () => clearTimeout(handle) };
}

/**
 * Creates the runner and loads executions recorded by earlier runs (names stay unique across
 * restarts, as in AWS). Throws ConfigError when a Task state has no local handler or the
 * definition does not validate.
 */
export async function createSfnRunner(opts: SfnRunnerOptions): Promise<SfnRunner> {
  const { region, log } = opts;
  const machines = new Map<
    string,
    {
      spec: StateMachineSpec;
      machine: StateMachine;
      tasks: Map<string, TaskBinding>;
      creationDate: Date;
      /** TimeoutSeconds beyond one Node timer, enforced by the runner (see {@link splitLongTimeout}). */
      longTimeoutMs?: number;
    }
  >();
  const arns: Record<string, string> = {};
  for (const spec of opts.stateMachines) {
    const arn = `arn:aws:states:${region}:${LOCAL_ACCOUNT_ID}:stateMachine:${spec.name}`;
    const tasks = bindTasks(spec);
    let machine: StateMachine;
    const { definition, longTimeoutMs } = splitLongTimeout(spec.definition);
    try {
      machine = new StateMachine(definition as unknown as ConstructorParameters<typeof StateMachine>[0], {
        validationOptions: { checkArn: false },
      });
    } catch (err) {
      throw new ConfigError(`state machine '${spec.name}' has an invalid definition: ${describeError(err)}`, {
        cause: err,
      });
    }
    machines.set(arn, { spec, machine, tasks, creationDate: new Date(), longTimeoutMs });
    arns[spec.name] = arn;
  }

  const executions = new Map<string, ExecutionRecord>();
  interface Running {
    rec: ExecutionRecord;
    abort: () => void;
    done: Promise<void>;
    /** Type of the state the execution is in (from its history). */
    stateType?: string;
    interrupted?: boolean;
  }
  const running = new Map<string, Running>();
  const recordDir = opts.dataDir === undefined ? undefined : join(opts.dataDir, 'sfn', 'executions');
  const tmpDir = opts.dataDir === undefined ? undefined : join(opts.dataDir, 'tmp', 'sfn');

  if (recordDir !== undefined && tmpDir !== undefined) {
    await mkdir(recordDir, { recursive: true });
    await mkdir(tmpDir, { recursive: true });
    for (const file of await readdir(recordDir)) {
      if (!file.endsWith('.json')) continue;
      try {
        const rec = fromStored(JSON.parse(await readFile(join(recordDir, file), 'utf8')) as StoredRecord);
        if (rec.status === 'RUNNING') {
          // The process that ran it is gone (killed): it counts as interrupted.
          rec.status = 'ABORTED';
          rec.error = STACK_STOPPED_ERROR;
          rec.cause = 'the process running the local stack ended during this execution';
        }
        executions.set(rec.executionArn, rec);
      } catch (err) {
        log.warn(`ignoring unreadable execution record ${file}`, { error: describeError(err) });
      }
    }
  }

  const writes = new Set<Promise<void>>();
  /** The last write of each execution: writes of one record land in order (RUNNING never after its end). */
  const lastWrite = new Map<string, Promise<void>>();
  const persist = (rec: ExecutionRecord): Promise<void> => {
    const previous = lastWrite.get(rec.executionArn) ?? Promise.resolve();
    const p = previous
      .then(() => writeRecord(rec))
      .finally(() => {
        writes.delete(p);
        if (lastWrite.get(rec.executionArn) === p) lastWrite.delete(rec.executionArn);
      });
    writes.add(p);
    lastWrite.set(rec.executionArn, p);
    return p;
  };
  const writeRecord = async (rec: ExecutionRecord): Promise<void> => {
    if (recordDir === undefined || tmpDir === undefined) return;
    const file = `${encodeURIComponent(rec.executionArn.split(':').slice(-2).join('.'))}.json`;
    const tmp = join(tmpDir, randomUUID());
    try {
      await writeFile(tmp, `${JSON.stringify(toStored(rec), null, 2)}\n`);
      await rename(tmp, join(recordDir, file));
    } catch (err) {
      log.warn(`could not record execution ${rec.name}`, { error: describeError(err) });
    }
  };

  const machineOf = (arn: string) => {
    const m = machines.get(arn);
    if (!m) throw new SfnApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`, 400);
    return m;
  };

  const run = (rec: ExecutionRecord, input: unknown): void => {
    const { spec, machine, tasks, longTimeoutMs } = machineOf(rec.stateMachineArn);
    const setStateType = (type: string): void => {
      const r = running.get(rec.executionArn);
      if (r) r.stateType = type;
    };
    let nextId = 1;
    const push = (type: string, details: Record<string, unknown> = {}, at = new Date()): void => {
      const id = nextId++;
      rec.events.push({ id, previousEventId: id - 1, timestamp: at, type, ...details });
    };
    // Task events are raised by our handler wrapper, in real time; the interpreter's state events
    // arrive through an async generator, a little later. Task events wait for their state's
    // Entered event so the history reads in order.
    const openStates = new Set<string>();
    const queued = new Map<string, { type: string; details: Record<string, unknown>; at: Date }[]>();
    const taskEvent = (stateName: string, type: string, details: Record<string, unknown>): void => {
      if (openStates.has(stateName)) push(type, details);
      else queued.set(stateName, [...(queued.get(stateName) ?? []), { type, details, at: new Date() }]);
    };
    const flush = (stateName: string): void => {
      for (const e of queued.get(stateName) ?? []) push(e.type, e.details, e.at);
      queued.delete(stateName);
    };

    const localHandlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [stateName, binding] of tasks) {
      localHandlers[stateName] = async (taskInput: unknown) => {
        const resource = binding.functionName;
        const prefix = binding.invokeIntegration ? 'Task' : 'LambdaFunction';
        const payload = binding.invokeIntegration
          ? (taskInput as { Payload?: unknown } | null)?.Payload
          : taskInput;
        const input = JSON.stringify(payload ?? null);
        taskEvent(
          stateName,
          `${prefix}Scheduled`,
          binding.invokeIntegration
            ? {
                taskScheduledEventDetails: {
                  resourceType: 'lambda',
                  resource: 'invoke',
                  region,
                  parameters: input,
                },
              }
            : { lambdaFunctionScheduledEventDetails: { resource, input } },
        );
        taskEvent(stateName, `${prefix}Started`, {});
        const context = createLambdaContext(binding.functionName, {
          region,
          timeoutMs: opts.functionTimeoutMs,
        });
        let out: unknown;
        try {
          out = (await binding.handler(payload, context)) ?? null;
        } catch (err) {
          const e = lambdaErrorOf(err);
          taskEvent(
            stateName,
            `${prefix}Failed`,
            binding.invokeIntegration
              ? {
                  taskFailedEventDetails: {
                    resourceType: 'lambda',
                    resource: 'invoke',
                    error: e.name,
                    cause: e.message,
                  },
                }
              : { lambdaFunctionFailedEventDetails: { error: e.name, cause: e.message } },
          );
          throw e;
        }
        const output = JSON.stringify(out);
        taskEvent(
          stateName,
          `${prefix}Succeeded`,
          binding.invokeIntegration
            ? { taskSucceededEventDetails: { resourceType: 'lambda', resource: 'invoke', output } }
            : { lambdaFunctionSucceededEventDetails: { output } },
        );
        // The optimized integration wraps the function's result like the Invoke API does.
        return binding.invokeIntegration
          ? { ExecutedVersion: '$LATEST', Payload: out, StatusCode: 200 }
          : out;
      };
    }

    const execution = machine.run(input as Parameters<StateMachine['run']>[0], {
      overrides: {
        taskResourceLocalHandlers: localHandlers as never,
        waitTimeOverrides: spec.waitTimeOverrides,
      },
      context: {
        Execution: {
          Id: rec.executionArn,
          Name: rec.name,
          RoleArn: `arn:aws:iam::${LOCAL_ACCOUNT_ID}:role/local`,
        },
        StateMachine: { Id: rec.stateMachineArn, Name: spec.name },
      },
    });

    let timedOut = false;
    const timer =
      longTimeoutMs === undefined
        ? undefined
        : longTimer(longTimeoutMs, () => {
            timedOut = true;
            execution.abort();
          });

    const consume = async (): Promise<void> => {
      for await (const ev of execution.eventLogs) {
        const at = new Date(ev.timestamp);
        switch (ev.type) {
          case 'ExecutionStarted':
            push(
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
            push(
              `${ev.state.type}StateEntered`,
              { stateEnteredEventDetails: { name: ev.state.name, input: JSON.stringify(ev.state.input) } },
              at,
            );
            openStates.add(ev.state.name);
            flush(ev.state.name);
            setStateType(ev.state.type);
            break;
          case 'StateExited':
            flush(ev.state.name);
            openStates.delete(ev.state.name);
            push(
              `${ev.state.type}StateExited`,
              {
                stateExitedEventDetails: {
                  name: ev.state.name,
                  output: JSON.stringify(ev.state.output ?? null),
                },
              },
              at,
            );
            break;
          case 'StateFailed':
            flush(ev.state.name);
            openStates.delete(ev.state.name);
            if (ev.Error === 'States.Timeout' && ev.state.type === 'Task') {
              push(
                'LambdaFunctionTimedOut',
                { lambdaFunctionTimedOutEventDetails: { error: ev.Error, cause: String(ev.Cause) } },
                at,
              );
            }
            break;
          case 'ExecutionSucceeded':
            push(
              'ExecutionSucceeded',
              { executionSucceededEventDetails: { output: JSON.stringify(ev.output) } },
              at,
            );
            break;
          case 'ExecutionFailed':
            push(
              'ExecutionFailed',
              { executionFailedEventDetails: { error: ev.Error, cause: String(ev.Cause) } },
              at,
            );
            rec.error = ev.Error;
            rec.cause = typeof ev.Cause === 'string' ? ev.Cause : describeError(ev.Cause);
            break;
          case 'ExecutionAborted':
            if (timedOut) push('ExecutionTimedOut', { executionTimedOutEventDetails: {} }, at);
            else
              push(
                'ExecutionAborted',
                { executionAbortedEventDetails: { error: rec.error, cause: rec.cause } },
                at,
              );
            break;
          case 'ExecutionTimeout':
            push('ExecutionTimedOut', { executionTimedOutEventDetails: {} }, at);
            break;
          default:
            break; // retries, catches, map/parallel bookkeeping: not part of our minimal history
        }
      }
    };

    const done = (async () => {
      const consumed = consume().catch((err: unknown) =>
        log.warn(`execution ${rec.name}: history incomplete`, { error: describeError(err) }),
      );
      try {
        const result = await execution.result;
        rec.status = 'SUCCEEDED';
        rec.output = JSON.stringify(result ?? null);
      } catch (err) {
        const name = err instanceof Error ? err.name : '';
        if (name === 'ExecutionAbortedError') rec.status = timedOut ? 'TIMED_OUT' : 'ABORTED';
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
      timer?.clear();
      await Promise.race([consumed, new Promise((r) => setTimeout(r, 1000))]);
      rec.stopDate ??= new Date();
      const line = `execution ${rec.name}: ${rec.status}${rec.error ? ` (${rec.error}: ${String(rec.cause).slice(0, 300)})` : ''}`;
      if (rec.status === 'SUCCEEDED') log.info(line);
      else log.warn(line);
      running.delete(rec.executionArn);
      await persist(rec);
      if (rec.error !== STACK_STOPPED_ERROR) opts.onExecutionEnded?.(rec);
    })();
    running.set(rec.executionArn, { rec, abort: execution.abort, done });
  };

  const startExecution: SfnRunner['startExecution'] = (req) => {
    const { spec } = machineOf(req.stateMachineArn);
    const name = req.name ?? randomUUID();
    if (isInvalidName(name)) {
      throw new SfnApiError('InvalidName', `Invalid Name: '${name}'`, 400);
    }
    const inputText = req.input ?? '{}';
    if (Buffer.byteLength(inputText, 'utf8') > 256 * 1024) {
      throw new SfnApiError('InvalidExecutionInput', 'Execution input is larger than 256 KB', 400);
    }
    let input: unknown;
    try {
      input = JSON.parse(inputText);
    } catch {
      throw new SfnApiError(
        'InvalidExecutionInput',
        `Invalid State Machine Execution Input: '${inputText.slice(0, 100)}'`,
        400,
      );
    }
    const executionArn = `arn:aws:states:${region}:${LOCAL_ACCOUNT_ID}:execution:${spec.name}:${name}`;
    const existing = executions.get(executionArn);
    if (existing) {
      // AWS: same name and input while running is idempotent; otherwise the name is taken.
      if (existing.status === 'RUNNING' && existing.input === inputText) {
        return { executionArn, startDate: existing.startDate };
      }
      throw new SfnApiError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`, 400);
    }
    const rec: ExecutionRecord = {
      executionArn,
      stateMachineArn: req.stateMachineArn,
      name,
      status: 'RUNNING',
      startDate: new Date(),
      input: inputText,
      events: [],
    };
    executions.set(executionArn, rec);
    log.info(`execution ${name} started`);
    run(rec, input);
    // Recorded while it runs too: after a crash the next start loads it as ABORTED, so
    // DescribeExecution tells the lock its holder is gone (lib/local/recover.ts).
    void persist(rec);
    return { executionArn, startDate: rec.startDate };
  };

  const getExecution = (executionArn: string): ExecutionRecord => {
    const rec = executions.get(executionArn);
    if (!rec)
      throw new SfnApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`, 400);
    return rec;
  };

  return {
    stateMachineArns: arns,
    describeStateMachine(arn) {
      const m = machineOf(arn);
      return { spec: m.spec, arn, creationDate: m.creationDate };
    },
    startExecution,
    getExecution,
    listExecutions(stateMachineArn) {
      machineOf(stateMachineArn);
      return [...executions.values()]
        .filter((e) => e.stateMachineArn === stateMachineArn)
        .sort((a, b) => b.startDate.getTime() - a.startDate.getTime());
    },
    stopExecution(executionArn, error, cause) {
      const rec = getExecution(executionArn);
      const r = running.get(executionArn);
      if (r) {
        rec.error = error;
        rec.cause = cause;
        rec.stopDate = new Date();
        r.abort();
      }
      return { stopDate: rec.stopDate ?? new Date() };
    },
    async idle() {
      while (running.size > 0) await Promise.all([...running.values()].map((r) => r.done));
    },
    resumeInterrupted() {
      const started: string[] = [];
      for (const rec of [...executions.values()]) {
        if (rec.status !== 'ABORTED' || rec.error !== STACK_STOPPED_ERROR || rec.resumedAs !== undefined)
          continue;
        const name = `${rec.name.slice(0, 64)}-r${Date.now().toString(36)}${started.length}`;
        startExecution({ stateMachineArn: rec.stateMachineArn, name, input: rec.input });
        rec.resumedAs = name;
        void persist(rec);
        started.push(name);
      }
      return started;
    },
    async close(graceMs) {
      const deadline = Date.now() + graceMs;
      while (running.size > 0) {
        for (const r of running.values()) {
          // Waiting is no work in flight; a task gets the grace period to finish.
          if (r.interrupted || (r.stateType !== 'Wait' && Date.now() < deadline)) continue;
          r.interrupted = true;
          r.rec.error = STACK_STOPPED_ERROR;
          r.rec.cause = `the local stack stopped during state type ${r.stateType ?? 'unknown'}; resumed at the next start`;
          log.info(`execution ${r.rec.name} interrupted by the stop (resumed at the next start)`);
          r.abort();
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all([...running.values()].map((r) => r.done)),
          new Promise((resolve) => {
            timer = setTimeout(resolve, 100);
          }),
        ]);
        clearTimeout(timer);
      }
      await Promise.all([...writes]);
    },
  };
}
