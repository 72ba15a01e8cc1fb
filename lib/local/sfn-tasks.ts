/**
 * The Task states of a state machine run by lib/local/sfn-runner.ts: each is bound to an
 * in-process Lambda handler, which is invoked as Step Functions invokes a function (directly, or
 * through the optimized `lambda:invoke` integration) and reports the task's history events.
 */
import { ConfigError } from '../errors.ts';
import { createLambdaContext, type LambdaHandler } from './lambda-context.ts';

/** The Resource of a Task that calls Lambda through the optimized integration. */
const LAMBDA_INVOKE = /^arn:aws[a-z-]*:states:::lambda:invoke$/;

/** The handler a Task state runs. */
export interface TaskBinding {
  functionName: string;
  handler: LambdaHandler;
  /** Called through `arn:aws:states:::lambda:invoke` (input and output wrapped like the Invoke API's). */
  invokeIntegration: boolean;
}

/** Finds every Task state (nested branches and iterators too) and binds it to its handler. */
export function bindTasks(spec: {
  name: string;
  definition: Record<string, unknown>;
  taskHandlers: Record<string, LambdaHandler>;
}): Map<string, TaskBinding> {
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

/** Adds a task's event to the history of the execution running it. */
export type TaskEventSink = (stateName: string, type: string, details: Record<string, unknown>) => void;

/** What the task handlers of one execution share. */
export interface TaskInvocationOptions {
  region: string;
  /** Lambda timeout for the handlers' context, ms. */
  functionTimeoutMs?: number;
  taskEvent: TaskEventSink;
}

/** The event details of a task, as the direct Lambda call or the `lambda:invoke` integration words them. */
function taskDetails(
  binding: TaskBinding,
  kind: 'Scheduled' | 'Failed' | 'Succeeded',
  integration: Record<string, unknown>,
  direct: Record<string, unknown>,
): Record<string, unknown> {
  if (!binding.invokeIntegration) return { [`lambdaFunction${kind}EventDetails`]: direct };
  return { [`task${kind}EventDetails`]: { resourceType: 'lambda', resource: 'invoke', ...integration } };
}

/** Runs the task of one state: its handler, with the history events Step Functions records. */
async function invokeTask(
  stateName: string,
  binding: TaskBinding,
  taskInput: unknown,
  opts: TaskInvocationOptions,
): Promise<unknown> {
  const { region, taskEvent } = opts;
  const prefix = binding.invokeIntegration ? 'Task' : 'LambdaFunction';
  const payload = binding.invokeIntegration
    ? (taskInput as { Payload?: unknown } | null)?.Payload
    : taskInput;
  const input = JSON.stringify(payload ?? null);
  taskEvent(
    stateName,
    `${prefix}Scheduled`,
    taskDetails(
      binding,
      'Scheduled',
      { region, parameters: input },
      { resource: binding.functionName, input },
    ),
  );
  taskEvent(stateName, `${prefix}Started`, {});
  const context = createLambdaContext(binding.functionName, { region, timeoutMs: opts.functionTimeoutMs });
  let out: unknown;
  try {
    out = (await binding.handler(payload, context)) ?? null;
  } catch (err) {
    const e = lambdaErrorOf(err);
    const error = { error: e.name, cause: e.message };
    taskEvent(stateName, `${prefix}Failed`, taskDetails(binding, 'Failed', error, error));
    throw e;
  }
  const output = JSON.stringify(out);
  taskEvent(stateName, `${prefix}Succeeded`, taskDetails(binding, 'Succeeded', { output }, { output }));
  // The optimized integration wraps the function's result like the Invoke API does.
  return binding.invokeIntegration ? { ExecutedVersion: '$LATEST', Payload: out, StatusCode: 200 } : out;
}

/** The interpreter's `taskResourceLocalHandlers` for one execution: each Task state's handler. */
export function createLocalTaskHandlers(
  tasks: ReadonlyMap<string, TaskBinding>,
  opts: TaskInvocationOptions,
): Record<string, (input: unknown) => Promise<unknown>> {
  const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [stateName, binding] of tasks) {
    handlers[stateName] = (taskInput: unknown) => invokeTask(stateName, binding, taskInput, opts);
  }
  return handlers;
}
