import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LOCAL_PROCESS_ENV } from '../../../lib/local/defaults.ts';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const canExec = typeof (process as { execve?: unknown }).execve === 'function';

describe('tlearn local starts with the local process environment (bin/tlearn.js)', () => {
  it.skipIf(!canExec)(
    're-executes itself with LOCAL_PROCESS_ENV before anything runs, in the same process',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'tlearn-env-'));
      try {
        // Runs first in every (re-)execution of the process: says what it was started with.
        const probe = join(dir, 'probe.mjs');
        writeFileSync(
          probe,
          "process.stderr.write('probe ' + process.pid + ' ' + JSON.stringify(process.env.MALLOC_ARENA_MAX ?? null) + '\\n');\n",
        );
        const env: Record<string, string | undefined> = { ...process.env, NODE_OPTIONS: `--import=${probe}` };
        for (const k of Object.keys(LOCAL_PROCESS_ENV)) delete env[k];
        const run = spawnSync(process.execPath, ['bin/tlearn.js', 'local', '--help'], {
          cwd: REPO,
          env,
          encoding: 'utf8',
        });
        expect(run.status).toBe(0);
        const probes = run.stderr.split('\n').filter((l) => l.startsWith('probe '));
        expect(probes).toHaveLength(2);
        const [first, second] = probes.map((l) => l.split(' '));
        expect(first?.[2]).toBe('null');
        expect(second?.[2]).toBe(JSON.stringify(LOCAL_PROCESS_ENV.MALLOC_ARENA_MAX));
        expect(second?.[1]).toBe(first?.[1]); // the same process, not a child
        // Other commands run as they are.
        const other = spawnSync(process.execPath, ['bin/tlearn.js', '--help'], {
          cwd: REPO,
          env,
          encoding: 'utf8',
        });
        expect(other.stderr.split('\n').filter((l) => l.startsWith('probe '))).toHaveLength(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
