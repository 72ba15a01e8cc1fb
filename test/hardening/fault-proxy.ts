/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of the emulator (fauxqs). SDK clients pointed
 * at it talk real S3/SQS over the wire; rules make chosen calls fail the way networks and services
 * do (a 500, a reset connection, a call that never answers, a response lost after the write took
 * effect, a service that is down), and every call is recorded so tests can assert what was
 * written, in which order, and how often.
 *
 * It can also enforce S3 conditional writes (`If-Match` / `If-None-Match: *` on PUT), which fauxqs
 * ignores, so promotion races can be tested with real S3 semantics.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** What the proxy does to a matching call. */
export type FaultAction =
  /** Answer 500 InternalError without forwarding (the SDK retries, then gives up). */
  | 'error-500'
  /** Close the connection without an answer, without forwarding. */
  | 'reset'
  /** Never answer (the client's timeout fires); nothing is forwarded. */
  | 'hang'
  /** Forward (the write takes effect), then close the connection instead of answering. */
  | 'lose-response'
  /** Wait `delayMs`, then handle the call normally (to order concurrent calls). */
  | 'delay';

/** One call as the proxy saw it. */
export interface ProxiedCall {
  /** Order of arrival, from 1. */
  seq: number;
  method: string;
  /** S3: the object key (decoded, without the bucket); undefined for bucket-level calls and SQS. */
  key: string | undefined;
  /** SQS: the operation (`SendMessageBatch`, …) from `x-amz-target`; undefined for S3. */
  sqsAction: string | undefined;
  /** The upstream status code when forwarded and answered, else the fault applied. */
  outcome: number | FaultAction | 'precondition-failed';
  /** A `PUT` that carried `If-Match` / `If-None-Match`. */
  conditional: boolean;
}

/** What a rule can match on: the call plus its body as text (first 4 KB). */
export type CallInfo = Pick<ProxiedCall, 'method' | 'key' | 'sqsAction' | 'seq'> & { body: string };

/** A rule: calls it matches get `action`, `times` times (default: until removed). */
export interface FaultRule {
  match: (call: CallInfo) => boolean;
  action: FaultAction;
  times?: number;
  /** For `delay`. @default 100 */
  delayMs?: number;
}

/** A running proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`: use as the AWS endpoint. */
  readonly url: string;
  /** Every call so far, in order of arrival. */
  readonly calls: ProxiedCall[];
  /** Adds a rule (rules are tried in the order added); returns a function removing it. */
  addRule(rule: FaultRule): () => void;
  clearRules(): void;
  /** Forgets the calls recorded so far (`seq` keeps counting). */
  clearCalls(): void;
  /** S3 PUTs of these keys whose `If-Match` / `If-None-Match` fails are answered 412, like S3. */
  enforceConditionalPuts(enabled: boolean): void;
  /** Successful (2xx) PUTs of a key, counted from the call log. */
  putCount(key: string): number;
  stop(): Promise<void>;
}

function s3Key(url: string, bucket: string): string | undefined {
  const path = url.split('?')[0] ?? '';
  const prefix = `/${bucket}/`;
  if (!path.startsWith(prefix)) return undefined;
  try {
    return decodeURIComponent(path.slice(prefix.length));
  } catch {
    return path.slice(prefix.length);
  }
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Sends a request upstream and collects the answer whole. */
function upstreamCall(
  port: number,
  method: string,
  path: string,
  headers: IncomingMessage['headers'],
  body: Buffer | undefined,
): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    delete h.expect; // the body is already here; no 100-continue round trip
    if (body !== undefined) h['content-length'] = String(body.length);
    const req = request({ host: '127.0.0.1', port, method, path, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const S3_500 =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>';
const S3_412 =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>';

/**
 * Starts a proxy to the emulator at `upstream` (`http://127.0.0.1:PORT`) for `bucket`.
 *
 * @example
 * const proxy = await startFaultProxy(emu.endpoint, emu.bucket);
 * proxy.addRule({ match: (c) => c.method === 'GET' && c.key === 'datasets/pets/cat/2.png', action: 'error-500' });
 * const clients = createAwsClients({ ...emu.storage, endpoint: proxy.url });
 */
export async function startFaultProxy(upstream: string, bucket: string): Promise<FaultProxy> {
  const upstreamPort = Number(new URL(upstream).port);
  const calls: ProxiedCall[] = [];
  let seq = 0;
  const rules: { rule: FaultRule; left: number }[] = [];
  const sockets = new Set<Socket>();
  let conditional = false;
  // Conditional PUTs of one key are checked and applied one at a time (S3 does this atomically).
  const keyLocks = new Map<string, Promise<void>>();

  async function withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = keyLocks.get(key) ?? Promise.resolve();
    let release: () => void = () => {};
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const chained = before.then(() => mine);
    keyLocks.set(key, chained);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (keyLocks.get(key) === chained) keyLocks.delete(key);
    }
  }

  function answer(
    res: ServerResponse,
    status: number,
    headers: IncomingMessage['headers'],
    body: Buffer,
  ): void {
    const h: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (v !== undefined && k !== 'transfer-encoding' && k !== 'connection') h[k] = v;
    }
    h['content-length'] = String(body.length);
    res.writeHead(status, h);
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = req.url ?? '/';
    const target = req.headers['x-amz-target'];
    const sqsAction = typeof target === 'string' ? target.split('.').pop() : undefined;
    const key = sqsAction === undefined ? s3Key(url, bucket) : undefined;
    const isConditional =
      method === 'PUT' &&
      (req.headers['if-match'] !== undefined || req.headers['if-none-match'] !== undefined);
    const call: ProxiedCall = {
      seq: ++seq,
      method,
      key,
      sqsAction,
      outcome: 0,
      conditional: isConditional,
    };
    calls.push(call);
    const body = await readAll(req);

    const info: CallInfo = { ...call, body: body.subarray(0, 4096).toString('utf8') };
    const delay = rules.find((r) => r.left > 0 && r.rule.action === 'delay' && r.rule.match(info));
    if (delay) {
      delay.left -= 1;
      await new Promise((r) => setTimeout(r, delay.rule.delayMs ?? 100));
    }
    const hit = rules.find((r) => r.left > 0 && r.rule.action !== 'delay' && r.rule.match(info));
    if (hit) {
      hit.left -= 1;
      call.outcome = hit.rule.action;
      switch (hit.rule.action) {
        case 'error-500':
          if (sqsAction !== undefined) {
            answer(
              res,
              500,
              { 'content-type': 'application/x-amz-json-1.0' },
              Buffer.from('{"__type":"com.amazonaws.sqs#InternalError","message":"injected"}'),
            );
          } else {
            answer(res, 500, { 'content-type': 'application/xml' }, Buffer.from(S3_500));
          }
          return;
        case 'reset':
          req.socket.destroy();
          return;
        case 'hang':
          return; // the socket stays open until the client gives up or the proxy stops
        case 'lose-response':
          await upstreamCall(upstreamPort, method, url, req.headers, body);
          req.socket.destroy();
          return;
        case 'delay':
          break;
      }
    }

    const forward = async () => {
      if (isConditional && conditional && key !== undefined) {
        const head = await upstreamCall(upstreamPort, 'HEAD', url.split('?')[0] ?? url, {}, undefined);
        const exists = head.status === 200;
        const etag = String(head.headers.etag ?? '');
        const ifMatch = req.headers['if-match'];
        const ifNoneMatch = req.headers['if-none-match'];
        const failed =
          (ifNoneMatch === '*' && exists) || (ifMatch !== undefined && (!exists || ifMatch !== etag));
        if (failed) {
          call.outcome = 'precondition-failed';
          answer(res, 412, { 'content-type': 'application/xml' }, Buffer.from(S3_412));
          return;
        }
      }
      const out = await upstreamCall(upstreamPort, method, url, req.headers, body);
      call.outcome = out.status;
      answer(res, out.status, out.headers, out.body);
    };
    await (isConditional && conditional && key !== undefined ? withKeyLock(key, forward) : forward());
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) answer(res, 502, {}, Buffer.from('proxy error'));
      else req.socket.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    addRule(rule) {
      const entry = { rule, left: rule.times ?? Number.POSITIVE_INFINITY };
      rules.push(entry);
      return () => {
        const i = rules.indexOf(entry);
        if (i >= 0) rules.splice(i, 1);
      };
    },
    clearRules() {
      rules.length = 0;
    },
    clearCalls() {
      calls.length = 0;
    },
    enforceConditionalPuts(enabled) {
      conditional = enabled;
    },
    putCount(key) {
      return calls.filter(
        (c) => c.method === 'PUT' && c.key === key && typeof c.outcome === 'number' && c.outcome < 300,
      ).length;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
