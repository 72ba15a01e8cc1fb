import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy, { type MiddyfiedHandler } from '@middy/core';
import type { Context } from 'aws-lambda';
import { METRICS_NAMESPACE } from '../../lib/config.ts';
import type { Log } from '../../lib/util/log.ts';

/**
 * Powertools setup shared by every handler: one Logger and one Metrics per function, created at
 * module scope, and a middy wrapper that injects the Lambda context into logs and flushes the
 * metrics (EMF) after each invocation. Powertools reads its own `POWERTOOLS_*` variables (log level,
 * `POWERTOOLS_METRICS_DISABLED`, `POWERTOOLS_DEV`); nothing here reads process.env.
 */

/** CloudWatch namespace of every custom metric (defined in lib/config.ts, shared with infra). */
export { METRICS_NAMESPACE };

/** Logger + metrics of one function. */
export interface Observability {
  logger: Logger;
  metrics: Metrics;
  /** The logger behind the `Log` interface `lib/` code takes. */
  log: Log;
}

/** Creates the logger and metrics of a function (call once, at module scope). */
export function createObservability(serviceName: string): Observability {
  const logger = new Logger({ serviceName });
  const metrics = new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName,
    // Requests like GET /health publish no metric by design; Powertools' warning about that
    // ("No application metrics to publish") would print on every such call, so it goes to debug.
    logger: {
      debug: (...args: unknown[]) => logger.debug(String(args[0] ?? '')),
      info: (...args: unknown[]) => logger.info(String(args[0] ?? '')),
      warn: (...args: unknown[]) => logger.debug(String(args[0] ?? '')),
      error: (...args: unknown[]) => logger.error(String(args[0] ?? '')),
    },
  });
  return { logger, metrics, log: asLog(logger) };
}

/** Adapts a Powertools Logger to `Log` (structured extra keys are merged into the log line). */
export function asLog(logger: Logger): Log {
  return {
    debug: (message, extra) => (extra ? logger.debug(message, extra) : logger.debug(message)),
    info: (message, extra) => (extra ? logger.info(message, extra) : logger.info(message)),
    warn: (message, extra) => (extra ? logger.warn(message, extra) : logger.warn(message)),
    error: (message, extra) => (extra ? logger.error(message, extra) : logger.error(message)),
  };
}

/**
 * Wraps a handler with middy: Lambda context in every log line, metrics flushed at the end (with a
 * ColdStart metric), and a warning instead of an error when an invocation published no metric.
 */
export function withObservability<TEvent, TResult>(
  fn: (event: TEvent, context: Context) => Promise<TResult>,
  obs: Observability,
): MiddyfiedHandler<TEvent, TResult, Error, Context> {
  return middy<TEvent, TResult, Error, Context>(fn)
    .use(injectLambdaContext(obs.logger, { resetKeys: true }))
    .use(logMetrics(obs.metrics, { captureColdStartMetric: true }));
}

/**
 * A promise started now (at module import, i.e. during the Lambda init phase) and awaited later
 * by each invocation. A rejection is not cached: the next `get()` starts over, so one failed cold
 * start (e.g. a throttled S3 read of the weights) does not poison the container for its lifetime.
 */
export function startLazy<T>(factory: () => Promise<T>): { get(): Promise<T> } {
  let pending: Promise<T> | undefined;
  const start = (): Promise<T> => {
    const p = factory();
    pending = p;
    p.catch(() => {
      if (pending === p) pending = undefined;
    });
    return p;
  };
  start();
  return { get: () => pending ?? start() };
}
