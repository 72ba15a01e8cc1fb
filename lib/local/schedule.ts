/**
 * The local stand-in of an EventBridge schedule rule: calls a handler with a scheduled event every
 * `everyMs`, one run at a time (a run still going when the next is due skips that one, as a slow
 * run of a rate rule would overlap in AWS: here the simpler choice), and waits for the run in
 * flight on stop.
 */
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';
import { createLambdaContext, type LambdaHandler, LOCAL_ACCOUNT_ID } from './lambda-context.ts';

/** A running schedule. */
export interface LocalSchedule {
  /** Runs the handler now (tests; the schedule goes on). */
  runNow(): Promise<unknown>;
  stop(): Promise<void>;
}

/** Starts calling `handler` with `event(at)` every `everyMs`. */
export function startLocalSchedule(opts: {
  functionName: string;
  handler: LambdaHandler;
  everyMs: number;
  event: (at: Date, region: string, account: string) => unknown;
  region: string;
  timeoutMs: number;
  log: Log;
}): LocalSchedule {
  let running: Promise<unknown> | undefined;
  const run = (): Promise<unknown> => {
    const context = createLambdaContext(opts.functionName, {
      region: opts.region,
      timeoutMs: opts.timeoutMs,
    });
    const p = opts.handler(opts.event(new Date(), opts.region, LOCAL_ACCOUNT_ID), context);
    // What stop() waits for: the run's end, whatever its outcome (the caller sees the outcome).
    const settled: Promise<unknown> = p.then(
      () => undefined,
      () => undefined,
    );
    running = settled;
    void settled.then(() => {
      if (running === settled) running = undefined;
    });
    return p;
  };
  const timer = setInterval(() => {
    if (running !== undefined) return;
    run().catch((err: unknown) =>
      opts.log.warn(`${opts.functionName} failed`, { error: describeError(err) }),
    );
  }, opts.everyMs);
  timer.unref();
  return {
    runNow: run,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
