/**
 * The state machines lib/local/sfn-runner.ts runs: each definition (as CDK synthesizes it) checked
 * and loaded into `aws-local-stepfunctions`, its Task states bound to local handlers
 * (lib/local/sfn-tasks.ts), and a timeout too long for one Node timer kept aside for the runner.
 */
import { StateMachine } from 'aws-local-stepfunctions';
import { ConfigError, describeError } from '../errors.ts';
import { type LambdaHandler, LOCAL_ACCOUNT_ID } from './lambda-context.ts';
import { bindTasks, type TaskBinding } from './sfn-tasks.ts';

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

/** A state machine ready to run executions. */
export interface LoadedMachine {
  arn: string;
  spec: StateMachineSpec;
  machine: StateMachine;
  tasks: Map<string, TaskBinding>;
  creationDate: Date;
  /** TimeoutSeconds beyond one Node timer, enforced by the runner (see {@link splitLongTimeout}). */
  longTimeoutMs?: number;
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
export function longTimer(ms: number, fire: () => void): { clear(): void } {
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
 * Loads a state machine of this region. Throws ConfigError when a Task state has no local handler
 * or the definition does not validate.
 */
export function loadStateMachine(spec: StateMachineSpec, region: string): LoadedMachine {
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
  return { arn, spec, machine, tasks, creationDate: new Date(), longTimeoutMs };
}
