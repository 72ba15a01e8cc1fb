/**
 * The training state machine of the local stack (lib/local/stack.ts) behind its Step Functions
 * endpoint, in two steps: the endpoint listens first (its URL goes into the environment of the
 * handlers that start executions); its runner follows once the task handlers are loaded.
 */
import type { Log } from '../util/log.ts';
import { type Deferred, deferred } from './deferred.ts';
import type { LambdaHandler } from './lambda-context.ts';
import { createExecutionEndRule } from './sfn-events.ts';
import { createSfnRunner, type SfnRunner } from './sfn-runner.ts';
import { startSfnServer } from './sfn-server.ts';
import type { FunctionName, LocalHandlers, TrainingDefinitionLike } from './stack-handlers.ts';
import type { StackShutdown } from './stack-shutdown.ts';

const STATE_MACHINE_NAME = 'tlearn-train-local';

/** The listening endpoint, waiting for its runner. */
export interface StepFunctionsEndpoint {
  endpoint: string;
  stateMachineArn: string;
  /** Settled by {@link startTrainingRunner}; requests wait for it. */
  runner: Deferred<SfnRunner>;
}

/** Starts the Step Functions endpoint (stopped by the shutdown); its runner comes later. */
export async function startStepFunctionsEndpoint(opts: {
  port: number;
  region: string;
  shutdown: StackShutdown;
  log: Log;
}): Promise<StepFunctionsEndpoint> {
  const runner = deferred<SfnRunner>();
  const sfnServer = await startSfnServer({ port: opts.port, runner: runner.promise, log: opts.log });
  opts.shutdown.add('the Step Functions endpoint', () => {
    // A start that failed before the runner existed (a handler that does not load): the
    // endpoint's stop must not wait for it. A no-op once the runner was resolved.
    runner.reject(new Error('the local stack stopped before its state machine was ready'));
    return sfnServer.stop(30_000);
  });
  const stateMachineArn = `arn:aws:states:${opts.region}:000000000000:stateMachine:${STATE_MACHINE_NAME}`;
  return { endpoint: sfnServer.endpoint, stateMachineArn, runner };
}

/** What {@link startTrainingRunner} needs. */
export interface TrainingRunnerOptions {
  endpoint: StepFunctionsEndpoint;
  training: TrainingDefinitionLike;
  handlers: LocalHandlers;
  region: string;
  dataDir: string;
  shutdown: StackShutdown;
  log: Log;
}

/**
 * Creates the runner of the training state machine, its tasks bound to `handlers`, and hands it
 * to the endpoint (or its failure, which is thrown too).
 */
export async function startTrainingRunner(opts: TrainingRunnerOptions): Promise<SfnRunner> {
  const { endpoint, region, log } = opts;
  try {
    const taskHandlers: Record<string, LambdaHandler> = {};
    for (const [arn, fn] of Object.entries(opts.training.taskFunctions)) {
      const h = opts.handlers[fn as FunctionName];
      if (h) taskHandlers[arn] = h;
    }
    // Ends without Finish → finish-training, as the stack's EventBridge rule does (sfn-events.ts).
    const executionEnds = createExecutionEndRule({
      stateMachineArn: endpoint.stateMachineArn,
      region,
      handler: opts.handlers['finish-training'],
      log,
    });
    opts.shutdown.add('execution end events', () => executionEnds.drain());
    const runner = await createSfnRunner({
      region,
      stateMachines: [{ name: STATE_MACHINE_NAME, definition: opts.training.definition, taskHandlers }],
      dataDir: opts.dataDir,
      onExecutionEnded: executionEnds.deliver,
      log,
    });
    endpoint.runner.resolve(runner);
    return runner;
  } catch (err) {
    endpoint.runner.reject(err);
    throw err;
  }
}
