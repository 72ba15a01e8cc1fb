/**
 * A minimal Step Functions API on 127.0.0.1 (AWS JSON 1.0 protocol: `POST /` with
 * `X-Amz-Target: AWSStepFunctions.<Operation>`), so the handlers' real `SFNClient` works unchanged
 * with `AWS_ENDPOINT_URL_SFN` pointing here. Operations: StartExecution, DescribeExecution,
 * ListExecutions, GetExecutionHistory, StopExecution, DescribeStateMachine, ListStateMachines.
 * Errors use the shape the SDK parses (`{"__type": "ExecutionAlreadyExists", "message": …}`, 400).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';
import { gracefulStop, listenOnLoopback } from './listen.ts';
import { isLoopbackHost, misdirected } from './loopback.ts';
import { type ExecutionRecord, type ExecutionStatus, SfnApiError, type SfnRunner } from './sfn-runner.ts';

/** Options of {@link startSfnServer}. */
export interface SfnServerOptions {
  /** TCP port on 127.0.0.1 (Step Functions Local's is 8083); 0 picks a free one. @default 8083 */
  port?: number;
  /**
   * The executions behind the API. A promise lets the server listen (and its endpoint go into the
   * handlers' environment) before the handlers the runner binds are loaded; requests wait for it.
   */
  runner: SfnRunner | Promise<SfnRunner>;
  log: Log;
}

/** A running Step Functions endpoint. */
export interface SfnServer {
  /** `http://127.0.0.1:PORT` (AWS_ENDPOINT_URL_SFN). */
  readonly endpoint: string;
  readonly port: number;
  /** Stops accepting requests, then lets running executions finish (up to `graceMs`) or aborts them. */
  stop(graceMs?: number): Promise<void>;
}

const MAX_REQUEST_BYTES = 1024 * 1024;

/** Step Functions' JSON protocol sends timestamps as epoch seconds. */
const epoch = (d: Date | undefined): number | undefined => (d === undefined ? undefined : d.getTime() / 1000);

type Body = Record<string, unknown>;

function requireString(body: Body, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || v === '') {
    throw new SfnApiError(
      'ValidationException',
      `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`,
      400,
    );
  }
  return v;
}

function optionalString(body: Body, field: string): string | undefined {
  const v = body[field];
  return typeof v === 'string' ? v : undefined;
}

function page<T>(items: T[], body: Body, dflt: number): { items: T[]; nextToken?: string } {
  const max =
    typeof body.maxResults === 'number' && body.maxResults > 0 ? Math.min(body.maxResults, 1000) : dflt;
  const start = typeof body.nextToken === 'string' ? Number.parseInt(body.nextToken, 10) || 0 : 0;
  const slice = items.slice(start, start + max);
  return start + max < items.length ? { items: slice, nextToken: String(start + max) } : { items: slice };
}

function summary(e: ExecutionRecord) {
  return {
    executionArn: e.executionArn,
    stateMachineArn: e.stateMachineArn,
    name: e.name,
    status: e.status,
    startDate: epoch(e.startDate),
    stopDate: epoch(e.stopDate),
  };
}

/** Runs one API operation against the runner; returns the JSON response body. */
export function handleSfnOperation(runner: SfnRunner, operation: string, body: Body): unknown {
  switch (operation) {
    case 'StartExecution': {
      const out = runner.startExecution({
        stateMachineArn: requireString(body, 'stateMachineArn'),
        name: optionalString(body, 'name'),
        input: optionalString(body, 'input'),
      });
      return { executionArn: out.executionArn, startDate: epoch(out.startDate) };
    }
    case 'DescribeExecution': {
      const e = runner.getExecution(requireString(body, 'executionArn'));
      return {
        ...summary(e),
        input: e.input,
        inputDetails: { included: true },
        ...(e.output !== undefined ? { output: e.output, outputDetails: { included: true } } : {}),
        ...(e.error !== undefined ? { error: e.error } : {}),
        ...(e.cause !== undefined ? { cause: e.cause } : {}),
      };
    }
    case 'ListExecutions': {
      const filter = optionalString(body, 'statusFilter') as ExecutionStatus | undefined;
      const all = runner
        .listExecutions(requireString(body, 'stateMachineArn'))
        .filter((e) => filter === undefined || e.status === filter);
      const { items, nextToken } = page(all, body, 100);
      return { executions: items.map(summary), ...(nextToken ? { nextToken } : {}) };
    }
    case 'GetExecutionHistory': {
      const e = runner.getExecution(requireString(body, 'executionArn'));
      const events = body.reverseOrder === true ? [...e.events].reverse() : [...e.events];
      const { items, nextToken } = page(events, body, 100);
      return {
        events: items.map((ev) => ({ ...ev, timestamp: epoch(ev.timestamp) })),
        ...(nextToken ? { nextToken } : {}),
      };
    }
    case 'StopExecution': {
      const out = runner.stopExecution(
        requireString(body, 'executionArn'),
        optionalString(body, 'error'),
        optionalString(body, 'cause'),
      );
      return { stopDate: epoch(out.stopDate) };
    }
    case 'DescribeStateMachine': {
      const m = runner.describeStateMachine(requireString(body, 'stateMachineArn'));
      return {
        stateMachineArn: m.arn,
        name: m.spec.name,
        status: 'ACTIVE',
        definition: JSON.stringify(m.spec.definition),
        roleArn: `arn:aws:iam::000000000000:role/local`,
        type: 'STANDARD',
        creationDate: epoch(m.creationDate),
      };
    }
    case 'ListStateMachines':
      return {
        stateMachines: Object.values(runner.stateMachineArns).map((arn) => {
          const m = runner.describeStateMachine(arn);
          return {
            stateMachineArn: arn,
            name: m.spec.name,
            type: 'STANDARD',
            creationDate: epoch(m.creationDate),
          };
        }),
      };
    default:
      throw new SfnApiError(
        'UnknownOperationException',
        `Operation '${operation}' is not supported locally`,
        400,
      );
  }
}

function send(res: ServerResponse, status: number, body: unknown, requestId: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': requestId,
  });
  res.end(text);
}

function sendError(
  res: ServerResponse,
  status: number,
  type: string,
  message: string,
  requestId: string,
): void {
  res.setHeader('x-amzn-errortype', type);
  send(res, status, { __type: type, message }, requestId);
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_REQUEST_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The media type of AWS's JSON 1.0 protocol, the only body the SDK sends. */
const AMZ_JSON = 'application/x-amz-json-1.0';

/**
 * Why a request is refused before it is read, if it is (lib/local/loopback.ts): a Host that is not
 * loopback (DNS rebinding), any `Origin` (only SDK clients call Step Functions, never a page), or a
 * body type other than the protocol's (a page can POST `text/plain` without a preflight).
 */
function browserRefusal(
  req: IncomingMessage,
  port: number,
): { status: number; type: string; message: string } | undefined {
  if (!isLoopbackHost(req.headers.host)) {
    return { status: 421, type: 'MisdirectedRequest', message: misdirected(req.headers.host, port).message };
  }
  if (req.headers.origin !== undefined) {
    return {
      status: 403,
      type: 'AccessDeniedException',
      message: 'browser pages may not call the local Step Functions endpoint',
    };
  }
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]
    ?.trim()
    .toLowerCase();
  if (req.method === 'POST' && type !== AMZ_JSON) {
    return {
      status: 415,
      type: 'UnsupportedMediaTypeException',
      message: `send the request with Content-Type: ${AMZ_JSON}`,
    };
  }
  return undefined;
}

/**
 * Starts the Step Functions endpoint on 127.0.0.1.
 *
 * @example
 * const runner = await createSfnRunner({ region, stateMachines: [spec], log });
 * const sfn = await startSfnServer({ port: 0, runner, log });
 * new SFNClient({ endpoint: sfn.endpoint, region, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
 */
export async function startSfnServer(opts: SfnServerOptions): Promise<SfnServer> {
  const { log } = opts;
  const runnerReady = Promise.resolve(opts.runner);
  // A rejected runner is reported by whoever created it; requests then answer 500.
  runnerReady.catch(() => undefined);
  let port = 0;
  const server = createServer((req, res) => {
    const requestId = randomUUID();
    const handle = async (): Promise<void> => {
      const refusal = browserRefusal(req, port);
      if (refusal) {
        req.resume();
        return sendError(res, refusal.status, refusal.type, refusal.message, requestId);
      }
      if (req.method !== 'POST') {
        return sendError(res, 400, 'UnknownOperationException', 'Step Functions takes POST /', requestId);
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      const [service, operation = ''] = target.split('.');
      if (service !== 'AWSStepFunctions') {
        return sendError(
          res,
          400,
          'UnknownOperationException',
          `unknown X-Amz-Target '${target}'`,
          requestId,
        );
      }
      const text = await readBody(req);
      if (text === undefined) {
        return sendError(res, 413, 'ValidationException', 'request body is larger than 1 MB', requestId);
      }
      let body: Body;
      try {
        const parsed: unknown = text === '' ? {} : JSON.parse(text);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error('not an object');
        body = parsed as Body;
      } catch {
        return sendError(res, 400, 'SerializationException', 'request body is not a JSON object', requestId);
      }
      try {
        send(res, 200, handleSfnOperation(await runnerReady, operation, body), requestId);
      } catch (err) {
        if (err instanceof SfnApiError) return sendError(res, err.status, err.code, err.message, requestId);
        log.error(`step functions ${operation} failed`, { error: describeError(err) });
        sendError(res, 500, 'InternalFailure', 'internal error (see the local stack log)', requestId);
      }
    };
    handle().catch((err: unknown) => {
      log.error('step functions request failed', { error: describeError(err) });
      if (!res.headersSent) sendError(res, 500, 'InternalFailure', 'internal error', requestId);
      else res.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  port = await listenOnLoopback(server, opts.port ?? 8083, '--sfn-port');
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: gracefulStop(server, (graceMs) =>
      runnerReady.then(
        (runner) => runner.close(graceMs),
        () => undefined,
      ),
    ),
  };
}
