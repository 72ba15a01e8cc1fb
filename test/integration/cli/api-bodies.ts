/**
 * Response bodies of the HTTP API for the CLI's fake server, typed with the API's own types
 * (lib/api/*) and the trainer's document schemas, so that a change of the API's shapes breaks
 * these fixtures at compile time and the CLI tests at run time, instead of the CLI in the field.
 */
import type { DatasetStatus, getModelRoute, ModelSummary } from '../../../lib/api/datasets.ts';
import type { PredictionResponse } from '../../../lib/api/predict.ts';
import type { startTrainingRoute } from '../../../lib/api/trainings.ts';
import { parseModelDocument, parseReportDocument } from '../../../lib/training/model-document.ts';
import { summarizeReport } from '../../../lib/training/report-summary.ts';

export const VERSION = '20261128T103418Z-abc123';
export const PREVIOUS = '20261127T090000Z-old001';
export const NEWER = '20261128T110500Z-new001';
export const SPEC = 'vgg16/3f2a9c0d11e4b7a1/150x150/avg/caffe/bilinear';
export const RANDOM_SPEC = 'vgg16/random-42/32x32/avg/caffe/bilinear';
export const TRAINED_AT = '2026-11-28T10:34:18.000Z';
export const PROMOTED_AT = '2026-11-28T10:35:00.000Z';

/** The ISO time a version id encodes (what the API's `versionTime` gives). */
export function versionAt(version: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(version);
  if (!m) throw new Error(`not a version: ${version}`);
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`;
}

export function modelSummary(over: Partial<ModelSummary> = {}): ModelSummary {
  return {
    version: VERSION,
    promotedAt: PROMOTED_AT,
    trainedAt: TRAINED_AT,
    spec: SPEC,
    randomWeights: false,
    classes: ['cat', 'dog'],
    ...over,
  };
}

/** GET /datasets/pets: 12 images (10 ready, 1 failed, 1 pending), two labels. */
export function datasetStatus(over: Partial<DatasetStatus> = {}): DatasetStatus {
  return {
    dataset: 'pets',
    images: { total: 12, ready: 10, failed: 1, pending: 1, skipped: 2 },
    labels: {
      dog: { images: 5, ready: 4, failed: 1, pending: 0 },
      cat: { images: 7, ready: 6, failed: 0, pending: 1 },
    },
    featuresSettled: false,
    model: modelSummary(),
    lastTraining: { version: VERSION, at: versionAt(VERSION), promoted: true },
    lastExecution: null,
    ...over,
  };
}

/** POST /datasets/pets/trainings → 202. */
export function trainingStarted(
  startedAt = '2026-11-28T11:00:00.000Z',
): Awaited<ReturnType<typeof startTrainingRoute>> {
  const name = 'pets-manual-20261128T110000Z';
  return {
    dataset: 'pets',
    executionArn: `arn:aws:states:us-east-1:000000000000:execution:tlearn-train-local:${name}`,
    executionName: name,
    startedAt,
  };
}

/** model.json as the trainer writes it (validated by the trainer's schema). */
export function modelDocument(spec = SPEC) {
  return parseModelDocument({
    format: 'tlearn-head',
    formatVersion: 1,
    dataset: 'pets',
    version: VERSION,
    classes: ['cat', 'dog'],
    coef: [Array.from({ length: 512 }, (_, i) => (i % 7) / 100)],
    intercept: [0.25],
    spec,
    trainedAt: TRAINED_AT,
    options: { C: 1, maxIter: 1000, tol: 1e-4, testSize: 0.2, seed: 42, refitOnAll: false },
    metrics: { accuracy: 0.9, logLoss: 0.2512, nTrain: 40, nTest: 10, converged: true, nIter: 37 },
    randomWeights: spec.includes('/random-'),
  });
}

/** report.json as the trainer writes it (validated by the trainer's schema). */
export function reportDocument(spec = SPEC) {
  const scores = (precision: number, recall: number, f1: number, support: number) => ({
    precision,
    recall,
    f1,
    support,
  });
  return parseReportDocument({
    format: 'tlearn-report',
    formatVersion: 1,
    dataset: 'pets',
    version: VERSION,
    spec,
    classes: ['cat', 'dog'],
    evaluation: 'holdout',
    accuracy: 0.9,
    logLoss: 0.2512,
    confusionMatrix: [
      [5, 1],
      [0, 4],
    ],
    perClass: [
      { label: 'cat', ...scores(1, 0.8333, 0.9091, 6) },
      { label: 'dog', ...scores(0.8, 1, 0.8889, 4) },
    ],
    macroAvg: scores(0.9, 0.9167, 0.899, 10),
    weightedAvg: scores(0.92, 0.9, 0.901, 10),
    counts: {
      total: 50,
      train: 40,
      test: 10,
      perClass: [
        { label: 'cat', total: 30, train: 24, test: 6 },
        { label: 'dog', total: 20, train: 16, test: 4 },
      ],
    },
    split: { testSize: 0.2, seed: 42, stratified: true },
    solver: { name: 'lbfgs', nIter: 37, converged: true, objective: 12.5, nEval: 41 },
    timingsMs: { load: 120, fit: 30, evaluate: 1 },
    trainedAt: TRAINED_AT,
  });
}

/**
 * GET /datasets/pets/model, composed exactly as `getModelRoute` composes it: model.json without
 * its weights, the summary, current.json's `previous` and the report's summary.
 */
export function modelBody(
  opts: { spec?: string; previous?: string | null; report?: unknown } = {},
): Awaited<ReturnType<typeof getModelRoute>> {
  const spec = opts.spec ?? SPEC;
  const doc = modelDocument(spec);
  const { coef: _coef, intercept: _intercept, ...meta } = doc;
  const summary = modelSummary({ spec, randomWeights: doc.randomWeights, classes: doc.classes });
  return {
    dataset: 'pets',
    model: { ...meta, ...summary, previous: opts.previous === undefined ? PREVIOUS : opts.previous },
    report:
      opts.report === undefined
        ? summarizeReport(reportDocument(spec))
        : (opts.report as Awaited<ReturnType<typeof getModelRoute>>['report']),
  };
}

/** POST /datasets/pets/predictions → 200. */
export function predictionBody(
  label: string,
  over: Partial<PredictionResponse['model']> = {},
): PredictionResponse {
  return {
    dataset: 'pets',
    model: { version: VERSION, trainedAt: TRAINED_AT, spec: SPEC, randomWeights: false, ...over },
    label,
    confidence: 0.973,
    abstained: false,
    scores: [
      { label, probability: 0.973 },
      { label: 'dog', probability: 0.027 },
    ],
    timingsMs: { decode: 1.2, forward: 30.5, head: 0.1, total: 42 },
  };
}
