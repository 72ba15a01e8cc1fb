/**
 * Child processes of the suite. Heavy figures run in their own process so each gets its own peak
 * RSS (`process.resourceUsage().maxRSS` is per process, for its whole life) and no figure pays for
 * the memory or the JIT state another one left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Resource usage of a process at its exit. */
export interface ProcessUsage {
  maxRssKB: number;
  userCpuMs: number;
  systemCpuMs: number;
  /** Process lifetime as the process saw it. */
  uptimeMs: number;
}

/** Current process usage (what a worker reports with its result). */
export function ownUsage(): ProcessUsage {
  const u = process.resourceUsage();
  return {
    maxRssKB: u.maxRSS,
    userCpuMs: u.userCPUTime / 1000,
    systemCpuMs: u.systemCPUTime / 1000,
    uptimeMs: process.uptime() * 1000,
  };
}

/** KB (as maxRSS reports) to whole MB. */
export const kbToMB = (kb: number): number => Math.round(kb / 1024);

/** Line prefix a worker writes its JSON result after, on stdout. */
export const RESULT_MARKER = '@@tlearn-bench-result ';

/** A child run went wrong (non-zero exit, timeout, no result). */
export class ChildRunError extends Error {
  constructor(
    message: string,
    readonly stderrTail: string,
    options?: { cause?: unknown },
  ) {
    super(stderrTail ? `${message}\n${stderrTail}` : message, options);
    this.name = 'ChildRunError';
  }
}

export interface SpawnOptions {
  cwd: string;
  env?: Record<string, string>;
  /** Killed (SIGKILL, this child only) after this long. */
  timeoutMs: number;
  /** Copy the child's stderr to ours. */
  verbose?: boolean;
  /** Preload the usage reporter and return the child's peak RSS and CPU time. @default false */
  measureUsage?: boolean;
}

export interface SpawnResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Spawn to exit, measured here. */
  wallMs: number;
  stdout: string;
  /** Last ~4 KB of stderr (for error messages). */
  stderrTail: string;
  /** All of stderr (bounded to 1 MB). */
  stderr: string;
  usage?: ProcessUsage;
}

const USAGE_REPORTER = new URL('./usage-reporter.mjs', import.meta.url);

/**
 * Runs `node ARGS…` and waits for it. Never throws for a failing child (the caller decides);
 * throws only when the process cannot be started.
 */
export async function spawnNode(args: readonly string[], opts: SpawnOptions): Promise<SpawnResult> {
  let usageDir: string | undefined;
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  const nodeArgs = [...args];
  if (opts.measureUsage) {
    usageDir = await mkdtemp(join(tmpdir(), 'tlearn-bench-usage-'));
    env.TLEARN_BENCH_USAGE_FILE = join(usageDir, 'usage.json');
    nodeArgs.unshift('--import', USAGE_REPORTER.href);
  }
  try {
    const started = performance.now();
    const child = spawn(process.execPath, nodeArgs, {
      cwd: opts.cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < 4_000_000) stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 1_000_000) stderr += chunk;
      if (opts.verbose) process.stderr.write(chunk);
    });
    const timer = setTimeout(() => {
      stderr += `\n[bench] killed after ${Math.round(opts.timeoutMs / 1000)} s\n`;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve, reject) => {
        child.on('error', reject);
        child.on('close', (c, s) => resolve({ code: c, signal: s }));
      },
    );
    clearTimeout(timer);
    const wallMs = performance.now() - started;
    let usage: ProcessUsage | undefined;
    if (usageDir) {
      usage =
        JSON.parse(await readFile(join(usageDir, 'usage.json'), 'utf8').catch(() => 'null')) ?? undefined;
    }
    return { code, signal, wallMs, stdout, stderr, stderrTail: stderr.slice(-4000).trim(), usage };
  } finally {
    if (usageDir) await rm(usageDir, { recursive: true, force: true });
  }
}

const WORKER = 'bench/worker.ts';

/**
 * Runs one task of `bench/worker.ts` in a fresh Node process and returns its result (the
 * worker adds its own `usage` at the end of the task).
 */
export async function runWorker<T>(
  task: string,
  params: object,
  opts: { cwd: string; timeoutMs: number; verbose?: boolean; env?: Record<string, string> },
): Promise<T & { usage: ProcessUsage }> {
  const res = await spawnNode(['bin/run-ts.js', WORKER, task, JSON.stringify(params)], opts);
  const line = res.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith(RESULT_MARKER));
  if (res.code !== 0 || line === undefined) {
    const why = res.signal ? `killed by ${res.signal}` : `exit code ${res.code}`;
    throw new ChildRunError(`bench worker '${task}' failed (${why})`, res.stderrTail);
  }
  return JSON.parse(line.slice(RESULT_MARKER.length)) as T & { usage: ProcessUsage };
}

/** A child process on an IPC channel whose messages have a `type`, with its stderr's tail. */
export interface IpcChild<M extends { type: string }> {
  /** The next message of `type`; rejects when none comes in `timeoutMs` or the child exits first. */
  next(type: string, timeoutMs: number): Promise<M>;
  /** SIGKILL, unless it has exited. */
  kill(): void;
  /** The last 4,000 characters it wrote to stderr. */
  stderr(): string;
}

/**
 * Listens to a child spawned with an `ipc` channel and piped stderr (the benchmark's long-lived
 * children: the API server, the local stack): `what` names it in errors, which carry its stderr.
 */
export function ipcChild<M extends { type: string }>(
  child: ChildProcess,
  what: string,
  opts: { verbose: boolean },
): IpcChild<M> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-4000);
    if (opts.verbose) process.stderr.write(c);
  });
  const waiters = new Map<string, (m: M) => void>();
  child.on('message', (m: M) => waiters.get(m.type)?.(m));
  return {
    next: (type, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${what} sent no '${type}' in ${timeoutMs} ms`)),
          timeoutMs,
        );
        const onExit = (code: number | null) =>
          reject(new ChildRunError(`${what} exited (code ${code}) before '${type}'`, stderr.trim()));
        child.once('exit', onExit);
        waiters.set(type, (m) => {
          clearTimeout(timer);
          child.off('exit', onExit);
          waiters.delete(type);
          resolve(m);
        });
      }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    stderr: () => stderr,
  };
}
