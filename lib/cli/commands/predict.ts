import { existsSync, promises as fs } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { SpecMismatchError, ValidationError } from '../../errors.ts';
import {
  errorCode,
  extractInBatches,
  parseWeightsFlag,
  resolveLocalWeights,
} from '../../features/extract-files.ts';
import { listImageFiles } from '../../features/local-dataset.ts';
import {
  type FeatureSpec,
  featureDims,
  isRandomWeights,
  parseSpec,
  specPrecision,
} from '../../model/spec.ts';
import type { WeightsSource } from '../../model/types.ts';
import { checkHead, predictProba } from '../../training/head.ts';
import type { Head } from '../../training/types.ts';
import { parseJsonFile } from '../../util/json-file.ts';
import { consoleLog } from '../../util/log.ts';
import { numberFlag, parseCommandArgs, UsageError } from '../args.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import { createProgress } from '../progress.ts';
import { backendFlag, type ExtractDeps, loadRealExtractor } from './extract.ts';

const HELP = `usage: tlearn predict --model DIR IMAGES_OR_FOLDERS… [options]     offline, on this machine
       tlearn predict DATASET IMAGES…  [target options]                against a stack

Offline: classifies images with a head written by \`tlearn fit\` (DIR/model.json), computing
their VGG16 features here with the base model the head was trained on.

options (offline):
  --model DIR        folder holding model.json (or the path of model.json)
  --weights W        base model: a tfjs model folder, file://…, s3://… or random[:SEED]
                     (default: random:SEED when the model was trained on seeded random
                     weights, else the newest folder under ./.tlearn/base-models/)
  --top K            scores shown per image (default 5)
  --json             print JSON: { model, predictions: [{ image, label, confidence, scores }] }
  --batch N          images per forward pass, 1-64 (default 8)
  --backend B        tensorflow | wasm | cpu (default: the first that loads)
  -h, --help         this help

A head trained on int8 features (spec ending in /int8) runs the int8 engine, an fp32 one the
fp32 engine: the precision comes from the model, never from a flag.
The base model's spec must equal the one the head was trained on (weights, input size,
pooling, resize, precision), else the command stops with a spec mismatch.
exit codes: 0 all images predicted, 1 failure, 2 usage error, 3 some images failed`;

/**
 * The remote mode (`tlearn predict DATASET IMAGE…` against a stack) lives in
 * `./predict-remote.ts`, which must export this. It receives the command's argv untouched.
 */
export interface RemotePredictModule {
  runRemotePredict(argv: string[]): Promise<number>;
  /** Help of the remote form, shown under the offline one. */
  REMOTE_PREDICT_HELP?: string;
}

const REMOTE_MODULE = new URL('./predict-remote.ts', import.meta.url);

export const REMOTE_UNAVAILABLE =
  'tlearn predict: predicting against a stack is not available yet; use --model DIR (a folder written by tlearn fit)';

/** Loads the remote mode, or undefined while `predict-remote.ts` does not exist. */
async function loadRemote(): Promise<RemotePredictModule | undefined> {
  if (!existsSync(fileURLToPath(REMOTE_MODULE))) return undefined;
  return (await import(REMOTE_MODULE.href)) as RemotePredictModule;
}

// The remote form's help is part of `tlearn predict --help`; a broken or missing remote module
// must not break the offline mode, so failures here only leave the help shorter.
const remoteHelp = await loadRemote().then(
  (m) => m?.REMOTE_PREDICT_HELP,
  () => undefined,
);

/** model.json fields prediction needs (the trainer writes more; extra fields are kept). */
const HeadFile = z
  .object({
    classes: z.array(z.string().min(1)).min(2),
    coef: z.array(z.array(z.number().finite()).min(1)).min(1),
    intercept: z.array(z.number().finite()).min(1),
    spec: z.string().min(1),
    version: z.string().optional(),
    trainedAt: z.string().optional(),
  })
  .passthrough();

/** A head loaded from disk, with its parsed spec. */
export interface LoadedHead {
  head: Head;
  spec: FeatureSpec;
  path: string;
  version: string | undefined;
  trainedAt: string | undefined;
}

/**
 * Reads and checks a `model.json` (a folder holding one, or its path): ≥ 2 classes, scikit-learn
 * shapes (one coefficient row for two classes, one per class otherwise), rows as long as the
 * spec's feature dims. Throws ValidationError naming the problem.
 */
export async function loadHeadFile(dirOrFile: string): Promise<LoadedHead> {
  const path = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'model.json');
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    throw new ValidationError(`cannot read ${path}: is --model a folder written by tlearn fit?`, {
      cause: err,
    });
  }
  const file = parseJsonFile(text, HeadFile, path, 'a tlearn model');
  const { classes, coef, intercept, spec: specText } = file;
  const head: Head = { classes, coef, intercept, spec: specText };
  const spec = parseSpec(specText);
  try {
    checkHead(head);
  } catch (err) {
    throw new ValidationError(`${path}: ${(err as Error).message}`, { cause: err });
  }
  const d = featureDims(spec);
  if (coef.some((row) => row.length !== d))
    throw new ValidationError(
      `${path}: coefficient rows must have ${d} values, the dims of spec ${specText}`,
    );
  return {
    head,
    spec,
    path,
    version: file.version,
    trainedAt: file.trainedAt,
  };
}

export interface Prediction {
  image: string;
  label: string;
  confidence: number;
  scores: { label: string; probability: number }[];
}
export interface FailedPrediction {
  image: string;
  error: { code: string; message: string };
}

/** Weights to use for a head: the flag, else the head's own random seed, else the newest base model. */
export async function weightsFor(
  loaded: Pick<LoadedHead, 'spec'>,
  flag: string | undefined,
  baseModelsDir: string | undefined,
): Promise<WeightsSource> {
  if (flag !== undefined) return parseWeightsFlag(flag);
  const seed = /^random-(\d+)$/.exec(loaded.spec.weights)?.[1];
  // A head trained on random features can only ever match the same seeded weights.
  if (seed !== undefined) return { kind: 'random', seed: Number(seed) };
  return resolveLocalWeights(undefined, baseModelsDir ? { baseModelsDir } : {});
}

function shortPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel.startsWith('..') || rel === '' ? p : rel;
}

function table(rows: (Prediction | FailedPrediction)[]): string {
  const cells = rows.map((r) =>
    'error' in r
      ? [shortPath(r.image), '-', '-', `error: ${r.error.code}: ${r.error.message}`]
      : [
          shortPath(r.image),
          r.label,
          r.confidence.toFixed(3),
          r.scores.map((s) => `${s.label} ${s.probability.toFixed(3)}`).join('  '),
        ],
  );
  const head = ['IMAGE', 'LABEL', 'CONFIDENCE', 'SCORES'];
  const widths = head.map((h, c) => Math.max(h.length, ...cells.map((row) => (row[c] ?? '').length)));
  const fmt = (row: string[]) =>
    row
      .map((v, c) => (c === row.length - 1 ? v : v.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...cells.map(fmt)].join('\n');
}

async function runOffline(argv: string[], deps: Partial<ExtractDeps>): Promise<number> {
  const log = deps.log ?? consoleLog;
  const loadExtractor = deps.loadExtractor ?? loadRealExtractor;
  const { values, positionals } = parseCommandArgs(argv, {
    model: { type: 'string', short: 'm' },
    weights: { type: 'string' },
    top: { type: 'string' },
    json: { type: 'boolean' },
    batch: { type: 'string' },
    backend: { type: 'string' },
  });
  if (values.model === undefined) throw new UsageError('--model DIR is required');
  if (positionals.length === 0) throw new UsageError('give at least one image or folder');
  const top = numberFlag('top', values.top, 5, { min: 1, integer: true });
  const batchSize = numberFlag('batch', values.batch, 8, { min: 1, max: 64, integer: true });
  const backend = backendFlag(values.backend);

  const loaded = await loadHeadFile(String(values.model));
  const { head, spec } = loaded;
  const precision = specPrecision(spec);
  if (precision === 'int8' && backend !== undefined && backend !== 'onnx') {
    throw new UsageError(
      `this model was trained on int8 features, which only the onnx engine computes; drop --backend ${backend}`,
    );
  }
  if (spec.input[0] !== spec.input[1])
    throw new ValidationError(
      `the model's spec has a non-square input ${spec.input.join('x')}; not supported`,
    );
  const { files, skipped } = await listImageFiles(positionals);
  for (const s of skipped) log.warn(`skipped ${shortPath(s.path)}: ${s.reason} (${s.detail})`);
  if (files.length === 0) {
    console.error(`tlearn predict: no images in ${positionals.join(' ')}`);
    return EXIT.FAILURE;
  }

  const weights = await weightsFor(loaded, values.weights, deps.baseModelsDir);
  const extractor = await loadExtractor({
    weights,
    inputSize: spec.input[0],
    pooling: spec.pooling,
    resize: spec.resize,
    ...(backend ? { backend } : {}),
    ...(precision === 'int8' ? { precision } : {}),
    log,
  });
  try {
    if (extractor.specId !== head.spec) {
      const hint = isRandomWeights(spec)
        ? `--weights random:${spec.weights.slice('random-'.length)}`
        : `--weights with the base model whose weights id is ${spec.weights}`;
      throw new SpecMismatchError(
        `the model was trained on features of spec ${head.spec}, but these weights give ${extractor.specId}; use ${hint}`,
      );
    }
    const progress = values.json
      ? undefined
      : createProgress('predict', files.length, deps.progressStream ?? process.stderr);
    const results: (Prediction | FailedPrediction)[] = [];
    for await (const batch of extractInBatches(
      files.map((path) => ({ path })),
      extractor,
      { batchSize },
    )) {
      for (const r of batch) {
        if ('error' in r) {
          results.push({
            image: r.item.path,
            error: {
              code: errorCode(r.error),
              message: r.error instanceof Error ? r.error.message : String(r.error),
            },
          });
          continue;
        }
        const proba = predictProba(head, r.vector);
        const scores = head.classes
          .map((label, k) => ({ label, probability: proba[k] ?? 0 }))
          .sort((a, b) => b.probability - a.probability);
        const best = scores[0] ?? { label: '', probability: 0 };
        results.push({
          image: r.item.path,
          label: best.label,
          confidence: best.probability,
          scores: scores.slice(0, top),
        });
      }
      progress?.tick(batch.length);
    }
    progress?.done();
    if (values.json) {
      const model = {
        path: loaded.path,
        spec: head.spec,
        classes: head.classes,
        ...(loaded.version ? { version: loaded.version } : {}),
        ...(loaded.trainedAt ? { trainedAt: loaded.trainedAt } : {}),
      };
      console.log(JSON.stringify({ model, predictions: results }, null, 2));
    } else {
      console.log(table(results));
    }
    const failed = results.filter((r) => 'error' in r).length;
    if (failed === results.length) return EXIT.FAILURE;
    return failed > 0 ? EXIT.PARTIAL : EXIT.OK;
  } finally {
    extractor.dispose();
  }
}

/** Whether argv asks for the offline mode (`--model DIR` / `--model=DIR` / `-m DIR`). */
function isOffline(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--model' || a.startsWith('--model=') || a === '-m');
}

/** Builds `tlearn predict` with its dependencies (the real ones by default). */
export function createPredictCommand(
  deps: Partial<ExtractDeps> & { loadRemote?: () => Promise<RemotePredictModule | undefined> } = {},
): Command {
  return {
    summary: 'predict images: offline with --model DIR, or against a stack with a dataset name',
    help: remoteHelp ? `${HELP}\n\nagainst a stack: ${remoteHelp}` : HELP,
    async run(argv) {
      if (isOffline(argv)) return runOffline(argv, deps);
      const remote = await (deps.loadRemote ?? loadRemote)();
      if (remote === undefined) {
        console.error(REMOTE_UNAVAILABLE);
        return EXIT.USAGE;
      }
      return remote.runRemotePredict(argv);
    },
  };
}

/** `tlearn predict`: offline with `--model DIR`, else against a stack (predict-remote.ts). */
export const command: Command = createPredictCommand();
