/**
 * Executions of Step Functions state machines on this machine: the definition (as CDK
 * synthesizes it) runs in `aws-local-stepfunctions`, with every Task state bound to an in-process
 * Lambda handler, and each execution keeps an AWS-shaped history (TaskStateEntered,
 * LambdaFunctionSucceeded, ExecutionFailed …). `sfn-server.ts` puts the Step Functions API in
 * front of it. Node 20 needs `lib/util/polyfills.ts` loaded before this module runs executions.
 *
 * The parts: sfn-machines.ts loads the definitions, sfn-tasks.ts invokes the handlers,
 * sfn-history.ts writes the history, sfn-execution.ts runs one execution, sfn-records.ts keeps
 * the records on disk; this file is the API the server calls.
 */
import { randomUUID } from 'node:crypto';
import { TlearnError } from '../errors.ts';
import type { Log } from '../util/log.ts';
import { LOCAL_ACCOUNT_ID } from './lambda-context.ts';
import { type ExecutionDeps, runExecution } from './sfn-execution.ts';
import { type LoadedMachine, loadStateMachine, type StateMachineSpec } from './sfn-machines.ts';
import {
  createRecordWriter,
  type ExecutionRecord,
  loadExecutionRecords,
  STACK_STOPPED_ERROR,
} from './sfn-records.ts';

export type { StateMachineSpec } from './sfn-machines.ts';
export {
  type ExecutionRecord,
  type ExecutionStatus,
  type HistoryEvent,
  STACK_STOPPED_ERROR,
} from './sfn-records.ts';

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

/** The maximum size of an execution's input (the API's limit). */
const MAX_INPUT_BYTES = 256 * 1024;

/** What the runner's operations share. */
interface RunnerState {
  region: string;
  /** Loaded state machines, by ARN. */
  machines: Map<string, LoadedMachine>;
  /** Every execution, running or closed (loaded ones too), by ARN. */
  executions: Map<string, ExecutionRecord>;
  deps: ExecutionDeps;
}

function machineOf(state: RunnerState, arn: string): LoadedMachine {
  const m = state.machines.get(arn);
  if (!m) throw new SfnApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`, 400);
  return m;
}

function getExecution(state: RunnerState, executionArn: string): ExecutionRecord {
  const rec = state.executions.get(executionArn);
  if (!rec)
    throw new SfnApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`, 400);
  return rec;
}

/** Checks a StartExecution request's name and input (API rules); returns the name and parsed input. */
function checkStartRequest(req: { name?: string; input?: string }): {
  name: string;
  inputText: string;
  input: unknown;
} {
  const name = req.name ?? randomUUID();
  if (isInvalidName(name)) {
    throw new SfnApiError('InvalidName', `Invalid Name: '${name}'`, 400);
  }
  const inputText = req.input ?? '{}';
  if (Buffer.byteLength(inputText, 'utf8') > MAX_INPUT_BYTES) {
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
  return { name, inputText, input };
}

function startExecution(
  state: RunnerState,
  req: { stateMachineArn: string; name?: string; input?: string },
): { executionArn: string; startDate: Date } {
  const loaded = machineOf(state, req.stateMachineArn);
  const { name, inputText, input } = checkStartRequest(req);
  const executionArn = `arn:aws:states:${state.region}:${LOCAL_ACCOUNT_ID}:execution:${loaded.spec.name}:${name}`;
  const existing = state.executions.get(executionArn);
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
  state.executions.set(executionArn, rec);
  state.deps.log.info(`execution ${name} started`);
  runExecution(rec, loaded, input, state.deps);
  // Recorded while it runs too: after a crash the next start loads it as ABORTED, so
  // DescribeExecution tells the lock its holder is gone (lib/local/recover.ts).
  void state.deps.records.persist(rec);
  return { executionArn, startDate: rec.startDate };
}

function listExecutions(state: RunnerState, stateMachineArn: string): ExecutionRecord[] {
  machineOf(state, stateMachineArn);
  return [...state.executions.values()]
    .filter((e) => e.stateMachineArn === stateMachineArn)
    .sort((a, b) => b.startDate.getTime() - a.startDate.getTime());
}

function stopExecution(
  state: RunnerState,
  executionArn: string,
  error?: string,
  cause?: string,
): { stopDate: Date } {
  const rec = getExecution(state, executionArn);
  const r = state.deps.running.get(executionArn);
  if (r) {
    rec.error = error;
    rec.cause = cause;
    rec.stopDate = new Date();
    r.abort();
  }
  return { stopDate: rec.stopDate ?? new Date() };
}

function resumeInterrupted(state: RunnerState): string[] {
  const started: string[] = [];
  for (const rec of [...state.executions.values()]) {
    if (rec.status !== 'ABORTED' || rec.error !== STACK_STOPPED_ERROR || rec.resumedAs !== undefined)
      continue;
    const name = `${rec.name.slice(0, 64)}-r${Date.now().toString(36)}${started.length}`;
    startExecution(state, { stateMachineArn: rec.stateMachineArn, name, input: rec.input });
    rec.resumedAs = name;
    void state.deps.records.persist(rec);
    started.push(name);
  }
  return started;
}

async function idle(state: RunnerState): Promise<void> {
  const { running } = state.deps;
  while (running.size > 0) await Promise.all([...running.values()].map((r) => r.done));
}

async function closeRunner(state: RunnerState, graceMs: number): Promise<void> {
  const { running, log } = state.deps;
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
  await state.deps.records.flush();
}

/**
 * Creates the runner and loads executions recorded by earlier runs (names stay unique across
 * restarts, as in AWS). Throws ConfigError when a Task state has no local handler or the
 * definition does not validate.
 */
export async function createSfnRunner(opts: SfnRunnerOptions): Promise<SfnRunner> {
  const { region, log } = opts;
  const machines = new Map<string, LoadedMachine>();
  const arns: Record<string, string> = {};
  for (const spec of opts.stateMachines) {
    const loaded = loadStateMachine(spec, region);
    machines.set(loaded.arn, loaded);
    arns[spec.name] = loaded.arn;
  }
  const state: RunnerState = {
    region,
    machines,
    executions: await loadExecutionRecords(opts.dataDir, log),
    deps: {
      region,
      functionTimeoutMs: opts.functionTimeoutMs,
      log,
      running: new Map(),
      records: createRecordWriter(opts.dataDir, log),
      onExecutionEnded: opts.onExecutionEnded,
    },
  };
  return {
    stateMachineArns: arns,
    describeStateMachine(arn) {
      const m = machineOf(state, arn);
      return { spec: m.spec, arn, creationDate: m.creationDate };
    },
    startExecution: (req) => startExecution(state, req),
    getExecution: (executionArn) => getExecution(state, executionArn),
    listExecutions: (stateMachineArn) => listExecutions(state, stateMachineArn),
    stopExecution: (executionArn, error, cause) => stopExecution(state, executionArn, error, cause),
    idle: () => idle(state),
    resumeInterrupted: () => resumeInterrupted(state),
    close: (graceMs) => closeRunner(state, graceMs),
  };
}
