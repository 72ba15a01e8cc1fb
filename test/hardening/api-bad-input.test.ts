import { request } from 'node:http';
import { connect } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiHandler } from '../../lib/api/app.ts';
import { type HttpApi, startHttpApi } from '../../lib/local/http-api.ts';
import { loadExtractor } from '../../lib/model/extractor.ts';
import type { FeatureExtractor } from '../../lib/model/types.ts';
import { putObject } from '../../lib/storage/s3.ts';
import type { Head } from '../../lib/training/types.ts';
import { makeBadImageCorpus } from '../../scripts/fixtures/make-bad-images.ts';
import { type Emulator, startEmulator } from '../helpers/emulator.ts';
import { makeImage, truncateImage } from '../helpers/images.ts';
import {
  errorLines,
  expectError,
  expectPrediction,
  featuresOf,
  hardenedApi,
  makeHead,
  predictBinary,
  predictJson,
  promote,
  type RecordingLog,
  recordingLog,
  requestEvent,
  seedModel,
} from './support.ts';

const V1 = '20261128T100000Z-aaaaaa';
const corpus = await makeBadImageCorpus();

/** A prediction request for a dataset name as a client would type it (path percent-encoded, like API Gateway). */
function predictNamed(dataset: string, bytes: Uint8Array): APIGatewayProxyEvent {
  const event = predictBinary('pets', bytes);
  event.path = `/datasets/${encodeURIComponent(dataset)}/predictions`;
  event.pathParameters = { d: dataset };
  return event;
}

function withHeaders(event: APIGatewayProxyEvent, headers: Record<string, string>): APIGatewayProxyEvent {
  event.headers = headers;
  event.multiValueHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
  return event;
}

describe('bad input through the API (emulated S3, real extractor at 32x32)', () => {
  let em: Emulator;
  let extractor: FeatureExtractor;
  let api: ApiHandler;
  let log: RecordingLog;
  let head: Head;
  let valid: Buffer;
  let validFeatures: Float32Array;

  /** The check after every refused request: the next valid request is answered correctly. */
  async function expectStillServing(): Promise<void> {
    expectPrediction(await api(predictBinary('pets', valid)), head, validFeatures);
  }

  beforeAll(async () => {
    em = await startEmulator();
    extractor = await loadExtractor({ weights: { kind: 'random', seed: 1 }, inputSize: 32, pooling: 'avg' });
    head = makeHead(['cat', 'dog', 'fox'], extractor.dims, extractor.specId, 21);
    valid = await makeImage('png', {
      width: 40,
      height: 30,
      color: [220, 40, 40],
      pattern: 'hstripes',
      seed: 3,
    });
    validFeatures = await featuresOf(extractor, valid);
    const { s3 } = em.clients;
    await seedModel(s3, em.bucket, 'pets', V1, head);
    await promote(s3, em.bucket, 'pets', V1);
    await putObject(s3, em.bucket, 'datasets/pets/cat/1.png', valid);
    await putObject(
      s3,
      em.bucket,
      'datasets/pets/cat/broken.jpg',
      truncateImage(await makeImage('jpeg', { seed: 9 })),
    );
    await putObject(s3, em.bucket, 'datasets/pets/notes.txt', 'not an image');
    await putObject(s3, em.bucket, 'datasets/other/cat/1.png', valid);
    await putObject(s3, em.bucket, 'datasets/fresh/cat/1.png', valid);
    log = recordingLog();
    api = hardenedApi({ s3, bucket: em.bucket, extractor, log });
  });

  afterAll(async () => {
    extractor?.dispose();
    await em?.stop();
  });

  describe('the image corpus', () => {
    it.each(corpus.map((e) => [e.file, e] as const))(
      '%s: the decoder decides, the client learns why, and the next request is served',
      async (_file, entry) => {
        // Prepare
        const mark = log.lines.length;

        // Act: as raw bytes (octet-stream), as the content type its name implies, and as JSON base64.
        const raw = await api(
          predictBinary('pets', entry.bytes, { contentType: 'application/octet-stream' }),
        );
        const typed = await api(predictBinary('pets', entry.bytes, { contentType: entry.contentType }));
        const json = await api(predictJson('pets', { image: entry.bytes.toString('base64') }));

        // Assess
        const typeAccepted = /^image\/|^application\/octet-stream$/.test(entry.contentType);
        if (entry.expect.ok) {
          const f = await featuresOf(extractor, entry.bytes);
          expectPrediction(raw, head, f);
          expectPrediction(typed, head, f);
          expectPrediction(json, head, f);
        } else {
          const code = entry.expect.code;
          // An empty JSON 'image' is a body error; bytes that are not an image are the decoder's 422.
          expectError(raw, code === 'EmptyImage' ? 400 : 422, code === 'EmptyImage' ? 'EmptyBody' : code);
          if (typeAccepted)
            expectError(typed, code === 'EmptyImage' ? 400 : 422, code === 'EmptyImage' ? 'EmptyBody' : code);
          else expectError(typed, 415, 'UnsupportedMediaType');
          expectError(json, code === 'EmptyImage' ? 400 : 422, code === 'EmptyImage' ? 'InvalidBody' : code);
        }
        await expectStillServing();
        expect(errorLines(log, mark)).toEqual([]);
      },
    );
  });

  describe('HTTP requests a client gets wrong', () => {
    const tooBig = Buffer.alloc(6 * 1024 * 1024 + 1, 1);
    const cases: [string, number, string, () => APIGatewayProxyEvent][] = [
      [
        'a text/plain body',
        415,
        'UnsupportedMediaType',
        () => predictBinary('pets', valid, { contentType: 'text/plain' }),
      ],
      [
        'a multipart form upload',
        415,
        'UnsupportedMediaType',
        () => predictBinary('pets', valid, { contentType: 'multipart/form-data; boundary=x' }),
      ],
      [
        'no content type at all',
        415,
        'UnsupportedMediaType',
        () => withHeaders(predictBinary('pets', valid), { Host: 'api' }),
      ],
      ['a raw body one byte over 6 MB', 413, 'PayloadTooLarge', () => predictBinary('pets', tooBig)],
      [
        'a JSON image one byte over 6 MB',
        413,
        'PayloadTooLarge',
        () => predictJson('pets', { image: tooBig.toString('base64') }),
      ],
      ['an empty body', 400, 'EmptyBody', () => predictBinary('pets', Buffer.alloc(0))],
      ['malformed JSON', 400, 'InvalidJson', () => predictJson('pets', '{"image": ', { raw: true })],
      [
        'JSON with a trailing comma',
        400,
        'InvalidJson',
        () => predictJson('pets', '{"key": "x",}', { raw: true }),
      ],
      ['a JSON array', 400, 'InvalidBody', () => predictJson('pets', '[]', { raw: true })],
      ['JSON null', 400, 'InvalidBody', () => predictJson('pets', 'null', { raw: true })],
      [
        'JSON nested 100,000 deep',
        400,
        'InvalidBody',
        () => predictJson('pets', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, { raw: true }),
      ],
      [
        'JSON with both image and key',
        400,
        'InvalidBody',
        () => predictJson('pets', { image: 'AAAA', key: 'datasets/pets/cat/1.png' }),
      ],
      [
        'JSON with an unknown field',
        400,
        'InvalidBody',
        () => predictJson('pets', { url: 'http://example.com/cat.jpg' }),
      ],
      [
        'JSON image that is not base64',
        400,
        'InvalidBase64',
        () => predictJson('pets', { image: 'this is not base64!' }),
      ],
      [
        'JSON image of base64 text',
        422,
        'UnsupportedImageFormat',
        () => predictJson('pets', { image: Buffer.from('hello world').toString('base64') }),
      ],
      [
        'a key outside datasets/',
        400,
        'InvalidImageKey',
        () => predictJson('pets', { key: 'models/pets/current.json' }),
      ],
      [
        'a key climbing out with ../',
        400,
        'InvalidImageKey',
        () => predictJson('pets', { key: '../../etc/passwd' }),
      ],
      [
        'a key of another dataset',
        403,
        'KeyOutsideDataset',
        () => predictJson('pets', { key: 'datasets/other/cat/1.png' }),
      ],
      [
        'a key of another dataset through ..',
        400,
        'InvalidImageKey',
        () => predictJson('pets', { key: 'datasets/pets/cat/../../other/cat/1.png' }),
      ],
      [
        'a key that is not an image name',
        400,
        'InvalidImageKey',
        () => predictJson('pets', { key: 'datasets/pets/notes.txt' }),
      ],
      [
        'a key longer than 1024 characters',
        400,
        'InvalidBody',
        () => predictJson('pets', { key: `datasets/pets/cat/${'a'.repeat(1100)}.png` }),
      ],
      [
        'a key of a missing image',
        404,
        'ImageNotFound',
        () => predictJson('pets', { key: 'datasets/pets/cat/missing.png' }),
      ],
      [
        'a key of a truncated image',
        422,
        'CorruptImage',
        () => predictJson('pets', { key: 'datasets/pets/cat/broken.jpg' }),
      ],
      ['dataset ..', 400, 'InvalidDatasetName', () => predictNamed('..', valid)],
      ['dataset with a slash', 400, 'InvalidDatasetName', () => predictNamed('pets/cat', valid)],
      ['dataset in upper case', 400, 'InvalidDatasetName', () => predictNamed('Pets', valid)],
      ['dataset in unicode', 400, 'InvalidDatasetName', () => predictNamed('chats-été-😺', valid)],
      ['dataset of 200 characters', 400, 'InvalidDatasetName', () => predictNamed('p'.repeat(200), valid)],
      ['dataset starting with a dash', 400, 'InvalidDatasetName', () => predictNamed('-pets', valid)],
      ['dataset with a NUL byte', 400, 'InvalidDatasetName', () => predictNamed('pets\u0000', valid)],
      ['an unknown dataset', 404, 'DatasetNotFound', () => predictNamed('nobody-here', valid)],
      ['a dataset without a promoted model', 409, 'NoPromotedModel', () => predictNamed('fresh', valid)],
      ['top=0', 400, 'InvalidTop', () => predictBinary('pets', valid, { query: { top: '0' } })],
      ['top=-1', 400, 'InvalidTop', () => predictBinary('pets', valid, { query: { top: '-1' } })],
      ['top=abc', 400, 'InvalidTop', () => predictBinary('pets', valid, { query: { top: 'abc' } })],
      ['top=1000', 400, 'InvalidTop', () => predictBinary('pets', valid, { query: { top: '1000' } })],
      ['top=1.5', 400, 'InvalidTop', () => predictBinary('pets', valid, { query: { top: '1.5' } })],
      ['top= (empty)', 400, 'InvalidTop', () => predictBinary('pets', valid, { query: { top: '' } })],
      [
        'PUT on the predictions route',
        405,
        'MethodNotAllowed',
        () => ({ ...predictBinary('pets', valid), httpMethod: 'PUT' }),
      ],
      [
        'GET /datasets/.. ',
        400,
        'InvalidDatasetName',
        () => requestEvent('GET', '/datasets/..', { resource: '/datasets/{d}', dataset: '..' }),
      ],
      [
        'GET the model of an unknown dataset',
        404,
        'DatasetNotFound',
        () =>
          requestEvent('GET', '/datasets/nobody-here/model', {
            resource: '/datasets/{d}/model',
            dataset: 'nobody-here',
          }),
      ],
      [
        'a training with malformed JSON',
        400,
        'InvalidJson',
        () =>
          requestEvent('POST', '/datasets/pets/trainings', {
            resource: '/datasets/{d}/trainings',
            dataset: 'pets',
            contentType: 'application/json',
            body: '{',
          }),
      ],
      ['a route that does not exist', 404, 'RouteNotFound', () => requestEvent('GET', '/admin', {})],
    ];

    it.each(cases)('%s → %i %s, and the next valid request is served', async (_name, status, code, build) => {
      // Prepare
      const mark = log.lines.length;

      // Act
      const res = await api(build());

      // Assess
      expectError(res, status, code);
      await expectStillServing();
      expect(errorLines(log, mark)).toEqual([]);
    });

    it('answers top=k within the number of classes with the k best scores', async () => {
      const res = await api(predictBinary('pets', valid, { query: { top: '2' } }));
      const body = JSON.parse(res.body) as { scores: { probability: number }[]; confidence: number };
      expect(res.statusCode).toBe(200);
      expect(body.scores).toHaveLength(2);
      expect(body.scores[0]?.probability).toBe(body.confidence);
    });
  });

  describe('the same through the local HTTP adapter (real sockets on 127.0.0.1)', () => {
    let http: HttpApi;
    let gatewayLog: RecordingLog;

    beforeAll(async () => {
      gatewayLog = recordingLog();
      http = await startHttpApi({ port: 0, region: 'us-east-1', handler: (e) => api(e), log: gatewayLog });
    });
    afterAll(async () => {
      await http?.stop(2000);
    });

    /** One request over node:http, path sent verbatim (fetch would normalise `%2E%2E` away). */
    function post(
      path: string,
      body: Uint8Array | string,
      contentType?: string,
    ): Promise<APIGatewayProxyResult> {
      return new Promise((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: http.port,
            path,
            method: 'POST',
            headers: contentType ? { 'content-type': contentType } : {},
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                statusCode: res.statusCode ?? 0,
                headers: { 'content-type': res.headers['content-type'] ?? '' },
                body: Buffer.concat(chunks).toString('utf8'),
              }),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    }

    async function expectHttpServing(): Promise<void> {
      expectPrediction(await post('/datasets/pets/predictions', valid, 'image/png'), head, validFeatures);
    }

    const urlCases: [string, number, string, string][] = [
      ['dataset %2E%2E', 400, 'InvalidDatasetName', '/datasets/%2E%2E/predictions'],
      ['dataset with an encoded slash', 400, 'InvalidDatasetName', '/datasets/pets%2Fcat/predictions'],
      ['dataset in upper case', 400, 'InvalidDatasetName', '/datasets/PETS/predictions'],
      ['dataset in unicode', 400, 'InvalidDatasetName', `/datasets/${encodeURIComponent('été')}/predictions`],
      ['dataset of 200 characters', 400, 'InvalidDatasetName', `/datasets/${'p'.repeat(200)}/predictions`],
      ['dataset with broken percent-encoding', 400, 'InvalidDatasetName', '/datasets/%ZZ/predictions'],
      ['an unknown dataset', 404, 'DatasetNotFound', '/datasets/nobody-here/predictions'],
      ['a dataset without a promoted model', 409, 'NoPromotedModel', '/datasets/fresh/predictions'],
      ['top=0', 400, 'InvalidTop', '/datasets/pets/predictions?top=0'],
      ['top=-1', 400, 'InvalidTop', '/datasets/pets/predictions?top=-1'],
      ['top=abc', 400, 'InvalidTop', '/datasets/pets/predictions?top=abc'],
      ['top=1000', 400, 'InvalidTop', '/datasets/pets/predictions?top=1000'],
      ['top with broken percent-encoding', 400, 'InvalidTop', '/datasets/pets/predictions?top=%ZZ'],
    ];

    it.each(urlCases)('%s → %i %s', async (_name, status, code, path) => {
      const mark = log.lines.length;
      expectError(await post(path, valid, 'image/png'), status, code);
      await expectHttpServing();
      expect(errorLines(log, mark)).toEqual([]);
    });

    it('refuses bodies by content type, JSON and decoder with the API error codes', async () => {
      const mark = log.lines.length;
      const corrupt = corpus.find((e) => e.file === 'truncated.jpg');
      const svg = corpus.find((e) => e.file === 'vector.svg');
      if (!corrupt || !svg) throw new Error('corpus entries missing');
      expectError(await post('/datasets/pets/predictions', valid, 'text/plain'), 415, 'UnsupportedMediaType');
      expectError(await post('/datasets/pets/predictions', valid), 415, 'UnsupportedMediaType');
      expectError(
        await post('/datasets/pets/predictions', '{"image": ', 'application/json'),
        400,
        'InvalidJson',
      );
      expectError(
        await post('/datasets/pets/predictions', '{"image": "%%%"}', 'application/json'),
        400,
        'InvalidBase64',
      );
      expectError(await post('/datasets/pets/predictions', corrupt.bytes, 'image/jpeg'), 422, 'CorruptImage');
      expectError(
        await post('/datasets/pets/predictions', svg.bytes, 'image/svg+xml'),
        422,
        'UnsupportedImageFormat',
      );
      expectError(
        await post(
          '/datasets/pets/predictions',
          JSON.stringify({ key: 'datasets/other/cat/1.png' }),
          'application/json',
        ),
        403,
        'KeyOutsideDataset',
      );
      await expectHttpServing();
      expect(errorLines(log, mark)).toEqual([]);
      expect(errorLines(gatewayLog)).toEqual([]);
    });

    it('refuses a body the function cannot take before the handler runs, as the deployed gateway does', async () => {
      // Prepare: over API Gateway's 10 MB (declared), and 7 MB streamed (under 10 MB, but over
      // Lambda's 6 MB event limit once base64-encoded).
      const over = Buffer.alloc(10 * 1024 * 1024 + 1);
      const streamed = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 7; i++) c.enqueue(new Uint8Array(1024 * 1024));
          c.close();
        },
      });

      // Act
      const declared = await post('/datasets/pets/predictions', over, 'image/png');
      const chunked = await fetch(`${http.url}/datasets/pets/predictions`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: streamed,
        duplex: 'half',
      } as RequestInit);

      // Assess: the gateway's answers in the API's error shape (lib/api/gateway.ts).
      expect(declared.statusCode).toBe(413);
      expect(JSON.parse(declared.body)).toMatchObject({ error: { code: 'PayloadTooLarge' } });
      expect(chunked.status).toBe(502);
      expect(chunked.headers.get('content-type')).toBe('application/json');
      expect((await chunked.json()) as unknown).toMatchObject({
        error: { code: 'BadGateway', message: expect.stringMatching(/6 MB/) },
      });
      await expectHttpServing();
    });

    it('answers a malformed HTTP request with 400 and keeps serving', async () => {
      // Act
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(http.port, '127.0.0.1', () => socket.write('THIS IS NOT HTTP\r\n\r\n'));
        let text = '';
        socket.on('data', (d: Buffer) => {
          text += d.toString('latin1');
        });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });

      // Assess
      expect(answer).toMatch(/^HTTP\/1\.1 400/);
      await expectHttpServing();
    });

    it('survives a client that gives up halfway through an upload', async () => {
      // Act: declare 100 KB, send 1 KB, hang up.
      await new Promise<void>((resolve, reject) => {
        const socket = connect(http.port, '127.0.0.1', () => {
          socket.write(
            'POST /datasets/pets/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n',
          );
          socket.write(Buffer.alloc(1000));
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 50);
        });
        socket.on('error', reject);
      });

      // Assess
      await expectHttpServing();
    });

    it('answers 20 concurrent valid and bad requests each correctly', async () => {
      // Prepare
      const bad = corpus.filter((e) => !e.expect.ok && e.bytes.length > 0).slice(0, 10);

      // Act
      const results = await Promise.all([
        ...bad.map((e) => post('/datasets/pets/predictions', e.bytes, 'application/octet-stream')),
        ...Array.from({ length: 10 }, () => post('/datasets/pets/predictions', valid, 'image/png')),
      ]);

      // Assess
      results.slice(0, bad.length).forEach((r, i) => {
        const entry = bad[i];
        if (entry && !entry.expect.ok) expectError(r, 422, entry.expect.code);
      });
      for (const r of results.slice(bad.length)) expectPrediction(r, head, validFeatures, 4);
    });
  });
});
