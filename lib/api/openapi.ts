/**
 * The API as an OpenAPI 3.1 document, generated (with @asteasolutions/zod-to-openapi) from the route
 * table (lib/api/routes.ts: paths, methods, roles) and the routes' zod schemas
 * (lib/api/contract.ts), plus every error answer: the function's status table (lib/api/errors.ts)
 * and the gateway's own answers (lib/api/gateway.ts), all in the shared `{error: {code, message}}`
 * shape. Served at `GET /openapi.json`; `npm run openapi` writes it to docs/openapi.json.
 */
import { extendZodWithOpenApi, OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { z } from 'zod';
import { PATH_PARAM_SCHEMAS, type RouteSchemas, routeSchemas } from './contract.ts';
import { ERROR_STATUS_CODES } from './errors.ts';
import { GATEWAY_ERRORS } from './gateway.ts';
import { jsonResponse } from './http.ts';
import { API_ROUTES, type RouteRole } from './routes.ts';
import * as schemas from './schemas.ts';

extendZodWithOpenApi(z);

/** The header that carries the API key (API Gateway's name for it). */
export const API_KEY_HEADER = 'x-api-key';

/** Name of the security scheme in the document. */
const API_KEY_SCHEME = 'apiKey';

/** Schemas shown as named components (everything else is inlined where it is used). */
const NAMED_SCHEMAS: ReadonlyMap<z.ZodTypeAny, string> = new Map<z.ZodTypeAny, string>([
  [schemas.ErrorBodySchema, 'Error'],
  [schemas.PredictionResponseSchema, 'Prediction'],
  [schemas.DatasetListSchema, 'DatasetList'],
  [schemas.DatasetStatusSchema, 'DatasetStatus'],
  [schemas.ModelResponseSchema, 'Model'],
  [schemas.TrainingStartedSchema, 'TrainingStarted'],
  [schemas.ModelVersionListSchema, 'ModelVersions'],
  [schemas.FailureListSchema, 'Failures'],
  [schemas.UploadsResponseSchema, 'Uploads'],
  [schemas.ExportResponseSchema, 'Export'],
  [schemas.HealthResponseSchema, 'Health'],
  [schemas.QualityResponseSchema, 'Quality'],
  [schemas.BatchStatusSchema, 'BatchStatus'],
  [schemas.ReindexPageSchema, 'ReindexPage'],
]);

function named<S extends z.ZodTypeAny>(schema: S): S {
  const name = NAMED_SCHEMAS.get(schema);
  return name === undefined ? schema : (schema.openapi(name) as S);
}

/** One error status of the document: the codes answered with it, and by whom. */
export interface ErrorAnswer {
  status: number;
  codes: Array<{ code: string; by: 'function' | 'gateway'; when?: string }>;
}

/**
 * Every error status and code the API can answer: the function's status table, its 500, and the
 * gateway's own answers (their `DEFAULT_4XX`/`DEFAULT_5XX` catch-alls as the `default` response).
 */
export function errorAnswers(): ErrorAnswer[] {
  const byStatus = new Map<number, ErrorAnswer['codes']>();
  const add = (status: number, entry: ErrorAnswer['codes'][number]) => {
    const list = byStatus.get(status) ?? [];
    if (!list.some((e) => e.code === entry.code && e.by === entry.by)) list.push(entry);
    byStatus.set(status, list);
  };
  for (const [status, code] of Object.entries(ERROR_STATUS_CODES))
    add(Number(status), { code, by: 'function' });
  add(500, { code: 'InternalError', by: 'function' });
  for (const g of Object.values(GATEWAY_ERRORS)) {
    if (g.status !== undefined) add(g.status, { code: g.code, by: 'gateway', when: g.when });
  }
  return [...byStatus.entries()].sort(([a], [b]) => a - b).map(([status, codes]) => ({ status, codes }));
}

function errorDescription(e: ErrorAnswer): string {
  const lines = e.codes.map((c) =>
    c.by === 'gateway' ? `\`${c.code}\` (API Gateway: ${c.when ?? 'its own answer'})` : `\`${c.code}\``,
  );
  return `Error. \`error.code\`: ${lines.join('; ')}; or a more specific code of the route (e.g. \`InvalidDatasetName\`, \`TrainingInProgress\`).`;
}

function pathParams(path: string, declared: z.AnyZodObject | undefined): z.AnyZodObject | undefined {
  if (declared) return declared;
  const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] ?? '');
  if (names.length === 0) return undefined;
  return z.object(Object.fromEntries(names.map((n) => [n, PATH_PARAM_SCHEMAS[n] ?? z.string().min(1)])));
}

const binary = () => z.string().openapi({ format: 'binary' });

function requestBody(s: RouteSchemas | undefined) {
  if (!s?.body && !s?.rawBody) return undefined;
  const content: Record<string, { schema: z.ZodTypeAny }> = {};
  if (s.body) content['application/json'] = { schema: named(s.body) };
  for (const t of s.rawBody ?? []) content[t] = { schema: binary() };
  return { required: !s.bodyOptional, content };
}

function successResponses(s: RouteSchemas | undefined) {
  const out: Record<number, { description: string; content?: Record<string, { schema: z.ZodTypeAny }> }> = {};
  const status = s?.status ?? 200;
  if (s?.response)
    out[status] = { description: 'OK', content: { 'application/json': { schema: named(s.response) } } };
  else if (s?.answer) {
    const schema = s.answer.mediaType.startsWith('text/') ? z.string() : binary();
    out[status] = { description: s.answer.description, content: { [s.answer.mediaType]: { schema } } };
  } else out[status] = { description: 'OK (no schema declared for this route in lib/api/contract.ts)' };
  for (const [code, other] of Object.entries(s?.otherAnswers ?? {})) {
    out[Number(code)] = {
      description: other.description,
      ...(other.response ? { content: { 'application/json': { schema: named(other.response) } } } : {}),
    };
  }
  return out;
}

function operationId(method: string, path: string): string {
  const words = path
    .split('/')
    .filter((p) => p !== '')
    .map((p) =>
      p
        .replace(/[{}]/g, '')
        .replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase()),
    );
  const name = words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
  return `${method.toLowerCase()}${name === '' ? 'Root' : name}`;
}

function roleText(role: RouteRole): string {
  if (role === 'none') return 'No API key.';
  if (role === 'predict') return 'Role `predict`: a predict key (for its own datasets) or an admin key.';
  return 'Role `admin`: an admin key.';
}

/**
 * The OpenAPI 3.1 document of this API.
 *
 * @example const doc = openApiDocument(); doc.paths['/datasets/{d}/predictions'].post.security // [{ apiKey: [] }]
 */
export function openApiDocument(): OpenApiJson {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', API_KEY_SCHEME, {
    type: 'apiKey',
    in: 'header',
    name: API_KEY_HEADER,
    description: 'An API key: `admin`, or `predict` scoped to datasets (`POST /keys`).',
  });
  const errorSchema = named(schemas.ErrorBodySchema);
  registry.register('Error', errorSchema);
  const errors = errorAnswers();
  for (const route of API_ROUTES) {
    const key = `${route.method} ${route.path}`;
    const s = routeSchemas(key);
    const params = pathParams(route.path, s?.params);
    const body = requestBody(s);
    registry.registerPath({
      method: route.method.toLowerCase() as 'get' | 'post' | 'delete',
      path: route.path,
      operationId: operationId(route.method, route.path),
      summary: s?.summary ?? key,
      description: [s?.description, roleText(route.role)].filter(Boolean).join('\n\n'),
      security: route.role === 'none' ? [] : [{ [API_KEY_SCHEME]: [] }],
      request: {
        ...(params ? { params } : {}),
        ...(s?.query ? { query: s.query } : {}),
        ...(body ? { body } : {}),
      },
      responses: successResponses(s),
      'x-tlearn-role': route.role,
    });
  }
  const doc = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'tlearn',
      version: '1',
      description:
        'Transfer-learning image classifier: datasets in S3, VGG16 features, a logistic-regression head, predictions. Generated from lib/api/routes.ts and lib/api/contract.ts. Every error is `{"error": {"code", "message"}}`, the gateway\'s own answers included.',
    },
    // Relative: the API's base (the stage on API Gateway, the root locally) is where this document is served.
    servers: [{ url: '.' }],
  });
  return withErrorResponses(doc as unknown as OpenApiJson, errors);
}

type OpenApiJson = Record<string, unknown> & {
  paths: Record<
    string,
    Record<string, { responses: Record<string, unknown>; security: unknown[]; 'x-tlearn-role'?: string }>
  >;
  components: Record<string, Record<string, unknown>>;
};

/**
 * Adds the error answers once, as `components.responses` (`Error404`, …, `default` for the
 * gateway's catch-alls), and refers every operation to them (403 only where a key is needed).
 */
function withErrorResponses(doc: OpenApiJson, errors: readonly ErrorAnswer[]): OpenApiJson {
  const schema = { $ref: '#/components/schemas/Error' };
  const responses: Record<string, unknown> = {};
  for (const e of errors) {
    responses[`Error${e.status}`] = {
      description: errorDescription(e),
      content: { 'application/json': { schema } },
    };
  }
  responses.ErrorDefault = {
    description: `Any other rejection of API Gateway (\`${GATEWAY_ERRORS.default4xx.code}\`, \`${GATEWAY_ERRORS.default5xx.code}\`).`,
    content: { 'application/json': { schema } },
  };
  doc.components.responses = responses;
  for (const ops of Object.values(doc.paths)) {
    for (const op of Object.values(ops)) {
      for (const e of errors) {
        if (e.status === 403 && op['x-tlearn-role'] === 'none') continue;
        op.responses[String(e.status)] ??= { $ref: `#/components/responses/Error${e.status}` };
      }
      op.responses.default = { $ref: '#/components/responses/ErrorDefault' };
    }
  }
  return doc;
}

let served: string | undefined;

/** `GET /openapi.json`: the document, generated once per process (it depends on code only). */
export function openApiRoute(): APIGatewayProxyResult {
  served ??= JSON.stringify(openApiDocument());
  return {
    ...jsonResponse(200, null, { 'cache-control': 'public, max-age=300' }),
    body: served,
  };
}
