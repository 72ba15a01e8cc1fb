/**
 * Which base weights the local stack runs with: an explicit `--weights`, else the newest imported
 * model, else a fetch attempt, else seeded random weights, and the notice printed for that fallback.
 */
import { join } from 'node:path';
import { ENV } from '../config.ts';
import { DEFAULT_RANDOM_SEED, findNewestBaseModel, parseWeightsFlag } from '../features/extract-files.ts';
import type { WeightsSource } from '../model/types.ts';
import type { FetchOutcome } from './fetch-weights.ts';
import { displayPath, wrapText } from './stack-text.ts';

/** Which base weights the stack runs with. */
export interface ResolvedWeights {
  source: WeightsSource;
  /** One line for humans. */
  description: string;
  /** Set when falling back to random weights because none were found. */
  fallback: boolean;
  /** Why fetching the real weights failed, when it was tried. */
  fetchError?: string;
}

/**
 * Decides the base weights: an explicit `--weights`, else the newest imported model under
 * `{dataDir}/base-models/`, else seeded random weights (offline fallback, announced loudly).
 */
export async function resolveStackWeights(
  flag: string | undefined,
  dataDir: string,
  opts: { fetch?: (baseModelsDir: string) => Promise<FetchOutcome> } = {},
): Promise<ResolvedWeights> {
  if (flag !== undefined) {
    const source = await parseWeightsFlag(flag);
    return {
      source,
      description:
        source.kind === 'random'
          ? `seeded RANDOM weights (random:${source.seed}), as asked`
          : `VGG16 weights from ${source.uri}`,
      fallback: false,
    };
  }
  const newest = await findNewestBaseModel(join(dataDir, 'base-models'));
  if (newest !== undefined) {
    return {
      source: { kind: 'uri', uri: newest },
      description: `VGG16 ImageNet weights from ${newest}`,
      fallback: false,
    };
  }
  // Online, the first start gets the real weights; offline this fails within a second or two.
  const fetched = opts.fetch ? await opts.fetch(join(dataDir, 'base-models')) : undefined;
  if (fetched?.ok) {
    return {
      source: { kind: 'uri', uri: fetched.dir },
      description: `VGG16 ImageNet weights fetched to ${fetched.dir}`,
      fallback: false,
    };
  }
  return {
    source: { kind: 'random', seed: DEFAULT_RANDOM_SEED },
    description: `seeded RANDOM weights (random:${DEFAULT_RANDOM_SEED}): no imported VGG16 weights`,
    fallback: true,
    ...(fetched && !fetched.ok ? { fetchError: fetched.reason } : {}),
  };
}

/** The notice printed once when the stack falls back to random weights. */
export function randomWeightsNotice(dataDir: string, seed: number, fetchError?: string): string {
  const dir = displayPath(join(dataDir, 'base-models'));
  const lines = [
    'REAL VGG16 WEIGHTS ARE NOT AVAILABLE',
    `No imported weights under ${dir}/${fetchError ? ', and fetching them failed:' : '.'}`,
    ...(fetchError ? wrapText(fetchError, 88).map((l) => `  ${l}`) : []),
    `The stack runs with SEEDED RANDOM weights (${ENV.WEIGHTS}=random:${seed}): the`,
    'pipeline works end to end, but features, accuracies and predictions are not meaningful.',
    `Every feature, model, report and prediction says so in its spec ("random-${seed}").`,
    'For real weights: tlearn base-model import vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
    '(or tlearn base-model fetch where the internet is reachable), then restart.',
  ];
  const width = Math.max(...lines.map((l) => l.length));
  const bar = `+${'-'.repeat(width + 2)}+`;
  return [bar, ...lines.map((l) => `| ${l.padEnd(width)} |`), bar].join('\n');
}
