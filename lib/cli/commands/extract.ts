import { relative, resolve } from 'node:path';
import { type ExtractFilesResult, extractFiles, resolveLocalWeights } from '../../features/extract-files.ts';
import { listLocalImages } from '../../features/local-dataset.ts';
import {
  DEFAULT_INPUT_SIZE,
  isRandomWeights,
  POOLINGS,
  type Pooling,
  type Precision,
  type ResizeKernel,
} from '../../model/spec.ts';
import type { BackendName, FeatureExtractor, WeightsSource } from '../../model/types.ts';
import { consoleLog, type Log } from '../../util/log.ts';
import { numberFlag, parseCommandArgs, precisionFlag, UsageError } from '../args.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import { createProgress } from '../progress.ts';

const BACKENDS: readonly BackendName[] = ['tensorflow', 'onnx', 'wasm', 'cpu'];

const HELP = `usage: tlearn extract IMAGES_OR_FOLDERS… --out DIR [options]

Turns images into VGG16 feature vectors, offline: one float32 .npy per image (loads with
numpy.load), laid out like the bucket's features/ prefix, ready for \`tlearn fit DIR\`.

  DIR/{label}/{file}.npy   one vector per image
  DIR/features.json        the feature spec, dims and counts (a folder never mixes specs)
  DIR/errors.jsonl         images that could not be used, with the reason

Labels come from folders (data/cat/1.jpg → cat) or Kaggle names (data/cat.12.jpg → cat).
Re-running skips images whose .npy is newer than the image.

options:
  --out DIR              output folder (required)
  --weights W            a tfjs model folder, file://…/model.json or s3://…; or random[:SEED]
                         for seeded random weights (testing only; seed 42 by default)
                         (default: the newest folder under ./.tlearn/base-models/, written by
                         tlearn base-model import|fetch)
  --pooling P            flatten | avg | max (default flatten: 4x4x512 = 8192 values at 150)
  --size N               square input size in pixels, 32-1024 (default ${DEFAULT_INPUT_SIZE})
  --batch N              images per forward pass, 1-64 (default 8)
  --backend B            tensorflow | wasm | cpu (default: the first that loads)
  --precision P          fp32 | int8 (default fp32). int8 runs a quantized VGG16 on onnxruntime:
                         2.2-2.6x faster whole job here (4x per forward pass), features ~2.5 %
                         from fp32, spec ending in /int8 (never mixed with fp32 features or
                         models; see the README, "Picking int8")
  --force                recompute features that are up to date
  -h, --help             this help

exit codes: 0 all images done, 1 failure (nothing usable), 2 usage error, 3 some images failed`;

/** Options of `loadExtractor` that this command sets (lib/model/extractor.ts). */
export interface ExtractorRequest {
  weights: WeightsSource;
  inputSize: number;
  pooling: Pooling;
  /** Resize kernel recorded in the spec. @default 'bilinear' */
  resize?: ResizeKernel;
  backend?: BackendName;
  /** @default 'fp32' */
  precision?: Precision;
  log?: Log;
}

/** What the command needs from outside; tests pass fakes. */
export interface ExtractDeps {
  loadExtractor(opts: ExtractorRequest): Promise<FeatureExtractor>;
  log: Log;
  /** Where progress is drawn. @default process.stderr */
  progressStream?: NodeJS.WriteStream;
  /** Where `--weights` defaults are looked for. @default ./.tlearn/base-models */
  baseModelsDir?: string;
}

/** Loads the real extractor lazily so `tlearn extract --help` does not load tfjs. */
export async function loadRealExtractor(opts: ExtractorRequest): Promise<FeatureExtractor> {
  const { loadExtractor } = await import('../../model/extractor.ts');
  return loadExtractor(opts);
}

/** Parses `--backend`. */
export function backendFlag(raw: unknown): BackendName | undefined {
  if (raw === undefined) return undefined;
  const b = String(raw) as BackendName;
  if (!BACKENDS.includes(b))
    throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')} (got '${b}')`);
  return b;
}

function shortPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel.startsWith('..') || rel === '' ? p : rel;
}

function summary(result: ExtractFilesResult, out: string, skipped: number): string {
  const lines = [
    `features: ${shortPath(out)}  spec ${result.spec}  (${result.dims} values each)`,
    ...(isRandomWeights(result.spec)
      ? ['  WARNING: seeded RANDOM weights: these features are for testing the pipeline only']
      : []),
    `  labels: ${
      Object.entries(result.labels)
        .map(([l, n]) => `${l} ${n}`)
        .join(', ') || 'none'
    }`,
    `  written ${result.written}, up to date ${result.upToDate}, failed ${result.failed.length}, skipped ${skipped}`,
  ];
  if (result.failed.length > 0) {
    lines.push(`failed images (also in ${shortPath(result.errorsPath ?? '')}):`);
    for (const f of result.failed.slice(0, 20)) lines.push(`  ${shortPath(f.path)}: ${f.reason}`);
    if (result.failed.length > 20) lines.push(`  … and ${result.failed.length - 20} more`);
  }
  return lines.join('\n');
}

/** Builds `tlearn extract` with its dependencies (the real ones by default). */
export function createExtractCommand(deps: Partial<ExtractDeps> = {}): Command {
  const loadExtractor = deps.loadExtractor ?? loadRealExtractor;
  const log = deps.log ?? consoleLog;
  return {
    summary: 'turn images into VGG16 feature vectors (.npy), offline',
    help: HELP,
    async run(argv) {
      const { values, positionals } = parseCommandArgs(argv, {
        out: { type: 'string', short: 'o' },
        weights: { type: 'string' },
        pooling: { type: 'string' },
        size: { type: 'string' },
        batch: { type: 'string' },
        backend: { type: 'string' },
        precision: { type: 'string' },
        force: { type: 'boolean' },
      });
      if (positionals.length === 0) throw new UsageError('give at least one image or folder');
      if (values.out === undefined) throw new UsageError('--out DIR is required');
      const out = resolve(String(values.out));
      const pooling = (values.pooling ?? 'flatten') as Pooling;
      if (!POOLINGS.includes(pooling))
        throw new UsageError(`--pooling must be one of ${POOLINGS.join(', ')} (got '${pooling}')`);
      const inputSize = numberFlag('size', values.size, DEFAULT_INPUT_SIZE, {
        min: 32,
        max: 1024,
        integer: true,
      });
      const batchSize = numberFlag('batch', values.batch, 8, { min: 1, max: 64, integer: true });
      const backend = backendFlag(values.backend);
      const precision = precisionFlag(values.precision, backend);

      const { images, skipped } = await listLocalImages(positionals);
      for (const s of skipped) log.warn(`skipped ${shortPath(s.path)}: ${s.reason} (${s.detail})`);
      if (images.length === 0) {
        console.error(`tlearn extract: no usable images in ${positionals.join(' ')}`);
        return EXIT.FAILURE;
      }
      const weights = await resolveLocalWeights(
        values.weights,
        deps.baseModelsDir ? { baseModelsDir: deps.baseModelsDir } : {},
      );
      const extractor = await loadExtractor({
        weights,
        inputSize,
        pooling,
        ...(backend ? { backend } : {}),
        ...(precision === 'int8' ? { precision } : {}),
        log,
      });
      try {
        const progress = createProgress('extract', images.length, deps.progressStream ?? process.stderr);
        const result = await extractFiles({
          images,
          extractor,
          outDir: out,
          batchSize,
          force: values.force === true,
          skippedCount: skipped.length,
          onProgress: (n, note) => progress.tick(n, note),
          log: { ...log, warn: log.debug },
        });
        progress.done();
        console.log(summary(result, out, skipped.length));
        if (result.written + result.upToDate === 0) return EXIT.FAILURE;
        return result.failed.length > 0 ? EXIT.PARTIAL : EXIT.OK;
      } finally {
        extractor.dispose();
      }
    },
  };
}

/** `tlearn extract`: local images → `{out}/{label}/{file}.npy`. */
export const command: Command = createExtractCommand();
