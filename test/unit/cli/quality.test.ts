import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../lib/cli/args.ts';
import { runQuality } from '../../../lib/cli/commands/quality.ts';
import type { CliContext } from '../../../lib/cli/remote.ts';
import { trainHeadWithQuality } from '../../../lib/quality/assess.ts';
import { DEFAULT_TRAIN_OPTIONS } from '../../../lib/training/train.ts';
import { makePlantedDataset } from '../../helpers/quality-data.ts';

function context(): CliContext & { lines: string[] } {
  const lines: string[] = [];
  return { env: {}, cwd: process.cwd(), out: (l) => lines.push(l), err: () => {}, lines };
}

describe('tlearn quality --file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tlearn-quality-'));
    const ds = makePlantedDataset({
      classes: 2,
      perClass: 40,
      d: 64,
      seed: 9,
      exact: 1,
      near: 0,
      crossLabel: 1,
      mislabels: 1,
    });
    const { quality } = trainHeadWithQuality(
      {
        X: { data: ds.data, n: ds.n, d: ds.d },
        labels: ds.labels,
        spec: 's',
        options: DEFAULT_TRAIN_OPTIONS,
      },
      { keys: ds.keys, contentIds: ds.contentIds },
      { dataset: null, version: null },
    );
    await writeFile(join(dir, 'quality.json'), JSON.stringify(quality));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the tables of a fit folder’s quality.json', async () => {
    const ctx = context();
    expect(await runQuality(['--file', dir], ctx)).toBe(0);
    const text = ctx.lines.join('\n');
    expect(text).toMatch(/^data quality: \d+ images; 2 exact \+ 0 near duplicate group\(s\), 1 conflict/);
    expect(text).toMatch(
      /conflicts \(one image, several labels\)\n\s+labels\s+images\n\s+class-\d \/ class-\d/,
    );
    expect(text).toMatch(/note: nothing was moved or deleted/);
  });

  it('prints the document as it is with --json', async () => {
    const ctx = context();
    expect(await runQuality(['--file', join(dir, 'quality.json'), '--json'], ctx)).toBe(0);
    expect(JSON.parse(ctx.lines.join('\n'))).toMatchObject({ format: 'tlearn-quality', formatVersion: 1 });
  });

  it('refuses a dataset together with --file, and a malformed --version', async () => {
    await expect(runQuality(['pets', '--file', dir], context())).rejects.toThrow(UsageError);
    await expect(runQuality(['pets', '--version', 'latest'], context())).rejects.toThrow(
      /not a model version/,
    );
  });
});
