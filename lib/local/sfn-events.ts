/**
 * The local stand-in of the EventBridge rule of infra/constructs/execution-end-rule.ts: when an
 * execution of the training state machine ends FAILED, TIMED_OUT or ABORTED, the same "Step
 * Functions Execution Status Change" event AWS sends goes to the same handler (finish-training),
 * asynchronously and retried twice on error, as Lambda's asynchronous invocation does.
 */
import { randomUUID } from 'node:crypto';
import { describeError } from '../errors.ts';
import {
  EXECUTION_STATUS_CHANGE,
  type ExecutionStatusChangeEvent,
  LOCK_RELEASING_STATUSES,
  STEP_FUNCTIONS_EVENT_SOURCE,
} from '../pipeline/execution-ended.ts';
import type { Log } from '../util/log.ts';
import { createLambdaContext, type LambdaHandler, LOCAL_ACCOUNT_ID } from './lambda-context.ts';
import type { ExecutionRecord } from './sfn-runner.ts';

/** The event Step Functions sends to EventBridge when `rec` reached its status. */
export function executionStatusChangeEvent(rec: ExecutionRecord, region: string): ExecutionStatusChangeEvent {
  const ms = (d: Date | undefined) => (d === undefined ? null : d.getTime());
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': EXECUTION_STATUS_CHANGE,
    source: STEP_FUNCTIONS_EVENT_SOURCE,
    account: LOCAL_ACCOUNT_ID,
    time: (rec.stopDate ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [rec.executionArn],
    detail: {
      executionArn: rec.executionArn,
      stateMachineArn: rec.stateMachineArn,
      name: rec.name,
      status: rec.status,
      startDate: ms(rec.startDate),
      stopDate: ms(rec.stopDate),
      input: rec.input,
      output: rec.output ?? null,
      error: rec.error ?? null,
      cause: rec.cause ?? null,
    },
  };
}

/** Options of {@link createExecutionEndRule}. */
export interface ExecutionEndRuleOptions {
  /** The rule matches executions of this state machine only. */
  stateMachineArn: string;
  region: string;
  handler: LambdaHandler;
  /** The handler's name in its Lambda context. @default 'finish-training' */
  functionName?: string;
  /** Delay before each of the two retries, ms. @default 1000 */
  retryDelayMs?: number;
  log: Log;
}

/** Delivers execution ends to the handler; `drain` waits for deliveries in flight. */
export interface ExecutionEndRule {
  deliver(rec: ExecutionRecord): void;
  drain(): Promise<void>;
}

/**
 * The rule: `deliver(rec)` sends the event of an ended execution when it matches (this state
 * machine; FAILED, TIMED_OUT or ABORTED), without waiting; errors are retried twice and then logged.
 */
export function createExecutionEndRule(opts: ExecutionEndRuleOptions): ExecutionEndRule {
  const inFlight = new Set<Promise<void>>();
  const name = opts.functionName ?? 'finish-training';
  const send = async (rec: ExecutionRecord): Promise<void> => {
    const event = executionStatusChangeEvent(rec, opts.region);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 1000));
      try {
        await opts.handler(event, createLambdaContext(name, { region: opts.region }));
        return;
      } catch (err) {
        opts.log.warn(`${name} failed on the end of execution ${rec.name} (attempt ${attempt + 1} of 3)`, {
          error: describeError(err),
        });
      }
    }
  };
  return {
    deliver(rec) {
      if (rec.stateMachineArn !== opts.stateMachineArn) return;
      if (!(LOCK_RELEASING_STATUSES as readonly string[]).includes(rec.status)) return;
      const p = send(rec).finally(() => inFlight.delete(p));
      inFlight.add(p);
    },
    async drain() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
  };
}
