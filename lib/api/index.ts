/** The HTTP API: `createApi(deps)` plus what a caller needs to build its deps. */

export { createInferenceQueue, type InferenceQueue } from '../serving/inference-queue.ts';
export {
  type CachedModelState,
  createModelCache,
  type LoadedModel,
  type ModelCache,
} from '../serving/model-cache.ts';
export { type ApiHandler, createApi } from './app.ts';
export { type ApiEnvConfig, loadApiConfig } from './config.ts';
export { errorResponse, mapError } from './errors.ts';
export {
  createExecutionHistory,
  type ExecutionHistory,
  type ExecutionReader,
  type ExecutionSummary,
} from './executions.ts';
export type { ApiConfig, ApiDeps, ApiMetrics, StartExecutionClient } from './types.ts';
