/**
 * One feature extractor per process and configuration. On AWS every function is its own process,
 * so this changes nothing there; the local stack (lib/local/stack.ts) runs the API, the extractor
 * and the batch worker in one process, where each handler used to load its own VGG16 (weights,
 * graph and engine buffers: ~150-250 MB each). Handlers ask for it through their module scope, and
 * the same options give the same instance (docs/ARCHITECTURE.md, "The local stack").
 */

import { collectGarbageNow } from '../util/gc.ts';
import { type LoadExtractorOptions, loadExtractor } from './extractor.ts';
import type { FeatureExtractor } from './types.ts';

interface Entry {
  /** What callers get: the extractor with a `dispose` that does nothing (others use it too). */
  handle: Promise<FeatureExtractor>;
  /** The extractor itself, for {@link releaseSharedExtractors}. */
  real: Promise<FeatureExtractor>;
}

const shared = new Map<string, Entry>();

/** What makes two requests the same extractor: the weights, the graph, the engine, the precision and the spec. */
function keyOf(opts: LoadExtractorOptions): string {
  const w = opts.weights.kind === 'uri' ? `uri:${opts.weights.uri}` : `random:${opts.weights.seed}`;
  return [
    w,
    opts.inputSize,
    opts.pooling,
    opts.backend ?? 'auto',
    opts.resize ?? 'default',
    opts.precision ?? 'fp32',
  ].join('|');
}

/**
 * The process's extractor for these options: loaded by the first caller (`loadExtractor`, with its
 * warm-up pass), then the same promise for everyone. A failed load is forgotten, so the next call
 * tries again. The instance is shared: callers never dispose it (its `dispose` does nothing; use
 * {@link releaseSharedExtractors} to free them all, e.g. in tests).
 *
 * @example
 * const extractor = await sharedExtractor({ weights, inputSize: 150, pooling: 'flatten', s3, log });
 */
export function sharedExtractor(opts: LoadExtractorOptions): Promise<FeatureExtractor> {
  const key = keyOf(opts);
  const known = shared.get(key);
  if (known) return known.handle;
  const real = loadExtractor(opts).then((extractor) => {
    // The weights as loaded and their serialized graph (~120 MB) are garbage now that the engine
    // holds its own copy: return them at once rather than at some later GC (lib/util/gc.ts).
    collectGarbageNow();
    return extractor;
  });
  const entry: Entry = {
    real,
    handle: real.then(
      (extractor): FeatureExtractor => ({ ...extractor, dispose() {} }),
      (err: unknown) => {
        if (shared.get(key) === entry) shared.delete(key);
        throw err;
      },
    ),
  };
  shared.set(key, entry);
  return entry.handle;
}

/** How many distinct extractors this process holds (loaded or loading). */
export function sharedExtractorCount(): number {
  return shared.size;
}

/** Disposes every shared extractor and forgets them (tests, a clean shutdown). */
export async function releaseSharedExtractors(): Promise<void> {
  const all = [...shared.values()];
  shared.clear();
  for (const e of all) (await e.real.catch(() => undefined))?.dispose();
}
