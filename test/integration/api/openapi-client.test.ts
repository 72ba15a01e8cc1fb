/**
 * `GET /openapi.json` and the typed client (lib/api/client.ts) over loopback: the local API Gateway
 * stand-in with an admin key in front of the real API on the S3 emulator. The document needs no
 * key; the client's calls are typed by the route table and answer what the document describes.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../../../lib/api/app.ts';
import { ApiCallError, createApiClient } from '../../../lib/api/client.ts';
import { routeSchemas } from '../../../lib/api/contract.ts';
import { PredictionResponseSchema } from '../../../lib/api/schemas.ts';
import { type HttpApi, startHttpApi } from '../../../lib/local/http-api.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { putObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage } from '../../helpers/images.ts';
import { makeHead, promote, seedModel } from './support.ts';

const ADMIN = 'admin-key-of-the-openapi-test';
const V1 = '20261128T100000Z-aaaaaa';

describe('GET /openapi.json and the typed client, through the local stand-in', () => {
  let em: Emulator;
  let http: HttpApi;
  let png: Uint8Array;

  beforeAll(async () => {
    em = await startEmulator();
    const extractor = fakeExtractor({ size: 32 });
    const { s3 } = em.clients;
    png = await makeImage('png', {
      width: 32,
      height: 32,
      color: [200, 30, 30],
      pattern: 'hstripes',
      seed: 1,
    });
    await seedModel(s3, em.bucket, 'pets', V1, makeHead(['cat', 'dog'], extractor.dims, extractor.specId, 5));
    await promote(s3, em.bucket, 'pets', V1, null);
    await putObject(s3, em.bucket, 'datasets/pets/cat/1.png', png);
    const api = createApi({
      s3,
      sfn: {
        send: async () => ({
          executionArn: 'arn:aws:states:us-east-1:1:execution:t:x',
          startDate: new Date(),
          $metadata: {},
        }),
      },
      extractor: Promise.resolve(extractor),
      cache: createModelCache({ s3, bucket: em.bucket, refreshSeconds: 0, log: silentLog }),
      config: {
        bucket: em.bucket,
        stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:t',
        maxBodyBytes: 6 * 1024 * 1024,
        limitInputPixels: 40_000_000,
        maxBatch: 2,
        corsOrigin: undefined,
      },
      log: silentLog,
    });
    http = await startHttpApi({
      port: 0,
      region: 'us-east-1',
      handler: (e) => api(e),
      apiKey: ADMIN,
      log: silentLog,
    });
  }, 60_000);

  afterAll(async () => {
    await http?.stop(1000);
    await em?.stop();
  });

  it('serves the document without a key while the data routes need one', async () => {
    const doc = await fetch(`${http.url}/openapi.json`);
    const datasets = await fetch(`${http.url}/datasets`);

    expect(doc.status).toBe(200);
    expect(doc.headers.get('content-type')).toContain('application/json');
    const body = (await doc.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(body.openapi).toBe('3.1.0');
    expect(Object.keys(body.paths)).toContain('/datasets/{d}/predictions');
    expect((await new Validator().validate(body)).valid).toBe(true);
    expect(datasets.status).toBe(403);
  });

  it('predicts through the typed client with a raw image and the query of the route', async () => {
    const client = createApiClient(http.url, ADMIN);

    const p = await client.call('POST /datasets/{d}/predictions', {
      params: { d: 'pets' },
      query: { top: 1, threshold: '0' },
      raw: { data: png, contentType: 'image/png' },
    });

    expect(PredictionResponseSchema.parse(p)).toEqual(p);
    expect(p.dataset).toBe('pets');
    expect(p.model.version).toBe(V1);
    expect(p.scores).toHaveLength(1);
    expect(p.abstained).toBe(false);
  });

  it('sends a JSON body and reads the answer of the route', async () => {
    const client = createApiClient(http.url, () => ADMIN);

    const p = await client.call('POST /datasets/{d}/predictions', {
      params: { d: 'pets' },
      body: { key: 'datasets/pets/cat/1.png' },
    });
    const status = await client.call('GET /datasets/{d}', { params: { d: 'pets' } });

    expect(p.scores.map((s) => s.label).sort()).toEqual(['cat', 'dog']);
    expect(status.labels.cat?.images).toBe(1);
    expect(status.model?.version).toBe(V1);
  });

  it('throws the API error code and message of an error answer, the gateway’s included', async () => {
    const client = createApiClient(http.url, ADMIN);
    const keyless = createApiClient(http.url);

    const missing = await client
      .call('GET /datasets/{d}/model', { params: { d: 'nothing-here' } })
      .catch((e) => e);
    const refused = await keyless.call('GET /datasets', {}).catch((e) => e);

    expect(missing).toBeInstanceOf(ApiCallError);
    expect(missing).toMatchObject({ status: 404 });
    expect((missing as ApiCallError).code).toMatch(/NotFound/);
    expect(refused).toMatchObject({ status: 403, code: 'Forbidden' });
  });

  it('types each call by its route: path parameters are required and encoded, the query is the route’s', () => {
    const client = createApiClient('http://127.0.0.1:9/v1', ADMIN);

    const url = client.url('GET /datasets/{d}/model/export', {
      params: { d: 'pets' },
      query: { format: 'onnx', redirect: 'false' },
    });
    const thumbnail = client.url('GET /datasets/{d}/images', {
      params: { d: 'pets' },
      query: { key: 'datasets/pets/cat/a b.png', size: 64 },
    });

    expect(url).toBe('http://127.0.0.1:9/v1/datasets/pets/model/export?format=onnx&redirect=false');
    expect(thumbnail).toBe(
      'http://127.0.0.1:9/v1/datasets/pets/images?key=datasets%2Fpets%2Fcat%2Fa+b.png&size=64',
    );
    // @ts-expect-error: the route's path has {d}, so params.d is required (checked by npm run lint)
    expect(() => client.url('GET /datasets/{d}', {})).toThrow("missing path parameter 'd'");
    // @ts-expect-error: `bogus` is not a query parameter of this route
    expect(client.url('GET /datasets/{d}/quality', { params: { d: 'pets' }, query: { bogus: 1 } })).toContain(
      'bogus=1',
    );
  });

  it.each([
    ['GET /health', '/health'],
    ['GET /datasets', '/datasets'],
    ['GET /datasets/{d}', '/datasets/pets'],
    ['GET /datasets/{d}/model', '/datasets/pets/model'],
    ['GET /datasets/{d}/models', '/datasets/pets/models'],
    ['GET /datasets/{d}/failures', '/datasets/pets/failures'],
  ])('answers %s in the shape its declared schema describes', async (route, path) => {
    const res = await fetch(`${http.url}${path}`, { headers: { 'x-api-key': ADMIN } });
    const schema = routeSchemas(route)?.response;

    expect(res.status).toBe(200);
    expect(schema).toBeDefined();
    const parsed = schema?.safeParse(await res.json());
    expect(parsed?.error?.issues ?? []).toEqual([]);
  });
});
