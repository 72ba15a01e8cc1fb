/**
 * The loop of `npm run bench` (bench/run.ts) and its exit rule, apart from the command line
 * so a unit test can drive them: every selected benchmark runs even when an earlier one throws (its
 * row says why), and the run fails (exit code 1) when any figure failed. Timings never fail a run.
 */
import { formatNumber } from './table.ts';
import type { BenchContext, Benchmark, Figure } from './types.ts';

/** The row of a benchmark that threw: status `failed`, the error's message. */
export function failedFigure(b: Pick<Benchmark, 'name' | 'group' | 'describe'>, err: unknown): Figure {
  return {
    name: b.name,
    group: b.group,
    title: b.describe,
    unit: '',
    better: 'lower',
    status: 'failed',
    error: err instanceof Error ? err.message : String(err),
  };
}

/**
 * Runs the benchmarks one after the other and returns every figure they produced (a benchmark
 * that throws yields one failed figure and the next one still runs). Each figure gets the wall
 * time of the benchmark that produced it.
 */
export async function runBenchmarks(selected: readonly Benchmark[], ctx: BenchContext): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const [i, b] of selected.entries()) {
    ctx.progress(`▶ ${b.name} (${i + 1}/${selected.length}): ${b.describe}`);
    const t = performance.now();
    let produced: Figure[];
    try {
      produced = await b.run(ctx);
      if (produced.length === 0) throw new Error('the benchmark produced no figure');
    } catch (err) {
      produced = [failedFigure(b, err)];
    }
    const wallMs = Math.round(performance.now() - t);
    for (const f of produced) {
      f.wallMs = wallMs;
      figures.push(f);
      ctx.progress(figureLine(f));
    }
  }
  return figures;
}

function figureLine(f: Figure): string {
  if (f.status === 'ok' && f.summary) {
    const s = f.summary;
    return `  ${f.name}: ${formatNumber(s.median)} ${f.unit} (min ${formatNumber(s.min)}, max ${formatNumber(
      s.max,
    )}, ${s.n} runs)${f.peakRssMB ? `, peak RSS ${f.peakRssMB} MB` : ''}`;
  }
  return `  ${f.name}: ${f.status.toUpperCase()}: ${f.error ?? ''}`;
}

/** Exit code of a run: 1 when a figure failed (a suite threw or reported a failure), else 0. */
export function benchExitCode(figures: readonly Figure[]): 0 | 1 {
  return figures.some((f) => f.status === 'failed') ? 1 : 0;
}

/** Groups that have a benchmark in the suite but none selected by `--quick` (should be none). */
export function groupsMissingFromQuick(benchmarks: readonly Benchmark[]): string[] {
  const all = new Set(benchmarks.filter((b) => b.byDefault).map((b) => b.group));
  const quick = new Set(benchmarks.filter((b) => b.quick).map((b) => b.group));
  return [...all].filter((g) => !quick.has(g)).sort();
}
