/**
 * The real `tlearn local` as a child process (bin/tlearn.js, exactly what `npm start` runs) on free
 * loopback ports and a data dir of its own, for the chaos suite: start it, kill it with SIGKILL
 * (no handler runs, nothing is flushed), start it again on the same ports and data dir.
 * Fast settings: seeded random weights, 32x32 input, average pooling, the onnx engine, no demo.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tlearn.js', import.meta.url));

/** Ports the stack listens on. */
export interface StackPorts {
  api: number;
  aws: number;
  sfn: number;
}

/** A free TCP port on 127.0.0.1 (the OS picks it; closed again before use). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A `tlearn local` child process that can be killed and started again. */
export interface ChildStack {
  readonly ports: StackPorts;
  readonly dataDir: string;
  readonly apiUrl: string;
  readonly awsEndpoint: string;
  readonly sfnEndpoint: string;
  /** Starts the process and resolves once `GET /health` answers 200; returns the start time, ms. */
  start(): Promise<number>;
  /** SIGKILL: the process ends at once, mid-write if it was writing. */
  kill9(): Promise<void>;
  /** SIGTERM and wait (the clean stop); SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  /** Whether the process runs. */
  running(): boolean;
}

/** Options of {@link createChildStack}. */
export interface ChildStackOptions {
  dataDir: string;
  /** Where the child's stdout and stderr are appended. @default {dataDir}/../stack.log */
  logFile?: string;
  /** Seconds to wait for `/health`. @default 180 */
  startTimeoutSeconds?: number;
}

/** Allocates ports and returns a stopped child stack. */
export async function createChildStack(opts: ChildStackOptions): Promise<ChildStack> {
  const ports: StackPorts = { api: await freePort(), aws: await freePort(), sfn: await freePort() };
  const apiUrl = `http://127.0.0.1:${ports.api}`;
  const logFile = opts.logFile ?? join(opts.dataDir, '..', 'stack.log');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log: WriteStream | undefined;

  const start = async (): Promise<number> => {
    if (child) throw new Error('the stack already runs');
    const t0 = performance.now();
    log ??= createWriteStream(logFile, { flags: 'a' });
    log.write(`\n===== start ${new Date().toISOString()} =====\n`);
    const args = [
      BIN,
      'local',
      '--port',
      String(ports.api),
      '--aws-port',
      String(ports.aws),
      '--sfn-port',
      String(ports.sfn),
      '--data-dir',
      opts.dataDir,
      '--weights',
      'random:11',
      '--size',
      '32',
      '--pooling',
      'avg',
      '--no-demo',
      '--no-fetch',
    ];
    const proc = spawn(process.execPath, args, {
      env: { ...process.env, TLEARN_BACKEND: 'onnx' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    const deadline = Date.now() + (opts.startTimeoutSeconds ?? 180) * 1000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`tlearn local exited during start (code ${proc.exitCode}); see ${logFile}`);
      try {
        const res = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) return performance.now() - t0;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`tlearn local did not answer /health; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const end = async (signal: NodeJS.Signals, timeoutMs: number): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    child = undefined;
  };

  return {
    ports,
    dataDir: opts.dataDir,
    apiUrl,
    awsEndpoint: `http://127.0.0.1:${ports.aws}`,
    sfnEndpoint: `http://127.0.0.1:${ports.sfn}`,
    start,
    kill9: () => end('SIGKILL', 0),
    async stop(timeoutMs = 60_000) {
      await end('SIGTERM', timeoutMs);
      log?.end();
      log = undefined;
    },
    running: () => child !== undefined,
  };
}
