import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readFeatureDir } from '../../features/local-dataset.ts';
import {
  DEFAULT_QUALITY_SETTINGS,
  type QualitySettings,
  trainHeadWithQuality,
} from '../../quality/assess.ts';
import { renderReportHtml } from '../../report/model-report.ts';
import { summarizeQuality } from '../../report/quality.ts';
import { formatClassificationReport, formatConfusionMatrix } from '../../training/metrics.ts';
import type { ReportDocument } from '../../training/model-document.ts';
import { DEFAULT_TARGET_PRECISION } from '../../training/thresholds.ts';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from '../../training/train.ts';
import { consoleLog, silentLog } from '../../util/log.ts';
import { numberFlag, parseCommandArgs, UsageError } from '../args.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';

/** Spec recorded when the features folder has no features.json / spec.txt. */
export const UNKNOWN_SPEC = 'unknown';

const HELP = `tlearn fit FEATURES_DIR --out DIR [options]

Fits the logistic-regression head (scikit-learn's LogisticRegression(solver="lbfgs"): L2,
multinomial for 3+ labels, intercept not penalized) on the features of FEATURES_DIR
({label}/**/*.npy, as written by tlearn extract), evaluates it on a stratified holdout, and
writes DIR/model.json, DIR/report.json, DIR/report.html and DIR/quality.json (duplicates,
conflicts across labels, leaks across the split, likely label errors: see tlearn quality).
Prints the classification report, the confusion matrix, whether L-BFGS converged and a
one-line data-quality summary.

options:
  --out DIR            where to write the model and report (created if missing)
  --C X                inverse regularization strength (default 1.0)
  --max-iter N         L-BFGS iteration limit (default 100)
  --tol X              stop when the largest gradient component is ≤ X (default 1e-4)
  --test-size F        fraction held out for evaluation, 0 ≤ F < 1 (default 0.2);
                       0 = fit on everything, with no test metrics
  --seed N             seed of the split (default 42)
  --refit              after evaluating, refit on all samples (the model ships those)
  --target-precision P precision the per-class confidence thresholds aim for on the held-out
                       part (default 0.95; predictions with threshold=auto abstain below them)
  --threads N          threads for the fit (default: CPUs, at most 8)
  --near-threshold X   cosine similarity from which two images are near duplicates in
                       quality.json (default 0.994)
  --no-group-split     do not keep duplicate groups on one side of the split (quality.json
                       then lists the leaks and the accuracy without them)
  --quiet              no progress on stderr

examples:
  tlearn fit features/ --out model/
  tlearn fit features/ --out model/ --C 0.1 --max-iter 500 --refit

exit codes: 0 ok (also when L-BFGS hit --max-iter: a warning says so), 1 failure (e.g. a label
with fewer than 2 images), 2 usage`;

const OPTIONS = {
  out: { type: 'string' },
  C: { type: 'string' },
  'max-iter': { type: 'string' },
  tol: { type: 'string' },
  'test-size': { type: 'string' },
  seed: { type: 'string' },
  refit: { type: 'boolean' },
  'target-precision': { type: 'string' },
  threads: { type: 'string' },
  quiet: { type: 'boolean' },
  'near-threshold': { type: 'string' },
  'no-group-split': { type: 'boolean' },
} as const;

/** Parses `tlearn fit` arguments into the features folder, output folder and options. */
export function parseFitArgs(argv: string[]): {
  dir: string;
  out: string;
  options: TrainOptions;
  threads: number | undefined;
  quiet: boolean;
  quality: Partial<QualitySettings>;
} {
  const { values, positionals } = parseCommandArgs(argv, OPTIONS);
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0
        ? 'FEATURES_DIR is missing'
        : `one FEATURES_DIR expected, got ${positionals.length}`,
    );
  const dir = positionals[0] as string;
  if (!values.out) throw new UsageError('--out DIR is required');
  const C = numberFlag('C', values.C, DEFAULT_TRAIN_OPTIONS.C, { min: Number.MIN_VALUE });
  const maxIter = numberFlag('max-iter', values['max-iter'], DEFAULT_TRAIN_OPTIONS.maxIter, {
    min: 1,
    integer: true,
  });
  const tol = numberFlag('tol', values.tol, DEFAULT_TRAIN_OPTIONS.tol, { min: 0 });
  const testSize = numberFlag('test-size', values['test-size'], DEFAULT_TRAIN_OPTIONS.testSize, { min: 0 });
  if (testSize >= 1) throw new UsageError(`--test-size must be below 1 (got ${testSize})`);
  const seed = numberFlag('seed', values.seed, DEFAULT_TRAIN_OPTIONS.seed, { integer: true });
  const targetPrecision = numberFlag(
    'target-precision',
    values['target-precision'],
    DEFAULT_TARGET_PRECISION,
    {
      min: Number.MIN_VALUE,
      max: 1,
    },
  );
  const threads =
    values.threads === undefined
      ? undefined
      : numberFlag('threads', values.threads, 1, { min: 1, max: 64, integer: true });
  return {
    dir,
    out: values.out,
    options: { C, maxIter, tol, testSize, seed, refitOnAll: values.refit === true, targetPrecision },
    threads,
    quiet: values.quiet === true,
    quality: {
      nearThreshold: numberFlag(
        'near-threshold',
        values['near-threshold'],
        DEFAULT_QUALITY_SETTINGS.nearThreshold,
        {
          min: 0,
          max: 1,
        },
      ),
      groupSplit: values['no-group-split'] !== true,
    },
  };
}

/** The text `tlearn fit` prints: summary, classification report, confusion matrix, convergence. */
export function formatFitSummary(report: ReportDocument): string {
  const lines: string[] = [];
  const c = report.counts;
  lines.push(
    `${c.total} samples, ${report.classes.length} labels: ${c.train} train / ${c.test} test (seed ${report.split.seed})`,
  );
  lines.push(`spec ${report.spec}`);
  lines.push('');
  if (report.evaluation === 'holdout' && report.macroAvg && report.weightedAvg && report.confusionMatrix) {
    lines.push(
      `accuracy ${((report.accuracy ?? 0) * 100).toFixed(2)} %   log loss ${(report.logLoss ?? 0).toFixed(4)}`,
    );
    lines.push('');
    lines.push(
      formatClassificationReport({
        perClass: report.perClass,
        accuracy: report.accuracy ?? 0,
        macroAvg: report.macroAvg,
        weightedAvg: report.weightedAvg,
        microAvg: report.microAvg,
      }),
    );
    lines.push(formatConfusionMatrix(report.confusionMatrix, report.classes));
  } else {
    lines.push('no test metrics: --test-size 0 fits on all samples and holds none out for evaluation');
    lines.push('');
  }
  const s = report.solver;
  const conv = (x: ReportDocument['solver']) =>
    x.converged
      ? `converged in ${x.nIter} iterations (${x.nEval} evaluations), objective ${x.objective.toPrecision(8)}`
      : `did NOT converge in ${x.nIter} iterations (objective ${x.objective.toPrecision(8)}): raise --max-iter`;
  lines.push(`L-BFGS ${conv(s)}`);
  if (report.refitSolver) lines.push(`refit on all samples: L-BFGS ${conv(report.refitSolver)}`);
  if (report.note && report.evaluation === 'holdout') lines.push(`note: ${report.note}`);
  return `${lines.join('\n')}\n`;
}

export const command: Command = {
  summary: 'fit the logistic-regression head on a features folder, offline',
  help: HELP,
  async run(argv) {
    const { dir, out, options, threads, quiet, quality: qualitySettings } = parseFitArgs(argv);
    const log = quiet ? silentLog : consoleLog;
    const t0 = performance.now();
    const features = await readFeatureDir(dir);
    const loadMs = performance.now() - t0;
    for (const s of features.skipped) log.warn(`skipped ${s.path}: ${s.detail}`);
    let spec = features.spec;
    if (spec === undefined) {
      spec = UNKNOWN_SPEC;
      log.warn(`${dir} has no features.json or spec.txt: the model's spec is recorded as '${UNKNOWN_SPEC}'`);
    }
    if (!quiet)
      console.error(
        `fit: ${features.X.n} samples × ${features.X.d} features, C ${options.C}, max-iter ${options.maxIter}, tol ${options.tol}`,
      );
    // Progress for long fits: at most one line a second, and only once a fit has run for a second.
    const fitStart = performance.now();
    let lastLine = fitStart;
    const { model, report, quality } = trainHeadWithQuality(
      {
        X: features.X,
        labels: features.labels,
        spec,
        options,
        loadMs,
        threads,
        // Only warnings (e.g. not converged); the summary below says the rest.
        log: { ...silentLog, warn: log.warn },
        onIteration: quiet
          ? undefined
          : (i) => {
              const now = performance.now();
              if (now - lastLine < 1000) return;
              lastLine = now;
              console.error(
                `fit${i.phase === 'refit' ? ' (refit)' : ''}: iteration ${i.iter}/${options.maxIter} objective ${i.objective.toPrecision(8)} max|g| ${i.gnorm.toExponential(2)}`,
              );
            },
      },
      // Data quality: duplicates (identical feature vectors, near copies), leaks, label errors.
      { keys: features.files, settings: qualitySettings },
      { dataset: null, version: null },
    );
    if (model.randomWeights)
      log.warn(
        `these features come from seeded RANDOM VGG16 weights (spec ${spec}): the model is a demo, not a real classifier`,
      );
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'model.json'), `${JSON.stringify(model)}\n`);
    await writeFile(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(out, 'report.html'), renderReportHtml(report, quality));
    await writeFile(join(out, 'quality.json'), `${JSON.stringify(quality, null, 2)}\n`);
    process.stdout.write(formatFitSummary(report));
    process.stdout.write(
      `data quality: ${summarizeQuality(quality)} (tlearn quality --file ${join(out, 'quality.json')})\n`,
    );
    process.stdout.write(`wrote ${join(out, 'model.json')}, report.json, report.html, quality.json\n`);
    return EXIT.OK;
  },
};
