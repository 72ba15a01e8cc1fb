/**
 * `GET /health`: whether this container can predict, with what backend and spec, and how many
 * models it holds. It needs no key, so it names no dataset and no model version (those are
 * tenants' data: `GET /datasets` with a key lists them). Never waits for a loading extractor.
 */
import { isRandomWeights } from '../model/spec.ts';
import type { HealthResponse } from './schemas.ts';
import type { RouteContext } from './types.ts';

export type { HealthResponse } from './schemas.ts';

/** The health report and its status code (503 when the extractor failed to load). */
export function healthRoute(ctx: RouteContext): { statusCode: number; body: HealthResponse } {
  const state = ctx.extractorState();
  const cachedModels = ctx.cache.state().length;
  if (state.status !== 'ready') {
    return {
      statusCode: state.status === 'failed' ? 503 : 200,
      body: {
        status: state.status,
        backend: null,
        spec: null,
        dims: null,
        randomWeights: null,
        warnings: state.status === 'failed' ? ['the feature extractor failed to load; see the logs'] : [],
        cachedModels,
        queue: null,
      },
    };
  }
  const { extractor, queue } = state;
  const random = isRandomWeights(extractor.spec);
  return {
    statusCode: 200,
    body: {
      status: 'ok',
      backend: extractor.backend,
      spec: extractor.specId,
      dims: extractor.dims,
      randomWeights: random,
      warnings: random
        ? ['the base model runs on seeded RANDOM weights (local/test only): predictions are not meaningful']
        : [],
      cachedModels,
      queue: { waiting: queue.waiting, ...queue.stats },
    },
  };
}
