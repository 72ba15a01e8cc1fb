/**
 * The HTTP API as one function `(event, context) => result` over API Gateway REST (payload 1.0)
 * proxy events, so the Lambda handler and the local stack's Node HTTP server run the same code.
 * Routing is `@middy/http-router`; every error becomes a JSON response in `errors.ts`.
 */
import httpRouterHandler, { type Method, type Route } from '@middy/http-router';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { createSettingsCache } from '../capture/settings.ts';
import { NotFoundError, TlearnError } from '../errors.ts';
import type { FeatureExtractor } from '../model/types.ts';
import { createInferenceQueue, type InferenceQueue } from '../serving/inference-queue.ts';
import { authorize, coversDataset, NO_SCOPE, OPEN_SCOPE, scopeOfRequest } from './auth.ts';
import { getBatchRoute, startBatchRoute } from './batches.ts';
import { consoleAssetRoute } from './console-assets.ts';
import { consolePageRoute } from './console-page.ts';
import { getDatasetRoute, getModelRoute, listDatasetsRoute } from './datasets.ts';
import { errorForLog, errorResponse, MethodNotAllowedError } from './errors.ts';
import { exportModelRoute } from './export.ts';
import { healthRoute } from './health.ts';
import { jsonResponse } from './http.ts';
import { thumbnailRoute } from './images.ts';
import { createKeyRoute, listKeysRoute, revokeKeyRoute } from './keys-routes.ts';
import {
  discardCaptureRoute,
  getSettingsRoute,
  labelCaptureRoute,
  labelSuggestionRoute,
  listCapturesRoute,
  monitoringRoute,
  putSettingsRoute,
  suggestionsRoute,
  undoCaptureRoute,
} from './loop.ts';
import { listCurvePointsRoute, listHeldOutPredictionsRoute } from './model-report.ts';
import { listFailuresRoute, listModelVersionsRoute, promoteVersionRoute } from './model-versions.ts';
import { openApiRoute } from './openapi.ts';
import { checkRequestOrigin } from './origin.ts';
import { predictRoute } from './predict.ts';
import { getQualityRoute } from './quality.ts';
import { reindexRoute } from './reindex.ts';
import { API_ROUTES, type RouteKey, type RouteRole } from './routes.ts';
import { startTrainingRoute } from './trainings.ts';
import type { ApiDeps, ExtractorState, RouteContext } from './types.ts';
import { createUploadsRoute } from './uploads.ts';

/** The API as a Lambda-style function; `context` is optional for callers outside Lambda. */
export type ApiHandler = (event: APIGatewayProxyEvent, context?: Context) => Promise<APIGatewayProxyResult>;

type RouteFn = (event: APIGatewayProxyEvent, ctx: RouteContext) => Promise<APIGatewayProxyResult>;

interface RouteDef {
  method: Exclude<Method, 'ANY'>;
  path: string;
  role: RouteRole;
  run: RouteFn;
}

const ok =
  <T>(fn: (event: APIGatewayProxyEvent, ctx: RouteContext) => Promise<T>, statusCode = 200): RouteFn =>
  async (event, ctx) =>
    jsonResponse(statusCode, await fn(event, ctx));

/** The handler of every route of lib/api/routes.ts (a missing or extra route fails type-checking). */
const HANDLERS: Record<RouteKey, RouteFn> = {
  'GET /health': async (_e, ctx) => toResult(healthRoute(ctx)),
  'GET /openapi.json': async () => openApiRoute(),
  'GET /datasets': ok(async (_e, ctx) => {
    const { datasets } = await listDatasetsRoute(ctx);
    // A predict key sees only its own datasets.
    return { datasets: datasets.filter((d) => coversDataset(ctx.scope, d.name)) };
  }),
  'GET /datasets/{d}': ok(getDatasetRoute),
  'GET /datasets/{d}/model': ok(getModelRoute),
  'GET /datasets/{d}/model/export': exportModelRoute,
  'GET /datasets/{d}/model/predictions': ok(listHeldOutPredictionsRoute),
  'GET /datasets/{d}/model/curves': ok(listCurvePointsRoute),
  'POST /datasets/{d}/predictions': ok(predictRoute),
  'POST /datasets/{d}/trainings': ok(startTrainingRoute, 202),
  'GET /keys': ok(listKeysRoute),
  'POST /keys': ok(createKeyRoute, 201),
  'DELETE /keys/{id}': ok(revokeKeyRoute),
  'GET /': consolePageRoute,
  'POST /datasets/{d}/uploads': ok(createUploadsRoute),
  'GET /datasets/{d}/images': thumbnailRoute,
  'GET /datasets/{d}/failures': ok(listFailuresRoute),
  'GET /datasets/{d}/models': ok(listModelVersionsRoute),
  'POST /datasets/{d}/model/promote': ok(promoteVersionRoute),
  'POST /datasets/{d}/batches': ok(startBatchRoute, 202),
  'GET /datasets/{d}/batches/{id}': ok(getBatchRoute),
  'GET /datasets/{d}/quality': ok(getQualityRoute),
  'POST /datasets/{d}/reindex': ok(reindexRoute, 202),
  'GET /console/ort/{file}': consoleAssetRoute,
  'GET /datasets/{d}/settings': ok(getSettingsRoute),
  'PUT /datasets/{d}/settings': ok(putSettingsRoute),
  'GET /datasets/{d}/captures': ok(listCapturesRoute),
  'POST /datasets/{d}/captures/{id}/label': ok(labelCaptureRoute),
  'POST /datasets/{d}/captures/{id}/undo': ok(undoCaptureRoute),
  'DELETE /datasets/{d}/captures/{id}': ok(discardCaptureRoute),
  'GET /datasets/{d}/monitoring': ok(monitoringRoute),
  'GET /datasets/{d}/suggestions': ok(suggestionsRoute),
  'POST /datasets/{d}/suggestions/label': ok(labelSuggestionRoute),
};

const ROUTES: readonly RouteDef[] = API_ROUTES.map((r) => ({
  method: r.method,
  path: r.path,
  role: r.role,
  run: HANDLERS[`${r.method} ${r.path}` as RouteKey],
}));

function toResult(r: { statusCode: number; body: unknown }): APIGatewayProxyResult {
  return jsonResponse(r.statusCode, r.body);
}

/** Same matching as http-router (a `{param}` is one non-empty segment; a trailing '/' is optional). */
function pathPattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/\/\{([^/]+)\}/g, '/(?<$1>[^/]+)')}/?$`);
}

const PATTERNS = ROUTES.map((r) => ({ method: r.method, pattern: pathPattern(r.path), path: r.path }));

/** 405 when the path exists with other methods, else 404 naming the routes that do exist. */
function routeNotFound({ method, path }: { method: string; path: string }): never {
  const allow = [...new Set(PATTERNS.filter((p) => p.pattern.test(path)).map((p) => p.method))];
  if (allow.length > 0) {
    throw new MethodNotAllowedError(`${method} is not allowed on ${path}; use ${allow.join(' or ')}`, allow);
  }
  const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
  throw new NotFoundError(
    `no route ${method} ${shown}; routes: ${ROUTES.map((r) => `${r.method} ${r.path}`).join(', ')}`,
    { code: 'RouteNotFound' },
  );
}

function trackExtractor(deps: ApiDeps): {
  inference: RouteContext['inference'];
  state: () => ExtractorState;
} {
  const source =
    typeof deps.extractor === 'function' ? deps.extractor : () => deps.extractor as Promise<FeatureExtractor>;
  let state: ExtractorState = { status: 'loading' };
  let current: Promise<{ extractor: FeatureExtractor; queue: InferenceQueue }> | undefined;
  const load = () => {
    state = { status: 'loading' };
    const p = source().then(
      (extractor) => {
        const queue = createInferenceQueue(extractor, { maxBatch: deps.config.maxBatch });
        state = { status: 'ready', extractor, queue };
        return { extractor, queue };
      },
      (error: unknown) => {
        state = { status: 'failed', error };
        deps.log.error('feature extractor failed to load', { error: errorForLog(error) });
        throw new TlearnError('ExtractorUnavailable', 'the feature extractor failed to load', 500, {
          cause: error,
        });
      },
    );
    // Routes that do not predict keep working when loading failed: the rejection is handled here
    // and re-surfaced to each prediction that awaits it.
    p.catch(() => undefined);
    current = p;
    return p;
  };
  load();
  return {
    // After a failure, a getter source is asked again (it may retry); a plain promise stays failed.
    inference: () => (state.status === 'failed' || current === undefined ? load() : current),
    state: () => state,
  };
}

/**
 * Builds the API over its dependencies. Call once per process; the returned function is
 * re-entrant (concurrent calls share the model cache and the inference queue).
 *
 * @example
 * const api = createApi({ s3, sfn, extractor: loadExtractor(opts), cache, config, log });
 * const res = await api(apiGatewayProxyEvent);
 */
export function createApi(deps: ApiDeps): ApiHandler {
  const { inference, state } = trackExtractor(deps);
  const ctx: RouteContext = {
    ...deps,
    now: deps.now ?? (() => new Date()),
    inference,
    extractorState: state,
    scope: OPEN_SCOPE,
    settings: createSettingsCache(deps.s3, deps.config.bucket),
  };
  const cors: Record<string, string> = deps.config.corsOrigin
    ? { 'access-control-allow-origin': deps.config.corsOrigin, vary: 'Origin' }
    : {};
  const routes: Route<APIGatewayProxyEvent, APIGatewayProxyResult>[] = ROUTES.map((r) => ({
    method: r.method,
    path: r.path,
    // Authorized from the request's API key id before the route runs (lib/api/auth.ts).
    handler: async (event: APIGatewayProxyEvent) => {
      if (r.role === 'none') return r.run(event, { ...ctx, scope: NO_SCOPE });
      const scope = await scopeOfRequest(event, deps.auth);
      authorize(r.role, scope, event);
      return r.run(event, { ...ctx, scope: scope ?? NO_SCOPE });
    },
  }));
  const router = httpRouterHandler({ routes, notFoundResponse: routeNotFound });

  return async (event, context) => {
    const started = performance.now();
    const requestId = event.requestContext?.requestId ?? context?.awsRequestId;
    const route = `${event.httpMethod} ${event.resource ?? event.path}`;
    let result: APIGatewayProxyResult;
    try {
      if (cors['access-control-allow-origin'] && event.httpMethod === 'OPTIONS') {
        result = preflight(cors);
      } else {
        checkRequestOrigin(event, deps.config.corsOrigin);
        // The router fills pathParameters from the path; a copy keeps the caller's event untouched.
        const routed = {
          ...event,
          pathParameters: event.pathParameters ? { ...event.pathParameters } : null,
        };
        result = await router(routed, context ?? ({} as Context));
        result.headers = { ...result.headers, ...cors };
      }
    } catch (err) {
      result = errorResponse(err, { requestId, log: deps.log, route, extraHeaders: cors });
    }
    const ms = performance.now() - started;
    if (result.statusCode >= 400 && result.statusCode < 500) {
      deps.metrics?.clientError(result.statusCode, errorCode(result));
    } else if (
      result.statusCode === 200 &&
      event.httpMethod === 'POST' &&
      /\/predictions\/?$/.test(event.path)
    ) {
      deps.metrics?.prediction(ms);
    }
    deps.log.debug('request done', { route, status: result.statusCode, ms: Math.round(ms) });
    return result;
  };
}

function preflight(cors: Record<string, string>): APIGatewayProxyResult {
  return {
    statusCode: 204,
    headers: {
      ...cors,
      'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
      'access-control-allow-headers': 'Content-Type, X-Api-Key, Authorization',
      'access-control-max-age': '600',
    },
    body: '',
  };
}

function errorCode(result: APIGatewayProxyResult): string {
  try {
    const parsed = JSON.parse(result.body) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : 'Unknown';
  } catch {
    return 'Unknown';
  }
}
