import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../lib/cli/main.ts';
import { encodeNpy } from '../../../lib/features/npy.ts';
import { formatClassificationReport, formatConfusionMatrix } from '../../../lib/training/metrics.ts';
import { parseModelDocument, parseReportDocument } from '../../../lib/training/model-document.ts';
import { mulberry32 } from '../../../lib/training/split.ts';

const SPEC = 'vgg16/random-7/64x64/avg/caffe/bilinear'; // avg pooling → 512 values
const D = 512;

/** Writes `{label}/{i}.npy` ReLU-like vectors whose first values depend on the label, + spec.txt. */
async function writeFeatures(dir: string, perLabel: Record<string, number>, withSpec = true): Promise<void> {
  const rand = mulberry32(5);
  const labels = Object.keys(perLabel);
  for (const [k, label] of labels.entries()) {
    await mkdir(join(dir, label), { recursive: true });
    for (let i = 0; i < (perLabel[label] as number); i++) {
      const v = new Float32Array(D);
      for (let j = 0; j < D; j++) v[j] = rand() < 0.6 ? 0 : rand();
      for (let j = 0; j < 4; j++) v[k * 4 + j] = (v[k * 4 + j] as number) + 3;
      await writeFile(join(dir, label, `${i}.jpg.npy`), encodeNpy(v));
    }
  }
  if (withSpec) await writeFile(join(dir, 'spec.txt'), `${SPEC}\n`);
}

describe('tlearn fit', () => {
  let root: string;
  let stdout: string;
  let stderr: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'tlearn-fit-'));
    stdout = '';
    stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    });
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
      stdout += `${a.join(' ')}\n`;
    });
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => {
      stderr += `${a.join(' ')}\n`;
    });
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(root, { recursive: true, force: true });
  });

  it('writes model.json, report.json and report.html and prints the report and confusion matrix', async () => {
    const features = join(root, 'features');
    const out = join(root, 'model');
    await writeFeatures(features, { cat: 10, dog: 10, emu: 10 });

    const code = await main(['fit', features, '--out', out, '--C', '0.5', '--seed', '3']);

    expect(code).toBe(0);
    const model = parseModelDocument(await readFile(join(out, 'model.json'), 'utf8'));
    const report = parseReportDocument(await readFile(join(out, 'report.json'), 'utf8'));
    expect((await stat(join(out, 'report.html'))).size).toBeGreaterThan(500);
    expect(model.classes).toEqual(['cat', 'dog', 'emu']);
    expect(model.spec).toBe(SPEC);
    expect(model.options).toMatchObject({ C: 0.5, seed: 3, testSize: 0.2, maxIter: 100, refitOnAll: false });
    expect(report.counts).toMatchObject({ total: 30, train: 24, test: 6 });
    expect(report.timingsMs.load).toBeGreaterThanOrEqual(0);
    // The printed tables are exactly the ones of the written report.
    const { macroAvg, weightedAvg, confusionMatrix } = report;
    if (!macroAvg || !weightedAvg || !confusionMatrix) throw new Error('report lacks test metrics');
    expect(stdout).toContain(
      formatClassificationReport({
        perClass: report.perClass,
        accuracy: report.accuracy ?? 0,
        macroAvg,
        weightedAvg,
      }),
    );
    expect(stdout).toContain(formatConfusionMatrix(confusionMatrix, report.classes));
    expect(stdout).toMatch(/L-BFGS converged in \d+ iterations/);
    expect(stderr).toContain('fit: 30 samples × 512 features');
  });

  it('fits on everything and says there are no test metrics with --test-size 0', async () => {
    const features = join(root, 'features');
    const out = join(root, 'model');
    await writeFeatures(features, { cat: 3, dog: 3 });

    const code = await main(['fit', features, '--out', out, '--test-size', '0', '--quiet']);

    expect(code).toBe(0);
    const report = parseReportDocument(await readFile(join(out, 'report.json'), 'utf8'));
    expect(report.evaluation).toBe('none');
    expect(stdout).toContain('no test metrics');
    expect(stderr).toBe('');
  });

  it('warns when L-BFGS stops at --max-iter, and still writes the model', async () => {
    const features = join(root, 'features');
    const out = join(root, 'model');
    await writeFeatures(features, { cat: 6, dog: 6 });

    const code = await main(['fit', features, '--out', out, '--max-iter', '1', '--tol', '0']);

    expect(code).toBe(0);
    expect(stdout).toContain('did NOT converge in 1 iterations');
    expect(stderr).toMatch(/warning: L-BFGS did not converge in 1 iterations/);
    const model = parseModelDocument(await readFile(join(out, 'model.json'), 'utf8'));
    expect(model.metrics).toMatchObject({ converged: false, nIter: 1 });
  });

  it('records the spec as unknown, with a warning, when the folder has none', async () => {
    const features = join(root, 'features');
    const out = join(root, 'model');
    await writeFeatures(features, { cat: 4, dog: 4 }, false);

    const code = await main(['fit', features, '--out', out]);

    expect(code).toBe(0);
    expect(stderr).toMatch(/no features.json or spec.txt/);
    expect(parseModelDocument(await readFile(join(out, 'model.json'), 'utf8')).spec).toBe('unknown');
  });

  it('exits 1 naming the label that has too few images', async () => {
    const features = join(root, 'features');
    await writeFeatures(features, { cat: 5, dog: 1 });

    const code = await main(['fit', features, '--out', join(root, 'model')]);

    expect(code).toBe(1);
    expect(stderr).toMatch(/too few for 'dog' \(1\)/);
  });

  it('exits 2 on usage errors', async () => {
    expect(await main(['fit', root])).toBe(2);
    expect(stderr).toMatch(/--out DIR is required/);
    expect(await main(['fit', root, '--out', 'x', '--test-size', '1'])).toBe(2);
    expect(await main(['fit', root, '--out', 'x', '--max-iter', '2.5'])).toBe(2);
    expect(await main(['fit', '--out', 'x'])).toBe(2);
  });
});
