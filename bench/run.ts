/**
 * `npm run bench`: the benchmark suite. Prints a table, writes `bench/results.json`,
 * judges the targets of bench/lib/reference.ts. Never part of `npm test`. See docs/BENCHMARKS.md.
 *
 *   npm run bench                       full run (15-25 min on 2 cores)
 *   npm run bench -- --quick            about a minute: for a before/after check of one change
 *   npm run bench -- --only fit,decode  a subset (names, groups or name prefixes)
 *   npm run bench -- --help
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createFixtures } from './lib/fixtures.ts';
import { loadAverage, type MachineHeader, machineHeader } from './lib/machine.ts';
import {
  evaluateTargets,
  REFERENCE_DECODE_MS,
  REFERENCE_FORWARD_MS,
  REFERENCE_SKLEARN_FIT,
  type TargetResult,
} from './lib/reference.ts';
import { benchExitCode, runBenchmarks } from './lib/runner.ts';
import { headerLines, markdownTable, markdownTargets, targetLines, textTable } from './lib/table.ts';
import type { BenchContext, BenchMode, Benchmark, Figure } from './lib/types.ts';
import { createSuite } from './suites.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// The S3 emulator's SDK client runs in this process; its Node 20 support notice is only noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Format version of results.json. */
const RESULTS_FORMAT = 'tlearn-bench/1';

function help(benchmarks: readonly Benchmark[]): string {
  const rows = benchmarks.map(
    (b) => `  ${b.name.padEnd(34)} ${b.quick ? 'Q' : ' '}${b.byDefault ? ' ' : '+'} ${b.describe}`,
  );
  return `usage: npm run bench -- [options]

Measures decode, forward pass, tlearn extract, fit, API latency and cold start. Each figure is the
median of repeated runs after a warm-up, with min, max and the peak RSS of the process that did
the work. Writes bench/results.json and prints a table (stderr: progress).

options:
  --quick            small sizes and few repetitions (about a minute; Q below)
  --only NAMES       comma-separated benchmark names, groups (decode, forward, extract, fit, api)
                     or name prefixes (forward-wasm); includes opt-in benchmarks (+ below)
  --reps N           repetitions of every benchmark (overrides the defaults)
  --out FILE         results file (default bench/results.json)
  --markdown         print the table and targets as Markdown (for docs/BENCHMARKS.md)
  --from FILE        print a saved results file again (targets judged by the current rules)
  --list             print the benchmarks --quick/--only select, and exit
  --verbose          show the children's stderr
  --scale-n LIST     image counts of the scale benchmark (default 25000,100000,200000; training
                     at those ≤ 100000; env TLEARN_BENCH_SCALE_N, TLEARN_BENCH_SCALE_TRAIN_N)
  -h, --help         this help

benchmarks (Q: in --quick, +: opt-in, only with --only):
${rows.join('\n')}

exit codes: 0 every selected benchmark ran, 1 a benchmark failed, 2 usage error`;
}

/**
 * Whether `--only` tokens select a benchmark: its name, its group, a prefix ending before a `-`
 * (`forward-wasm`), or a figure it produces (`api-latency-c1`). A token that is itself a
 * benchmark's name selects only that one (`extract-cli` and `extract-cli-wasm` are two).
 */
function selects(
  tokens: readonly string[],
  b: Pick<Benchmark, 'name' | 'group'>,
  names: ReadonlySet<string>,
): boolean {
  return tokens.some((t) =>
    names.has(t) ? t === b.name : t === b.group || b.name.startsWith(`${t}-`) || t.startsWith(`${b.name}-`),
  );
}

/** Skipped figures, one line per reason (four forward figures of a missing engine share one). */
function skippedLines(skipped: readonly Figure[]): string[] {
  const byReason = new Map<string, string[]>();
  for (const f of skipped) byReason.set(f.error ?? '', [...(byReason.get(f.error ?? '') ?? []), f.name]);
  return [...byReason].map(([reason, names]) => `skipped ${names.join(', ')}: ${reason}`);
}

/** The printed report: header, table, skipped figures, targets (text or Markdown). */
function report(
  header: MachineHeader,
  modeName: string,
  figures: readonly Figure[],
  targets: readonly TargetResult[],
  markdown: boolean,
): string {
  const shown = figures.filter((f) => f.status !== 'skipped');
  const skipped = figures.filter((f) => f.status === 'skipped');
  const lines: string[] = [];
  if (markdown) {
    lines.push(...headerLines(header, modeName).map((l) => `${l}  `), '', markdownTable(shown), '');
    if (skipped.length) lines.push(...skippedLines(skipped).map((l) => `${l}  `), '');
    lines.push(markdownTargets(targets));
  } else {
    lines.push(...headerLines(header, modeName), '', textTable(shown));
    if (skipped.length) lines.push('', ...skippedLines(skipped));
    lines.push(
      '',
      'targets (speed and memory goals against the reference figures of bench/lib/reference.ts):',
      ...targetLines(targets),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `--from FILE`: prints a saved run again, its targets judged by the current rules. */
async function reprint(file: string, markdown: boolean): Promise<number> {
  const saved = JSON.parse(await readFile(file, 'utf8')) as {
    format?: unknown;
    mode: string;
    header: MachineHeader;
    figures: Figure[];
  };
  if (saved.format !== RESULTS_FORMAT) usageError(`${file} is not a ${RESULTS_FORMAT} results file`);
  process.stdout.write(
    report(saved.header, saved.mode, saved.figures, evaluateTargets(saved.figures), markdown),
  );
  return 0;
}

function usageError(message: string): never {
  process.stderr.write(`bench: ${message} (see --help)\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  const suite = createSuite();
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        only: { type: 'string' },
        reps: { type: 'string' },
        out: { type: 'string' },
        markdown: { type: 'boolean' },
        from: { type: 'string' },
        list: { type: 'boolean' },
        verbose: { type: 'boolean' },
        'scale-n': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    process.stdout.write(`${help(suite.benchmarks)}\n`);
    return 0;
  }
  if (typeof values.from === 'string') return reprint(resolve(values.from), values.markdown === true);
  const reps = values.reps === undefined ? undefined : Number(values.reps);
  if (reps !== undefined && !(Number.isInteger(reps) && reps >= 1 && reps <= 1000)) {
    usageError(`--reps must be a whole number 1-1000 (got '${String(values.reps)}')`);
  }
  // The scale benchmark reads its sizes from the environment (its children inherit it).
  if (typeof values['scale-n'] === 'string') process.env.TLEARN_BENCH_SCALE_N = values['scale-n'];
  const mode: BenchMode = {
    quick: values.quick === true,
    verbose: values.verbose === true,
    ...(reps ? { reps } : {}),
  };
  const tokens =
    typeof values.only === 'string'
      ? values.only
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  const names = new Set(suite.benchmarks.map((b) => b.name));
  const selected = suite.benchmarks.filter((b) =>
    tokens.length > 0 ? selects(tokens, b, names) : mode.quick ? b.quick : b.byDefault,
  );
  const unknown = tokens.filter((t) => !suite.benchmarks.some((b) => selects([t], b, names)));
  if (unknown.length > 0) usageError(`no benchmark matches ${unknown.map((t) => `'${t}'`).join(', ')}`);

  if (values.list) {
    process.stdout.write(`${selected.map((b) => b.name).join('\n')}\n`);
    return 0;
  }
  const outFile = resolve(typeof values.out === 'string' ? values.out : join(ROOT, 'bench', 'results.json'));
  const workDir = join(ROOT, '.tlearn', 'bench');
  await mkdir(workDir, { recursive: true });
  const started = performance.now();
  const progress = (m: string) => {
    const s = ((performance.now() - started) / 1000).toFixed(0).padStart(4);
    process.stderr.write(`[bench ${s}s] ${m}\n`);
  };
  const header = machineHeader(ROOT);
  const modeName = mode.quick ? 'quick' : 'full';
  for (const line of headerLines(header, modeName)) progress(line);

  const ctx: BenchContext = {
    mode,
    root: ROOT,
    workDir,
    progress,
    reps: (full, quick) => mode.reps ?? (mode.quick ? quick : full),
    fixtures: createFixtures({ root: ROOT, workDir, verbose: mode.verbose, progress }),
  };

  let figures: Figure[] = [];
  try {
    figures = await runBenchmarks(selected, ctx);
  } finally {
    await suite.cleanup();
  }

  header.loadAverageEnd = loadAverage();
  // Tensor backends / engines only (decode is always sharp; the fit's column holds its storage).
  header.backends = [
    ...new Set(
      figures
        .filter((f) => f.status === 'ok' && f.backend && ['forward', 'extract', 'api'].includes(f.group))
        .map((f) => f.backend as string),
    ),
  ];
  const targets = evaluateTargets(figures);
  const failed = figures.filter((f) => f.status === 'failed');
  const results = {
    format: RESULTS_FORMAT,
    mode: modeName,
    argv,
    header,
    totalWallMs: Math.round(performance.now() - started),
    figures,
    targets,
    references: {
      forwardMsPerImage150Batch1: REFERENCE_FORWARD_MS,
      decode500x375To150Ms: REFERENCE_DECODE_MS,
      sklearnFit20000x8192Binary: REFERENCE_SKLEARN_FIT,
    },
    failed: failed.map((f) => f.name),
  };
  await mkdir(dirname(outFile), { recursive: true });
  await writeFile(outFile, `${JSON.stringify(results, null, 2)}\n`);

  process.stdout.write(report(header, modeName, figures, targets, values.markdown === true));
  progress(`results written to ${outFile} (${Math.round((performance.now() - started) / 1000)} s)`);
  if (failed.length > 0) {
    progress(`${failed.length} benchmark(s) failed: ${failed.map((f) => f.name).join(', ')}`);
  }
  return benchExitCode(figures);
}

process.exitCode = await main(process.argv.slice(2));
