import { InsufficientDataError, ValidationError } from '../errors.ts';
import type { Log } from '../util/log.ts';
import { type CompactMatrix, isCompact } from './compact-matrix.ts';
import { argmaxRows, headFromFit, predictProba, predictProbaCompactRow } from './head.ts';
import { type FitDetails, fitLogisticRegression } from './logistic.ts';
import { classificationReport, confusionMatrix, logLoss } from './metrics.ts';
import { type ModelDocument, type ReportDocument, specIsRandom } from './model-document.ts';
import type { FitPool } from './parallel.ts';
import { stratifiedGroupSplit, stratifiedSplit } from './split.ts';
import {
  computeThresholds,
  DEFAULT_TARGET_PRECISION,
  type ThresholdReport,
  thresholdsForModel,
} from './thresholds.ts';
import { DEFAULT_FIT_OPTIONS, type FitOptions, type Matrix } from './types.ts';

/**
 * Options of a training run. Defaults (`DEFAULT_TRAIN_OPTIONS`): scikit-learn's C 1, 100 iterations,
 * tol 1e-4, and the recipe's 20 % test, seed 42 (docs/ARCHITECTURE.md "Training").
 */
export interface TrainOptions extends FitOptions {
  /** Fraction held out for evaluation; 0 = no holdout (and no test metrics). */
  testSize: number;
  seed: number;
  /** After evaluating, fit again on all samples and ship those coefficients. */
  refitOnAll: boolean;
  /** Precision the per-class thresholds aim for on the held-out part. @default DEFAULT_TARGET_PRECISION */
  targetPrecision?: number;
}

export const DEFAULT_TRAIN_OPTIONS: TrainOptions = {
  ...DEFAULT_FIT_OPTIONS,
  testSize: 0.2,
  seed: 42,
  refitOnAll: false,
};

/** Minimum samples per label: one to train on and one to test on. */
export const MIN_SAMPLES_PER_LABEL = 2;

/** Input of {@link trainHead}. */
export interface TrainHeadInput {
  /** n×d features, one row per sample: dense, or compact (what the trainer Lambda loads). */
  X: Matrix | CompactMatrix;
  /** Label of each row. */
  labels: readonly string[];
  /** Feature spec string of every row (the caller checked they are all the same). */
  spec: string;
  options: TrainOptions;
  log?: Log;
  dataset?: string;
  version?: string;
  /** Image key of each row: the report then lists the held-out predictions (optional). */
  keys?: readonly string[];
  /** Milliseconds spent loading the features, to put in the report. */
  loadMs?: number;
  /** Clock (tests pin it). @default () => new Date() */
  now?: () => Date;
  /** Worker threads for the fit (see FitRunOptions.threads). */
  threads?: number;
  /** Worker threads to borrow for the fits (see FitRunOptions.pool). @default threads of their own */
  pool?: FitPool;
  /**
   * Duplicate groups (same id ≥ 0 = copies of one image, -1 = none): the split keeps each group
   * on one side (see `stratifiedGroupSplit`). @default no groups
   */
  groups?: Int32Array;
  /** Progress of each L-BFGS iteration (`phase` says which fit). */
  onIteration?: (info: { phase: 'fit' | 'refit'; iter: number; objective: number; gnorm: number }) => void;
}

/**
 * Compares strings by Unicode code points, like numpy's sort of `classes_` (JS's default sort
 * compares UTF-16 units, which orders characters beyond U+FFFF differently).
 */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const cx = x.value.codePointAt(0) as number;
    const cy = y.value.codePointAt(0) as number;
    if (cx !== cy) return cx - cy;
  }
}

/**
 * The training recipe, shared by the trainer Lambda and `tlearn fit`: checks there is enough
 * data (≥ 2 labels, ≥ 2 samples per label), sorts the classes, makes a stratified split, fits
 * the logistic-regression head on the train part, evaluates it on the test part, optionally
 * refits on everything, and returns `model.json` and `report.json` as documents. Pure: no I/O.
 *
 * @throws InsufficientDataError naming the labels that are short of samples
 * @throws ValidationError when shapes or options are wrong
 */
export function trainHead(input: TrainHeadInput): {
  model: ModelDocument;
  report: ReportDocument;
  details: TrainDetails;
} {
  const { labels, options } = input;
  const now = input.now ?? (() => new Date());
  checkTrainInput(input);
  const { classes, countByLabel } = classesOf(labels);
  const index = new Map(classes.map((c, k) => [c, k]));
  const y = Int32Array.from(labels, (l) => index.get(l) as number);

  const { train, test, grouped } = input.groups
    ? stratifiedGroupSplit(y, input.groups, options.testSize, options.seed)
    : { ...stratifiedSplit(y, options.testSize, options.seed), grouped: false };
  const run = fitAndEvaluate(input, y, classes, train, test);

  const trainedAt = now().toISOString();
  const split = { y, train, test };
  return {
    model: modelDocument(input, classes, run, split, trainedAt),
    report: reportDocument(input, classes, countByLabel, run, split, trainedAt),
    details: { y, train, test, grouped, testPredicted: run.metrics?.yPred ?? new Int32Array(0) },
  };
}

/** @throws ValidationError when the labels or keys do not match the rows, or the test size is out of range */
function checkTrainInput({ X, labels, keys, options }: TrainHeadInput): void {
  if (labels.length !== X.n) throw new ValidationError(`${labels.length} labels for ${X.n} feature rows`);
  if (keys !== undefined && keys.length !== X.n)
    throw new ValidationError(`${keys.length} image keys for ${X.n} feature rows`);
  if (!(options.testSize >= 0 && options.testSize < 1))
    throw new ValidationError(`test size must be a fraction in [0, 1) (got ${options.testSize})`);
}

/**
 * The sorted classes and the count of each.
 *
 * @throws InsufficientDataError with fewer than 2 labels or a label short of MIN_SAMPLES_PER_LABEL
 */
function classesOf(labels: readonly string[]): { classes: string[]; countByLabel: Map<string, number> } {
  const countByLabel = new Map<string, number>();
  for (const l of labels) countByLabel.set(l, (countByLabel.get(l) ?? 0) + 1);
  const classes = [...countByLabel.keys()].sort(compareCodePoints);
  if (classes.length < 2) {
    throw new InsufficientDataError(
      classes.length === 0
        ? 'no samples to train on: add images in at least 2 label folders'
        : `only one label ('${classes[0]}') found: training needs at least 2 labels with at least ${MIN_SAMPLES_PER_LABEL} images each`,
    );
  }
  const short = classes.filter((c) => (countByLabel.get(c) ?? 0) < MIN_SAMPLES_PER_LABEL);
  if (short.length > 0) {
    const list = short.map((c) => `'${c}' (${countByLabel.get(c)})`).join(', ');
    throw new InsufficientDataError(
      `every label needs at least ${MIN_SAMPLES_PER_LABEL} usable images; too few for ${list}: add images to ${short.length === 1 ? 'that label' : 'those labels'} or remove ${short.length === 1 ? 'it' : 'them'}`,
    );
  }
  return { classes, countByLabel };
}

/** The split of a training: class index of every row, and the train and held-out rows. */
interface Split {
  y: Int32Array;
  train: Int32Array;
  test: Int32Array;
}

/** What {@link fitAndEvaluate} did: the evaluated fit, the shipped one, and their metrics. */
interface FitRun {
  /** The fit on the train rows (all rows without a holdout), which the metrics evaluate. */
  fit: FitDetails;
  /** The coefficients shipped: `fit`, or the refit on all rows (`refitOnAll`). */
  final: FitDetails;
  /** Held-out metrics, null without a holdout. */
  metrics: Evaluation | null;
  thresholds: ThresholdReport | undefined;
  fitMs: number;
  evaluateMs: number;
  refitMs: number | undefined;
}

/**
 * Fits the head on the train rows, evaluates it on the held-out rows (metrics and per-class
 * thresholds), and refits on all rows when `refitOnAll` asks and there was a holdout.
 */
function fitAndEvaluate(
  input: TrainHeadInput,
  y: Int32Array,
  classes: string[],
  train: Int32Array,
  test: Int32Array,
): FitRun {
  const { X, spec, options, log } = input;
  const K = classes.length;
  const fitOpts = {
    C: options.C,
    maxIter: options.maxIter,
    tol: options.tol,
    threads: input.threads,
    ...(input.pool ? { pool: input.pool } : {}),
  };
  log?.info('fitting the head', {
    samples: X.n,
    train: train.length,
    test: test.length,
    classes: K,
    dims: X.d,
  });
  let t0 = performance.now();
  const fit = fitLogisticRegression(X, y, K, {
    ...fitOpts,
    rows: test.length > 0 ? train : undefined,
    onIteration: input.onIteration && ((i) => input.onIteration?.({ phase: 'fit', ...i })),
  });
  const fitMs = performance.now() - t0;
  log?.info('fit done', {
    nIter: fit.nIter,
    converged: fit.converged,
    nEval: fit.nEval,
    ms: Math.round(fitMs),
  });
  if (!fit.converged)
    log?.warn(`L-BFGS did not converge in ${fit.nIter} iterations; raise maxIter for a tighter fit`);

  t0 = performance.now();
  const head = headFromFit(classes, fit, spec);
  const evaluated = test.length > 0;
  let metrics: Evaluation | null = null;
  if (evaluated) metrics = evaluate(head, X, y, test, classes);
  const evaluateMs = performance.now() - t0;
  // Per-class thresholds, so a prediction can answer "none of these", from the held-out predictions.
  const thresholds =
    metrics === null
      ? undefined
      : computeThresholds(
          metrics.yTrue,
          metrics.proba,
          classes,
          options.targetPrecision ?? DEFAULT_TARGET_PRECISION,
        );

  let final: FitDetails = fit;
  let refitMs: number | undefined;
  if (options.refitOnAll && evaluated) {
    t0 = performance.now();
    final = fitLogisticRegression(X, y, K, {
      ...fitOpts,
      onIteration: input.onIteration && ((i) => input.onIteration?.({ phase: 'refit', ...i })),
    });
    refitMs = performance.now() - t0;
    log?.info('refit on all samples done', { nIter: final.nIter, converged: final.converged });
  }
  return { fit, final, metrics, thresholds, fitMs, evaluateMs, refitMs };
}

/** `model.json`: the shipped coefficients, the options and headline metrics. */
function modelDocument(
  input: TrainHeadInput,
  classes: string[],
  { fit, final, metrics, thresholds }: FitRun,
  { train, test }: Split,
  trainedAt: string,
): ModelDocument {
  const { X, spec, options } = input;
  return {
    format: 'tlearn-head',
    formatVersion: 1,
    ...(input.dataset !== undefined ? { dataset: input.dataset } : {}),
    ...(input.version !== undefined ? { version: input.version } : {}),
    classes,
    coef: final.coef,
    intercept: final.intercept,
    spec,
    trainedAt,
    options: {
      C: options.C,
      maxIter: options.maxIter,
      tol: options.tol,
      testSize: options.testSize,
      seed: options.seed,
      refitOnAll: options.refitOnAll,
    },
    metrics: {
      accuracy: metrics?.accuracy ?? null,
      logLoss: metrics?.logLoss ?? null,
      nTrain: final === fit ? train.length : X.n,
      nTest: test.length,
      converged: final.converged,
      nIter: final.nIter,
    },
    randomWeights: specIsRandom(spec),
    ...(thresholds ? { thresholds: thresholdsForModel(thresholds) } : {}),
  };
}

/** `report.json`: held-out metrics, counts per class and split side, solver runs and timings. */
function reportDocument(
  input: TrainHeadInput,
  classes: string[],
  countByLabel: ReadonlyMap<string, number>,
  { fit, final, metrics, thresholds, fitMs, evaluateMs, refitMs }: FitRun,
  { y, train, test }: Split,
  trainedAt: string,
): ReportDocument {
  const { X, spec, options } = input;
  const K = classes.length;
  const evaluated = test.length > 0;
  const trainCount = new Array<number>(K).fill(0);
  const testCount = new Array<number>(K).fill(0);
  for (const i of train) trainCount[y[i] as number] = (trainCount[y[i] as number] as number) + 1;
  for (const i of test) testCount[y[i] as number] = (testCount[y[i] as number] as number) + 1;
  return {
    format: 'tlearn-report',
    formatVersion: 1,
    ...(input.dataset !== undefined ? { dataset: input.dataset } : {}),
    ...(input.version !== undefined ? { version: input.version } : {}),
    spec,
    classes,
    evaluation: evaluated ? 'holdout' : 'none',
    ...(evaluated
      ? final !== fit
        ? {
            note: `metrics are on the ${test.length} held-out samples, from the fit on the ${train.length} others; the model's coefficients come from a refit on all ${X.n} samples`,
          }
        : {}
      : {
          note: 'no holdout (test size 0): the head was fit on all samples and there are no test metrics',
        }),
    accuracy: metrics?.accuracy ?? null,
    logLoss: metrics?.logLoss ?? null,
    confusionMatrix: metrics?.confusionMatrix ?? null,
    perClass: metrics?.report.perClass ?? [],
    macroAvg: metrics?.report.macroAvg ?? null,
    weightedAvg: metrics?.report.weightedAvg ?? null,
    ...(metrics?.report.microAvg ? { microAvg: metrics.report.microAvg } : {}),
    counts: {
      total: X.n,
      train: train.length,
      test: test.length,
      perClass: classes.map((label, k) => ({
        label,
        total: countByLabel.get(label) ?? 0,
        train: trainCount[k] as number,
        test: testCount[k] as number,
      })),
    },
    split: { testSize: options.testSize, seed: options.seed, stratified: true },
    solver: solverOf(fit),
    ...(final !== fit ? { refitSolver: solverOf(final) } : {}),
    timingsMs: {
      ...(input.loadMs !== undefined ? { load: round(input.loadMs) } : {}),
      fit: round(fitMs),
      evaluate: round(evaluateMs),
      ...(refitMs !== undefined ? { refit: round(refitMs) } : {}),
    },
    trainedAt,
    ...(metrics && input.keys ? { predictions: heldOutPredictions(metrics, test, input.keys, classes) } : {}),
    ...(thresholds ? { thresholds } : {}),
  };
}

/** A fit's solver run, as the report lists it. */
function solverOf(f: FitDetails): ReportDocument['solver'] {
  return {
    name: 'lbfgs' as const,
    nIter: f.nIter,
    converged: f.converged,
    objective: f.objective,
    nEval: f.nEval,
  };
}

/** How a training split and classified its rows (for the quality pass). */
export interface TrainDetails {
  /** Class index of every row (in `classes` order). */
  y: Int32Array;
  train: Int32Array;
  test: Int32Array;
  /** Whether the split kept duplicate groups together (`groups` had a group of 2+ rows). */
  grouped: boolean;
  /** Predicted class of each `test` row by the evaluated fit. */
  testPredicted: Int32Array;
}

interface Evaluation {
  /** Test rows × K probabilities, row-major, in `test` order (thresholds, held-out predictions). */
  proba: Float64Array;
  yTrue: Int32Array;
  yPred: Int32Array;
  accuracy: number;
  logLoss: number;
  confusionMatrix: number[][];
  report: ReturnType<typeof classificationReport>;
}

/** Test metrics of a head on the rows `test` (read in place, no copy of the matrix). */
function evaluate(
  head: ReturnType<typeof headFromFit>,
  X: Matrix | CompactMatrix,
  y: Int32Array,
  test: Int32Array,
  classes: string[],
): Evaluation {
  const K = classes.length;
  const proba = new Float64Array(test.length * K);
  const yTrue = new Int32Array(test.length);
  test.forEach((i, r) => {
    if (isCompact(X)) predictProbaCompactRow(head, X, i, proba, r * K);
    else proba.set(predictProba(head, X.data.subarray(i * X.d, (i + 1) * X.d)), r * K);
    yTrue[r] = y[i] as number;
  });
  const yPred = argmaxRows(proba, K);
  const report = classificationReport(yTrue, yPred, classes);
  return {
    proba,
    yTrue,
    yPred,
    accuracy: report.accuracy,
    logLoss: logLoss(yTrue, proba, K),
    confusionMatrix: confusionMatrix(yTrue, yPred, K),
    report,
  };
}

/** The held-out rows as report entries (probabilities to 6 decimals: the report stays small). */
function heldOutPredictions(
  m: Evaluation,
  test: Int32Array,
  keys: readonly string[],
  classes: readonly string[],
): NonNullable<ReportDocument['predictions']> {
  const K = classes.length;
  return Array.from(test, (i, r) => ({
    key: keys[i] ?? '',
    true: classes[m.yTrue[r] as number] ?? '',
    predicted: classes[m.yPred[r] as number] ?? '',
    probabilities: Array.from(m.proba.subarray(r * K, (r + 1) * K), (p) => Math.round(p * 1e6) / 1e6),
  }));
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
