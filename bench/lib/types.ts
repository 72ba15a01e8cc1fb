/**
 * Shapes of the benchmark suite: one `Figure` per number in the table and in
 * `bench/results.json`, produced by a `Benchmark` (see `bench/suites.ts`).
 */
import type { Summary } from './stats.ts';

/** One measured number (with its spread), as written to results.json. */
export interface Figure {
  /** Stable id, usable with `--only` (e.g. `forward-wasm-150-flatten-b1`). */
  name: string;
  /** Family (`decode`, `forward`, `extract`, `fit`, `api`), also usable with `--only`. */
  group: string;
  /** What it measures, for people. */
  title: string;
  /** Unit of `summary` (`ms/image`, `images/s`, `ms`, `req/s`). */
  unit: string;
  /** Whether a smaller number is better. */
  better: 'lower' | 'higher';
  status: 'ok' | 'failed' | 'skipped';
  /** Median/min/max over the repeated runs after warm-up (absent when not ok). */
  summary?: Summary;
  /** Tensor backend / engine the figure was measured with, where one applies. */
  backend?: string;
  /** Largest peak RSS of the process that did the work, in MB (its `process.resourceUsage().maxRSS`). */
  peakRssMB?: number;
  /** What was measured (sizes, reps, warm-ups). */
  params?: Record<string, unknown>;
  /** Other numbers of the run (percentiles, solver iterations, load time…). */
  extra?: Record<string, unknown>;
  /** Short remark shown in the table. */
  note?: string;
  /** Why it failed or was skipped. */
  error?: string;
  /** Wall time the benchmark took, warm-ups and setup included. */
  wallMs?: number;
}

/** Sizes of a run: `--quick` makes everything smaller. */
export interface BenchMode {
  quick: boolean;
  /** `--reps N`: overrides every benchmark's repetition count. */
  reps?: number;
  /** Forward every child's stderr (`--verbose`). */
  verbose: boolean;
}

/** What a benchmark gets to run with. */
export interface BenchContext {
  mode: BenchMode;
  /** Repository root (absolute). */
  root: string;
  /** Where generated inputs are cached between runs (`.tlearn/bench/`, gitignored). */
  workDir: string;
  /** A progress line on stderr. */
  progress(message: string): void;
  /** Repetitions for a benchmark: `--reps`, else `quick` in quick mode, else `full`. */
  reps(full: number, quick: number): number;
  /** Shared, lazily prepared inputs. */
  fixtures: BenchFixtures;
}

/** Inputs several benchmarks share, prepared once per run (and cached on disk). */
export interface BenchFixtures {
  /** Real-size VGG16 weights (seeded random values) saved as a tfjs layers model: the folder and its id. */
  weights(): Promise<{ dir: string; weightsId: string }>;
  /** Which extraction engines load on this machine (`wasm`, `onnx`, …) and why the others do not. */
  engines(): Promise<EngineAvailability>;
}

/** Engines probed in a child process. */
export interface EngineAvailability {
  available: string[];
  unavailable: Record<string, string>;
}

/** A runnable entry of the suite. */
export interface Benchmark {
  /** Name for `--only` (a figure name or a prefix of several). */
  name: string;
  group: string;
  /** One line for `--help`. */
  describe: string;
  /** Runs in `--quick` mode. */
  quick: boolean;
  /** Runs without `--only` (opt-in benchmarks like the 24-second cpu backend pass are false). */
  byDefault: boolean;
  run(ctx: BenchContext): Promise<Figure[]>;
}
