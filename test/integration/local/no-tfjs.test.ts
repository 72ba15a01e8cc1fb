import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomWeights, saveWeights } from '../../../lib/model/weights.ts';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('the local stack on the onnx engine', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tlearn-no-tfjs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains the demo and answers a prediction without loading tfjs', async () => {
    // Prepare: base weights saved as a tfjs model.json (what `tlearn base-model import` writes),
    // so the child also reads weights from disk, as `npm start` does with imported weights.
    const weightsDir = join(dir, 'weights');
    await saveWeights(weightsDir, randomWeights(3), { weightsId: 'random-3' });

    // Act: the stack in a child process of its own (this one has tfjs loaded by the save above).
    const { stdout } = await execFileAsync(
      process.execPath,
      [
        join(ROOT, 'bin', 'run-ts.js'),
        join(ROOT, 'test', 'helpers', 'no-tfjs-child.ts'),
        JSON.stringify({
          dataDir: join(dir, 'data'),
          weights: weightsDir,
          logFile: join(dir, 'resolved.txt'),
        }),
      ],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 200_000 },
    );
    const run = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
      backend?: string;
      prediction?: number;
      resolved?: string[];
      required?: string[];
    };

    // Assess: the run went through the onnx engine, and nothing of @tensorflow was loaded.
    expect(run.backend).toBe('onnx');
    expect(run.prediction).toBe(200);
    expect(run.resolved?.some((u) => u.includes('/lib/model/extractor.ts'))).toBe(true);
    expect(run.resolved?.filter((u) => u.includes('@tensorflow'))).toEqual([]);
    expect(run.required?.filter((f) => f.includes('@tensorflow'))).toEqual([]);
  }, 240_000);
});
