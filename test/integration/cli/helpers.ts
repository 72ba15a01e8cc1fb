import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CliContext } from '../../../lib/cli/remote.ts';

/** A request the fake API received. */
export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** What a route answers: status and JSON body. */
export interface FakeResponse {
  status: number;
  body: unknown;
}

export type Route = (req: SeenRequest) => FakeResponse | Promise<FakeResponse>;

/** A tiny stand-in of the HTTP API on 127.0.0.1 (port 0) with the documented response shapes. */
export interface FakeApi {
  url: string;
  requests: SeenRequest[];
  /** Routes by `METHOD /path`; replace entries per test. */
  routes: Map<string, Route>;
  /** When set, requests without this x-api-key get API Gateway's 403. */
  apiKey: string | undefined;
  close(): Promise<void>;
}

/** Starts the fake API. */
export async function startFakeApi(): Promise<FakeApi> {
  const api: Omit<FakeApi, 'url' | 'close'> = { requests: [], routes: new Map(), apiKey: undefined };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    api.requests.push(seen);
    let out: FakeResponse;
    if (api.apiKey !== undefined && req.headers['x-api-key'] !== api.apiKey) {
      out = { status: 403, body: { message: 'Forbidden' } };
    } else {
      const route = api.routes.get(`${seen.method} ${seen.path}`);
      out = route
        ? await route(seen)
        : {
            status: 404,
            body: { error: { code: 'NotFound', message: `no route ${seen.method} ${seen.path}` } },
          };
    }
    res.writeHead(out.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...api,
    get requests() {
      return api.requests;
    },
    get routes() {
      return api.routes;
    },
    get apiKey() {
      return api.apiKey;
    },
    set apiKey(v) {
      api.apiKey = v;
    },
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A loopback URL nothing listens on (a server bound, then closed). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** A CLI context that records output lines, with a given env and cwd. */
export function testContext(cwd: string, env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const ctx: CliContext = {
    env,
    cwd,
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  };
  return { ctx, out, err, stdout: () => out.join('\n'), stderr: () => err.join('\n') };
}
