import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy, { type MiddyfiedHandler } from '@middy/core';
import type { Context } from 'aws-lambda';
import { METRICS_NAMESPACE } from '../../lib/config.ts';
import type { Log } from '../../lib/util/log.ts';

/**
 * Powertools setup shared by every handler: one Logger, Metrics and Tracer per function, created at
 * module scope, and a middy wrapper that injects the Lambda context into logs (with the API's
 * request id as correlation id), opens an X-Ray subsegment per invocation and flushes the metrics
 * (EMF) after each invocation. AWS SDK clients passed through `traceClients` show their S3, SQS
 * and Step Functions calls as subsegments. Outside Lambda the tracer is off by itself. Powertools reads its own `POWERTOOLS_*` variables (log level,
 * `POWERTOOLS_METRICS_DISABLED`, `POWERTOOLS_DEV`); nothing here reads process.env.
 */

/** CloudWatch namespace of every custom metric (defined in lib/config.ts, shared with infra). */
export { METRICS_NAMESPACE };

/** Logger + metrics + tracer of one function. */
export interface Observability {
  logger: Logger;
  metrics: Metrics;
  tracer: Tracer;
  /** The logger behind the `Log` interface `lib/` code takes. */
  log: Log;
}

/** Creates the logger and metrics of a function (call once, at module scope). */
export function createObservability(serviceName: string): Observability {
  // The correlation id is found with a plain dotted path: Powertools' JMESPath search would need
  // another package for the one expression used (API Gateway REST's requestContext.requestId).
  const logger = new Logger({ serviceName, correlationIdSearchFn: searchPath });
  const tracer = new Tracer({ serviceName });
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
  return { logger, metrics, tracer, log: asLog(logger) };
}

/** Where API Gateway REST (payload 1.0) events carry the request id: the correlation id of logs. */
export const API_GATEWAY_REQUEST_ID_PATH = 'requestContext.requestId';

/** Reads a dotted path (`a.b.c`) from an event; what `correlationIdSearchFn` needs here. */
export function searchPath(expression: string, data: unknown): unknown {
  let value: unknown = data;
  for (const part of expression.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** Instruments every AWS SDK v3 client of an object (e.g. `createAwsClients(...)`) for X-Ray; returns it. */
export function traceClients<T extends object>(obs: Observability, clients: T): T {
  for (const client of Object.values(clients)) {
    if (typeof client === 'object' && client !== null && 'middlewareStack' in client) {
      obs.tracer.captureAWSv3Client(client);
    }
  }
  return clients;
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
  opts: { correlationIdPath?: string } = {},
): MiddyfiedHandler<TEvent, TResult, Error, Context> {
  return (
    middy<TEvent, TResult, Error, Context>(fn)
      // Responses stay out of traces: predictions and statuses are the users' data.
      .use(captureLambdaHandler(obs.tracer, { captureResponse: false }))
      .use(
        injectLambdaContext(obs.logger, {
          resetKeys: true,
          ...(opts.correlationIdPath ? { correlationIdPath: opts.correlationIdPath } : {}),
        }),
      )
      .use(logMetrics(obs.metrics, { captureColdStartMetric: true }))
  );
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
