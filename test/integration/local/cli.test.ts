import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '../../../bin/tlearn.js');

/** Runs `tlearn local …`; `onStdout` may send signals once the output shows what it waits for. */
function runLocal(
  args: string[],
  onStdout?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'local', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

describe('tlearn local', () => {
  let dataDir: string;
  let blocker: Server;
  let blockedPort: number;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tlearn-cli-local-'));
    blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const addr = blocker.address();
    blockedPort = typeof addr === 'object' && addr ? addr.port : 0;
  });
  afterAll(async () => {
    await new Promise((r) => blocker.close(r));
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints its options with --help', async () => {
    const r = await runLocal(['--help']);

    expect(r.code).toBe(0);
    for (const flag of [
      '--port',
      '--aws-port',
      '--data-dir',
      '--weights',
      '--size',
      '--pooling',
      '--no-demo',
      '--api-key',
    ])
      expect(r.stdout).toContain(flag);
  });

  it('refuses an unknown flag with the usage exit code', async () => {
    const r = await runLocal(['--bogus']);

    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bogus/);
  });

  it('fails with a clear message when a port is taken', async () => {
    const r = await runLocal(['--aws-port', String(blockedPort), '--data-dir', dataDir, '--no-demo']);

    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`port ${blockedPort} on 127.0.0.1 is in use`);
  });

  it('stops on SIGINT with exit code 0, leaving no temporary files', async () => {
    const r = await runLocal(
      [
        '--port',
        '0',
        '--aws-port',
        '0',
        '--sfn-port',
        '0',
        '--data-dir',
        dataDir,
        '--no-demo',
        '--weights',
        'random',
        '--size',
        '32',
      ],
      (out, child) => {
        if (out.includes('stack is up') && !child.killed) child.kill('SIGINT');
      },
    );

    expect(r.stdout).toContain('stack is up');
    expect(r.stderr).toContain('SIGINT: stopping');
    expect(r.code).toBe(0);
    expect(await readdir(join(dataDir, 'tmp', 's3'))).toEqual([]);
  }, 120_000);
});
