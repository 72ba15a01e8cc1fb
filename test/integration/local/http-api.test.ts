import { request } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gatewayErrorBody } from '../../../lib/api/gateway.ts';
import { type HttpApi, startHttpApi } from '../../../lib/local/http-api.ts';
import { silentLog } from '../../../lib/util/log.ts';

/** Records every event and answers with what the test sets in `reply`. */
function recordingHandler() {
  const events: APIGatewayProxyEvent[] = [];
  let reply: (e: APIGatewayProxyEvent) => unknown = () => ({ statusCode: 200, body: '{"ok":true}' });
  return {
    events,
    set(fn: (e: APIGatewayProxyEvent) => unknown) {
      reply = fn;
    },
    handler: async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
      events.push(event);
      return (await reply(event)) as APIGatewayProxyResult;
    },
  };
}

/** Raw request with full control over headers (fetch forbids some, e.g. content-length). */
function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string | number>; body?: Buffer },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('the local API Gateway adapter', () => {
  const rec = recordingHandler();
  let api: HttpApi;

  beforeAll(async () => {
    api = await startHttpApi({
      port: 0,
      handler: rec.handler,
      region: 'us-east-1',
      maxBodyBytes: 1024,
      maxEventBytes: 8 * 1024,
      log: silentLog,
    });
  });
  afterAll(async () => {
    await api.stop(1000);
  });
  beforeEach(() => {
    rec.events.length = 0;
    rec.set(() => ({ statusCode: 200, body: '{"ok":true}' }));
  });

  it('builds a REST proxy event with resource, decoded path parameters and query parameters', async () => {
    const res = await fetch(`${api.url}/datasets/pets/predictions?top=3&tag=a&tag=b%20c`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Custom': 'yes' },
      body: '{"key":"datasets/pets/cat/1.jpg"}',
    });
    const event = rec.events[0];

    expect(res.status).toBe(200);
    expect(event?.resource).toBe('/datasets/{d}/predictions');
    expect(event?.path).toBe('/datasets/pets/predictions');
    expect(event?.httpMethod).toBe('POST');
    expect(event?.pathParameters).toEqual({ d: 'pets' });
    expect(event?.queryStringParameters).toEqual({ top: '3', tag: 'b c' });
    expect(event?.multiValueQueryStringParameters).toEqual({ top: ['3'], tag: ['a', 'b c'] });
    expect(event?.body).toBe('{"key":"datasets/pets/cat/1.jpg"}');
    expect(event?.isBase64Encoded).toBe(false);
    expect(event?.requestContext.resourcePath).toBe('/datasets/{d}/predictions');
    expect(event?.requestContext.stage).toBe('local');
    expect(event?.requestContext.path).toBe('/local/datasets/pets/predictions');
    expect(event?.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('x-amzn-requestid')).toBe(event?.requestContext.requestId);
  });

  it('keeps header spelling, last value in headers and every value in multiValueHeaders', async () => {
    await rawRequest(`${api.url}/health`, { headers: { 'X-Trace': 'one' } });
    const event = rec.events[0];

    expect(event?.headers['X-Trace']).toBe('one');
    expect(event?.multiValueHeaders['X-Trace']).toEqual(['one']);
    expect(event?.pathParameters).toBeNull();
    expect(event?.queryStringParameters).toBeNull();
    expect(event?.body).toBeNull();
  });

  it('passes an image body base64-encoded and returns a base64 result decoded', async () => {
    const image = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a]);
    rec.set((e) => ({
      statusCode: 200,
      headers: { 'content-type': 'image/png' },
      body: e.body ?? '',
      isBase64Encoded: true,
    }));

    const res = await fetch(`${api.url}/datasets/pets/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: image,
    });
    const echoed = Buffer.from(await res.arrayBuffer());

    expect(rec.events[0]?.isBase64Encoded).toBe(true);
    expect(Buffer.from(rec.events[0]?.body ?? '', 'base64')).toEqual(image);
    expect(echoed).toEqual(image);
    expect(res.headers.get('content-type')).toBe('image/png');
  });

  it('answers 413 PayloadTooLarge in the API error shape for a body over the limit, without calling the handler', async () => {
    const declared = await rawRequest(`${api.url}/datasets/pets/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'image/png', 'content-length': 3 * 1024 * 1024 },
      body: Buffer.alloc(3 * 1024 * 1024),
    });
    const chunked = await rawRequest(`${api.url}/datasets/pets/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'image/png', 'transfer-encoding': 'chunked' },
      body: Buffer.alloc(3 * 1024 * 1024),
    });

    expect(declared.status).toBe(413);
    expect(chunked.status).toBe(413);
    expect(JSON.parse(declared.body.toString())).toEqual(JSON.parse(gatewayErrorBody('payloadTooLarge')));
    expect(rec.events).toHaveLength(0);
  });

  it('answers 502 BadGateway when the event (body as base64) is over the Lambda limit, as Lambda refuses it', async () => {
    const small = await fetch(`${api.url}/datasets/pets/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: Buffer.alloc(800),
    });
    // 1000 bytes pass the body limit, but base64 in an event of several KB is over maxEventBytes.
    const big = await fetch(`${api.url}/datasets/pets/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'image/png', 'x-padding': 'p'.repeat(6000) },
      body: Buffer.alloc(1000),
    });

    expect(small.status).toBe(200);
    expect(big.status).toBe(502);
    expect(await big.json()).toEqual(JSON.parse(gatewayErrorBody('integrationFailure')));
    expect(rec.events).toHaveLength(1);
  });

  it('answers 502 BadGateway when the function’s result is over Lambda’s 6 MB response limit, as AWS does, and keeps serving', async () => {
    const text = (n: number) => ({ statusCode: 200, body: 'x'.repeat(n) });
    // 4.8 MB of binary is 6.4 MB of base64: over the limit although the bytes sent would be fewer.
    const image = {
      statusCode: 200,
      isBase64Encoded: true,
      body: Buffer.alloc(4_800_000).toString('base64'),
    };
    const under = 6 * 1024 * 1024 - 100;

    rec.set(() => text(6 * 1024 * 1024 + 1));
    const tooLarge = await fetch(`${api.url}/health`);
    const tooLargeBody = await tooLarge.text();
    rec.set(() => image);
    const binary = await fetch(`${api.url}/health`);
    await binary.arrayBuffer();
    rec.set(() => text(under));
    const fits = await fetch(`${api.url}/health`);

    expect(tooLarge.status).toBe(502);
    expect(tooLargeBody).toBe(gatewayErrorBody('integrationFailure'));
    expect(tooLargeBody).toContain('6 MB response limit');
    expect(binary.status).toBe(502);
    expect(fits.status).toBe(200);
    expect((await fits.text()).length).toBe(under);
  });

  it('answers an unknown path 404 RouteNotFound and passes a wrong method on a known path to the function', async () => {
    const unknown = await fetch(`${api.url}/nope`);
    const wrongMethod = await fetch(`${api.url}/datasets`, { method: 'DELETE' });

    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual(JSON.parse(gatewayErrorBody('routeNotFound')));
    expect(wrongMethod.status).toBe(200);
    expect(rec.events.map((e) => `${e.httpMethod} ${e.resource}`)).toEqual(['DELETE /datasets']);
  });

  it('answers 502 BadGateway when the handler throws or returns a malformed result, and keeps serving', async () => {
    rec.set(() => {
      throw new Error('boom');
    });
    const threw = await fetch(`${api.url}/health`);
    rec.set(() => ({ body: 'no status' }));
    const malformed = await fetch(`${api.url}/health`);
    rec.set(() => ({ statusCode: 201, multiValueHeaders: { 'set-cookie': ['a=1', 'b=2'] }, body: 'made' }));
    const fine = await fetch(`${api.url}/health`);

    expect(threw.status).toBe(502);
    expect(await threw.json()).toEqual(JSON.parse(gatewayErrorBody('integrationFailure')));
    expect(malformed.status).toBe(502);
    expect(fine.status).toBe(201);
    expect(fine.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await fine.text()).toBe('made');
  });

  it('survives a malformed HTTP request', async () => {
    const { connect } = await import('node:net');
    const reply = await new Promise<string>((resolve) => {
      const socket = connect(api.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => {
        text += d.toString();
      });
      socket.on('close', () => resolve(text));
    });
    const after = await fetch(`${api.url}/health`);

    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(after.status).toBe(200);
  });
});

describe('the local API Gateway adapter with an API key', () => {
  const rec = recordingHandler();
  let api: HttpApi;

  beforeAll(async () => {
    api = await startHttpApi({
      port: 0,
      handler: rec.handler,
      region: 'us-east-1',
      apiKey: 's3cret',
      log: silentLog,
    });
  });
  afterAll(async () => {
    await api.stop(1000);
  });
  beforeEach(() => {
    rec.events.length = 0;
  });

  it('refuses requests without the right x-api-key with 403 Forbidden in the API error shape', async () => {
    const missing = await fetch(`${api.url}/datasets`);
    const wrong = await fetch(`${api.url}/datasets`, { headers: { 'x-api-key': 'guess' } });
    const right = await fetch(`${api.url}/datasets`, { headers: { 'x-api-key': 's3cret' } });

    expect(missing.status).toBe(403);
    expect(await missing.json()).toEqual(JSON.parse(gatewayErrorBody('invalidApiKey')));
    expect(wrong.status).toBe(403);
    expect(right.status).toBe(200);
    expect(rec.events).toHaveLength(1);
    expect(rec.events[0]?.requestContext.identity.apiKey).toBe('s3cret');
    expect(rec.events[0]?.requestContext.identity.apiKeyId).toBe('local-admin');
  });

  it('lets GET /health and CORS preflights through without a key, as the gateway does', async () => {
    const health = await fetch(`${api.url}/health`);
    const preflight = await fetch(`${api.url}/datasets/pets/predictions`, { method: 'OPTIONS' });

    expect(health.status).toBe(200);
    expect(preflight.status).toBe(200);
    expect(
      rec.events.map((e) => `${e.httpMethod} ${e.resource} ${e.requestContext.identity.apiKeyId}`),
    ).toEqual(['GET /health null', 'OPTIONS /datasets/{d}/predictions null']);
  });
});
