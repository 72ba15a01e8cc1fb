import { describe, expect, it } from 'vitest';
import { benchExitCode, groupsMissingFromQuick, runBenchmarks } from '../../../bench/lib/runner.ts';
import type { BenchContext, Benchmark, Figure } from '../../../bench/lib/types.ts';
import { createSuite } from '../../../bench/suites.ts';

function context(): BenchContext & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    mode: { quick: true, verbose: false },
    root: '/nowhere',
    workDir: '/nowhere',
    progress: (m) => lines.push(m),
    reps: (_full, quick) => quick,
    fixtures: {
      weights: () => Promise.reject(new Error('no weights in this test')),
      engines: () => Promise.resolve({ available: [], unavailable: {} }),
    },
  };
}

function okFigure(name: string): Figure {
  return {
    name,
    group: 'g',
    title: name,
    unit: 'ms',
    better: 'lower',
    status: 'ok',
    summary: { n: 1, median: 1, min: 1, max: 1, mean: 1 },
  };
}

function bench(name: string, run: Benchmark['run']): Benchmark {
  return { name, group: 'g', describe: name, quick: true, byDefault: true, run };
}

describe('the benchmark runner', () => {
  it('records a suite that throws as failed, still runs the next one and exits with 1', async () => {
    // prepare
    const ran: string[] = [];
    const suites = [
      bench('throws', async () => {
        ran.push('throws');
        throw new Error('403 Forbidden: this API key is unknown');
      }),
      bench('fine', async () => {
        ran.push('fine');
        return [okFigure('fine')];
      }),
    ];

    // act
    const figures = await runBenchmarks(suites, context());

    // assess
    expect(ran).toEqual(['throws', 'fine']);
    expect(figures.map((f) => [f.name, f.status])).toEqual([
      ['throws', 'failed'],
      ['fine', 'ok'],
    ]);
    expect(figures[0]?.error).toContain('403 Forbidden');
    expect(benchExitCode(figures)).toBe(1);
  });

  it('fails the run when a suite reports a failed figure or produces none', async () => {
    // prepare
    const failedRow = bench('half', async () => [okFigure('a'), { ...okFigure('b'), status: 'failed' }]);
    const empty = bench('empty', async () => []);

    // act
    const a = await runBenchmarks([failedRow], context());
    const b = await runBenchmarks([empty], context());

    // assess
    expect(benchExitCode(a)).toBe(1);
    expect(b).toHaveLength(1);
    expect(b[0]?.status).toBe('failed');
    expect(benchExitCode(b)).toBe(1);
  });

  it('exits with 0 when every suite ran, skipped figures included', async () => {
    // prepare
    const suites = [
      bench('ok', async () => [okFigure('ok')]),
      bench('skip', async () => [{ ...okFigure('skip'), status: 'skipped', error: 'engine missing' }]),
    ];

    // act
    const figures = await runBenchmarks(suites, context());

    // assess
    expect(benchExitCode(figures)).toBe(0);
    expect(figures.every((f) => typeof f.wallMs === 'number')).toBe(true);
  });

  it('runs at least one benchmark of every group in --quick', () => {
    // prepare
    const suite = createSuite();

    // act
    const missing = groupsMissingFromQuick(suite.benchmarks);

    // assess
    expect(missing).toEqual([]);
  });
});
