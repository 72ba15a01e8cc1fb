/**
 * Local = deployed, for the gateway: one table of requests goes through the local API Gateway
 * stand-in (lib/local/http-api.ts) and through a model of the REST API read from the template the
 * CDK app synthesizes (its resources, methods, API key requirements and gateway responses), with
 * the real API function behind both. Each request must get the same status, body and Allow header.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TlearnStack } from '../../../infra/stack.ts';
import type { ApiHandler } from '../../../lib/api/app.ts';
import { createApi } from '../../../lib/api/app.ts';
import { GATEWAY_ERRORS, GATEWAY_TIMEOUT_MS, LAMBDA_MAX_EVENT_BYTES } from '../../../lib/api/gateway.ts';
import {
  buildProxyEvent,
  DEFAULT_BINARY_MEDIA_TYPES,
  type HttpApi,
  startHttpApi,
} from '../../../lib/local/http-api.ts';
import type { FeatureExtractor } from '../../../lib/model/types.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { createTestApp, createTestStack, type TestApp } from '../../infra/synth.ts';

type Cfn = { Type: string; Properties: Record<string, unknown> };

/** The REST API as the template defines it. */
interface DeployedGateway {
  /** Full resource path → methods (HTTP method or ANY) → whether a key is required. */
  resources: Map<string, Map<string, boolean>>;
  /** ResponseType → [status, body]. */
  responses: Map<string, { status: string | undefined; body: string }>;
  binaryMediaTypes: string[];
  apiTimeoutSeconds: number;
}

function readGateway(stack: TlearnStack, json: { Resources: Record<string, Cfn> }): DeployedGateway {
  const entries = Object.entries(json.Resources);
  const paths = new Map<string, string>();
  const pathOf = (ref: unknown): string => {
    const r = ref as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
    if (r['Fn::GetAtt']?.[1] === 'RootResourceId') return '';
    const id = r.Ref ?? '';
    const known = paths.get(id);
    if (known !== undefined) return known;
    const res = json.Resources[id];
    if (res?.Type !== 'AWS::ApiGateway::Resource') throw new Error(`unknown resource ${JSON.stringify(ref)}`);
    const path = `${pathOf(res.Properties.ParentId)}/${String(res.Properties.PathPart)}`;
    paths.set(id, path);
    return path;
  };
  const resources = new Map<string, Map<string, boolean>>();
  for (const [, r] of entries.filter(([, r]) => r.Type === 'AWS::ApiGateway::Method')) {
    const path = pathOf(r.Properties.ResourceId) || '/';
    const integration = r.Properties.Integration as { Type?: string };
    expect(integration.Type).toBe('AWS_PROXY');
    const methods = resources.get(path) ?? new Map<string, boolean>();
    methods.set(String(r.Properties.HttpMethod), r.Properties.ApiKeyRequired === true);
    resources.set(path, methods);
  }
  const responses = new Map<string, { status: string | undefined; body: string }>();
  for (const [, r] of entries.filter(([, r]) => r.Type === 'AWS::ApiGateway::GatewayResponse')) {
    const templates = r.Properties.ResponseTemplates as Record<string, string>;
    responses.set(String(r.Properties.ResponseType), {
      status: r.Properties.StatusCode as string | undefined,
      body: templates['application/json'] ?? '',
    });
  }
  const restApi = entries.find(([, r]) => r.Type === 'AWS::ApiGateway::RestApi')?.[1];
  const apiFn = json.Resources[stack.getLogicalId(stack.functions.api.function.node.defaultChild as never)];
  return {
    resources,
    responses,
    binaryMediaTypes: (restApi?.Properties.BinaryMediaTypes as string[]) ?? [],
    apiTimeoutSeconds: Number(apiFn?.Properties.Timeout),
  };
}

/** One request of the table. */
interface Req {
  method: string;
  path: string;
  key?: string;
  headers?: Record<string, string>;
  bodyBytes?: number;
}

interface Answer {
  status: number;
  body: unknown;
  allow: string | null;
}

const ADMIN_KEY = 'parity-admin-key';

/**
 * What the deployed gateway answers, per API Gateway's documented rules: no resource or method →
 * MISSING_AUTHENTICATION_TOKEN; body over 10 MB → REQUEST_TOO_LARGE; a method that needs a key
 * without a valid one → INVALID_API_KEY; else the Lambda proxy event goes to the function.
 */
async function deployedAnswer(gw: DeployedGateway, fn: ApiHandler, req: Req): Promise<Answer> {
  const rejection = (type: string, fallbackStatus: number): Answer => {
    const r = gw.responses.get(type);
    if (!r) throw new Error(`the template has no gateway response ${type}`);
    return { status: Number(r.status ?? fallbackStatus), body: JSON.parse(r.body), allow: null };
  };
  const segments = req.path.split('/').filter(Boolean);
  const resource = [...gw.resources.keys()].find((p) => {
    const parts = p.split('/').filter(Boolean);
    return parts.length === segments.length && parts.every((s, i) => /^\{.+\}$/.test(s) || s === segments[i]);
  });
  const methods = resource === undefined ? undefined : gw.resources.get(resource);
  const keyRequired = methods?.get(req.method) ?? methods?.get('ANY');
  if (resource === undefined || keyRequired === undefined)
    return rejection('MISSING_AUTHENTICATION_TOKEN', 403);
  if ((req.bodyBytes ?? 0) > 10 * 1024 * 1024) return rejection('REQUEST_TOO_LARGE', 413);
  if (keyRequired && req.key !== ADMIN_KEY) return rejection('INVALID_API_KEY', 403);
  const pathParameters: Record<string, string> = {};
  resource
    .split('/')
    .filter(Boolean)
    .forEach((s, i) => {
      const m = /^\{(.+)\}$/.exec(s);
      if (m?.[1]) pathParameters[m[1]] = segments[i] ?? '';
    });
  const event: APIGatewayProxyEvent = buildProxyEvent(
    {
      method: req.method,
      url: req.path,
      rawHeaders: Object.entries({ ...req.headers, ...(req.key ? { 'x-api-key': req.key } : {}) }).flat(),
      body: Buffer.alloc(req.bodyBytes ?? 0),
      sourceIp: '127.0.0.1',
      httpVersion: '1.1',
    },
    {
      route: { method: req.method, resource },
      pathParameters: Object.keys(pathParameters).length > 0 ? pathParameters : null,
    },
    {
      stage: 'v1',
      binaryMediaTypes: gw.binaryMediaTypes,
      requestId: 'r',
      apiKeyId: keyRequired ? 'local-admin' : null,
    },
  );
  const res: APIGatewayProxyResult = await fn(event);
  return toAnswer(res.statusCode, res.body, res.headers?.allow);
}

function toAnswer(status: number, body: string, allow: unknown): Answer {
  let parsed: unknown = body;
  try {
    parsed = body === '' ? '' : JSON.parse(body);
  } catch {
    // plain text
  }
  return { status, body: parsed, allow: typeof allow === 'string' ? allow : null };
}

/** The real API function, with dependencies no request of the table reaches (routing, auth, CORS only). */
function apiFunction(): ApiHandler {
  const s3 = new S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
  return createApi({
    s3,
    sfn: { send: () => Promise.reject(new Error('not in this test')) },
    extractor: new Promise<FeatureExtractor>(() => {}),
    cache: createModelCache({ s3, bucket: 'b', refreshSeconds: 60, log: silentLog }),
    config: {
      bucket: 'b',
      stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:t',
      maxBodyBytes: 6 * 1024 * 1024,
      limitInputPixels: 40_000_000,
      maxBatch: 1,
      corsOrigin: 'https://console.example',
    },
    log: silentLog,
  });
}

const TABLE: Req[] = [
  { method: 'GET', path: '/nope' },
  { method: 'GET', path: '/nope', key: ADMIN_KEY },
  { method: 'GET', path: '/datasets/pets/model/extra', key: ADMIN_KEY },
  { method: 'GET', path: '/health' },
  { method: 'POST', path: '/health' },
  { method: 'GET', path: '/datasets' },
  { method: 'GET', path: '/datasets', key: 'not-a-key' },
  { method: 'DELETE', path: '/datasets', key: ADMIN_KEY },
  { method: 'PUT', path: '/datasets/pets/predictions', key: ADMIN_KEY },
  { method: 'PUT', path: '/datasets/pets/predictions' },
  { method: 'GET', path: '/datasets/pets/trainings', key: ADMIN_KEY },
  { method: 'OPTIONS', path: '/datasets/pets/predictions', headers: { origin: 'https://console.example' } },
  { method: 'OPTIONS', path: '/datasets' },
  { method: 'GET', path: '/keys' },
  { method: 'PATCH', path: '/keys/abc', key: ADMIN_KEY },
  { method: 'DELETE', path: '/keys', key: ADMIN_KEY },
  {
    method: 'POST',
    path: '/datasets/pets/predictions',
    key: ADMIN_KEY,
    headers: { 'content-type': 'image/png' },
    bodyBytes: 11 * 1024 * 1024,
  },
];

describe('the local API Gateway stand-in answers as the synthesized REST API', () => {
  let testApp: TestApp;
  let gw: DeployedGateway;
  let fn: ApiHandler;
  let local: HttpApi;

  beforeAll(async () => {
    testApp = createTestApp();
    const stack = createTestStack(testApp.app, 'Parity');
    gw = readGateway(stack, testApp.app.synth().getStackByName(stack.stackName).template);
    fn = apiFunction();
    local = await startHttpApi({
      port: 0,
      region: 'us-east-1',
      handler: (e) => fn(e),
      apiKey: ADMIN_KEY,
      log: silentLog,
    });
  }, 120_000);
  afterAll(async () => {
    await local?.stop(1000);
    testApp?.cleanup();
  });

  async function localAnswer(req: Req): Promise<Answer> {
    const res = await fetch(`${local.url}${req.path}`, {
      method: req.method,
      headers: { ...req.headers, ...(req.key ? { 'x-api-key': req.key } : {}) },
      ...(req.bodyBytes ? { body: Buffer.alloc(req.bodyBytes) } : {}),
    });
    return toAnswer(res.status, await res.text(), res.headers.get('allow'));
  }

  it.each(
    TABLE.map(
      (r) =>
        [
          `${r.method} ${r.path}${r.key ? ` (key ${r.key === ADMIN_KEY ? 'valid' : 'invalid'})` : ''}${r.bodyBytes ? ` ${r.bodyBytes} bytes` : ''}`,
          r,
        ] as const,
    ),
  )('%s: same status, body and Allow header', async (_name, req) => {
    const deployed = await deployedAnswer(gw, fn, req);
    const localRes = await localAnswer(req);

    expect(localRes).toEqual(deployed);
    // Every answer, gateway or function, is in the API's error shape when it is an error.
    if (deployed.status >= 400)
      expect(deployed.body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
  });

  it('answers the expected statuses for the table (a sample, so the table cannot pass vacuously)', async () => {
    const statuses = await Promise.all(TABLE.map(async (r) => (await deployedAnswer(gw, fn, r)).status));

    expect(statuses).toEqual([
      404, 404, 404, 200, 405, 403, 403, 405, 405, 403, 405, 204, 204, 403, 405, 405, 413,
    ]);
  });

  it('defines every gateway response of the contract with the same status and body as the stand-in', () => {
    for (const row of Object.values(GATEWAY_ERRORS)) {
      const deployed = gw.responses.get(row.type);
      expect(deployed?.status, row.type).toBe(row.status === undefined ? undefined : String(row.status));
      expect(JSON.parse(deployed?.body ?? '{}'), row.type).toEqual({
        error: { code: row.code, message: row.message },
      });
    }
    expect([...gw.binaryMediaTypes].sort()).toEqual([...DEFAULT_BINARY_MEDIA_TYPES].sort());
  });

  it('answers a crash and a timeout with the template’s INTEGRATION_FAILURE and INTEGRATION_TIMEOUT responses', async () => {
    const failure = gw.responses.get('INTEGRATION_FAILURE');
    const timeout = gw.responses.get('INTEGRATION_TIMEOUT');
    const crashing = await startHttpApi({
      port: 0,
      region: 'us-east-1',
      handler: async (e) => {
        if (e.path === '/health') throw new Error('crash');
        return new Promise(() => {});
      },
      timeoutMs: 100,
      log: silentLog,
    });
    try {
      const crash = await fetch(`${crashing.url}/health`);
      const slow = await fetch(`${crashing.url}/datasets`);

      expect(crash.status).toBe(Number(failure?.status));
      expect(await crash.json()).toEqual(JSON.parse(failure?.body ?? ''));
      expect(slow.status).toBe(Number(timeout?.status));
      expect(await slow.json()).toEqual(JSON.parse(timeout?.body ?? ''));
    } finally {
      await crashing.stop(100);
    }
    // The deployed function gives up before the gateway does; the stand-in waits as long as the gateway.
    expect(gw.apiTimeoutSeconds * 1000).toBeLessThanOrEqual(GATEWAY_TIMEOUT_MS);
  });

  it('refuses an event over Lambda’s 6 MB limit the way the deployed integration fails', async () => {
    // A raw image of 4.8 MB is 6.4 MB as base64 in the event: Lambda refuses the invoke.
    const res = await fetch(`${local.url}/datasets/pets/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'image/png', 'x-api-key': ADMIN_KEY },
      body: Buffer.alloc(Math.ceil((LAMBDA_MAX_EVENT_BYTES * 3) / 4) + 10_000),
    });
    const failure = gw.responses.get('INTEGRATION_FAILURE');

    expect(res.status).toBe(Number(failure?.status));
    expect(await res.json()).toEqual(JSON.parse(failure?.body ?? ''));
  });
});
