/**
 * The console's API routes against the local S3 emulator (conditional writes and the
 * bucket's CORS rule as the stack applies them): presigned uploads a browser can PUT to, thumbnails
 * scoped to the dataset, failed images with their reason, model versions, promote / roll back,
 * and the page at `GET /`.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'aws-lambda';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHandler, createApi } from '../../../lib/api/app.ts';
import { BROWSER_MODEL_MODULE, ORT_DIR, ORT_WASM_FILE } from '../../../lib/api/console-assets.ts';
import type { ApiConfig } from '../../../lib/api/types.ts';
import { featureMetadata } from '../../../lib/features/metadata.ts';
import { type LocalEmulator, startLocalEmulator } from '../../../lib/local/emulator.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { type AwsClients, createAwsClients } from '../../../lib/storage/clients.ts';
import { featureErrorKey, modelFileKey } from '../../../lib/storage/keys.ts';
import { putLargeObject } from '../../../lib/storage/multipart.ts';
import { deleteObject, getObject, putJson, putObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage } from '../../helpers/images.ts';
import { bodyOf, errorOf, loadEvent, makeHead, promote, requestEvent, seedModel } from './support.ts';

const BUCKET = 'console-test';
const V1 = '20261101T100000Z-aaaaaa';
const V2 = '20261102T100000Z-bbbbbb';
const V3 = '20261103T100000Z-cccccc';
const PAGE_ORIGIN = 'http://127.0.0.1:3000';

describe('the console routes', () => {
  let emulator: LocalEmulator;
  let clients: AwsClients;
  let api: ApiHandler;
  let consoleDir: string;
  let png: Buffer;
  const extractor = fakeExtractor();

  const call = (event: Parameters<ApiHandler>[0]): Promise<APIGatewayProxyResult> => api(event);
  const json = (method: string, path: string, resource: string, dataset: string, body?: unknown) =>
    call(
      requestEvent(method, path, {
        resource,
        dataset,
        ...(body !== undefined ? { contentType: 'application/json', body: JSON.stringify(body) } : {}),
      }),
    );

  beforeAll(async () => {
    emulator = await startLocalEmulator({ port: 0, region: 'us-east-1', buckets: [BUCKET], log: silentLog });
    clients = createAwsClients({
      bucket: BUCKET,
      region: 'us-east-1',
      endpoint: emulator.endpoint,
      awsTimeoutMs: 5_000,
    });
    consoleDir = await mkdtemp(join(tmpdir(), 'tlearn-console-page-'));
    await writeFile(
      join(consoleDir, 'index.html'),
      '<!doctype html><html><body><div id="app"></div><script type="module">console.log(1)</script></body></html>',
    );
    png = await makeImage('png', { width: 300, height: 200, color: [220, 40, 40], pattern: 'hstripes' });
    const { s3 } = clients;
    const head = makeHead(['cat', 'dog'], extractor.dims, extractor.specId, 3);
    await seedModel(s3, BUCKET, 'pets', V1, head);
    await seedModel(s3, BUCKET, 'pets', V2, head);
    // V3: a training that wrote its report but not (yet) its model.json.
    await putJson(s3, BUCKET, modelFileKey('pets', V3, 'report.json'), { partial: true });
    await promote(s3, BUCKET, 'pets', V1);
    await seedModel(s3, BUCKET, 'fresh', V1, head);
    await putObject(s3, BUCKET, 'datasets/pets/cat/1.png', png, { contentType: 'image/png' });
    await putObject(s3, BUCKET, 'datasets/other/cat/1.png', png, { contentType: 'image/png' });
    const bad = await putObject(s3, BUCKET, 'datasets/pets/dog/broken.jpg', 'not a jpeg');
    // The error record counts only when written after the image and tagged with its ETag.
    await putObject(
      s3,
      BUCKET,
      featureErrorKey({ dataset: 'pets', label: 'dog', file: 'broken.jpg' }),
      JSON.stringify({
        imageKey: 'datasets/pets/dog/broken.jpg',
        sourceEtag: bad.etag,
        spec: extractor.specId,
        reason: 'CorruptImage: jpeg image is truncated or corrupt',
        code: 'CorruptImage',
        at: '2026-11-01T10:00:00.000Z',
      }),
      { metadata: featureMetadata(bad.etag, extractor.specId, 'dog') },
    );
    const config: ApiConfig = {
      bucket: BUCKET,
      stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:t',
      maxBodyBytes: 6 * 1024 * 1024,
      limitInputPixels: 40_000_000,
      maxBatch: 4,
      corsOrigin: undefined,
      consoleDir,
    };
    api = createApi({
      s3,
      sfn: { send: async () => ({ executionArn: 'x', startDate: new Date(), $metadata: {} }) },
      extractor: Promise.resolve(extractor),
      cache: createModelCache({ s3, bucket: BUCKET, refreshSeconds: 0, log: silentLog }),
      config,
      log: silentLog,
    });
  });

  afterAll(async () => {
    clients?.s3.destroy();
    await emulator?.stop();
    if (consoleDir) await rm(consoleDir, { recursive: true, force: true });
  });

  describe('POST /datasets/{d}/uploads', () => {
    it('presigns PUTs under datasets/{d}/{label}/ that a page on another origin can use, and rejects what is not an image', async () => {
      const res = await json('POST', '/datasets/pets/uploads', '/datasets/{d}/uploads', 'pets', {
        files: [
          { label: 'cat', name: 'new cat.png', size: png.length },
          { label: 'cat', name: '.DS_Store', size: 10 },
          { label: 'dog', name: 'notes.txt', size: 10 },
          { label: '..', name: 'x.png', size: 10 },
        ],
      });
      const body = bodyOf<{
        uploads: { key: string; url: string; headers: Record<string, string> }[];
        rejected: { name: string; reason: string }[];
      }>(res);
      const upload = body.uploads[0];
      if (!upload) throw new Error('no upload');
      const preflight = await fetch(upload.url, {
        method: 'OPTIONS',
        headers: {
          origin: PAGE_ORIGIN,
          'access-control-request-method': 'PUT',
          'access-control-request-headers': 'content-type,if-none-match',
        },
      });
      const put = await fetch(upload.url, {
        method: 'PUT',
        headers: { ...upload.headers, origin: PAGE_ORIGIN },
        body: png,
      });
      const stored = await getObject(clients.s3, BUCKET, upload.key);
      const foreign = await fetch(upload.url, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'PUT' },
      });

      expect(res.statusCode).toBe(200);
      expect(body.uploads).toHaveLength(1);
      expect(upload.key).toBe('datasets/pets/cat/new cat.png');
      expect(upload.headers).toEqual({ 'content-type': 'image/png', 'if-none-match': '*' });
      expect(upload.url).toContain('X-Amz-Signature=');
      expect(body.rejected.map((r) => r.name)).toEqual(['.DS_Store', 'notes.txt', 'x.png']);
      expect(preflight.status).toBe(200);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(PAGE_ORIGIN);
      expect(preflight.headers.get('access-control-allow-methods')).toBe('PUT, GET');
      expect(put.status).toBe(200);
      expect(put.headers.get('access-control-allow-origin')).toBe(PAGE_ORIGIN);
      expect(Buffer.from(stored.body).equals(png)).toBe(true);
      expect(foreign.status).toBe(403);
    });

    const presign = async (files: unknown[]) => {
      const res = await json('POST', '/datasets/pets/uploads', '/datasets/{d}/uploads', 'pets', { files });
      return {
        res,
        body: bodyOf<{
          uploads: { key: string; url: string; headers: Record<string, string>; size: number }[];
          rejected: { name: string; label: string; reason: string }[];
        }>(res),
      };
    };
    const put = (u: { url: string; headers: Record<string, string> }, body: Buffer, extra = {}) =>
      fetch(u.url, { method: 'PUT', headers: { ...u.headers, ...extra }, body });

    it('never overwrites an existing image silently: the PUT gets 412 unless the file asked to replace', async () => {
      // prepare
      await putObject(clients.s3, BUCKET, 'datasets/pets/cat/taken.png', png, { contentType: 'image/png' });
      const other = await makeImage('png', { width: 40, height: 40, color: [0, 0, 200] });
      const first = (await presign([{ label: 'cat', name: 'taken.png', size: other.length }])).body
        .uploads[0];
      const again = (await presign([{ label: 'cat', name: 'taken.png', size: other.length, replace: true }]))
        .body.uploads[0];
      if (!first || !again) throw new Error('no upload');

      // act
      const refused = await put(first, other);
      const kept = await getObject(clients.s3, BUCKET, 'datasets/pets/cat/taken.png');
      const replaced = await put(again, other);
      const stored = await getObject(clients.s3, BUCKET, 'datasets/pets/cat/taken.png');

      // assess
      expect(refused.status).toBe(412);
      expect(Buffer.from(kept.body).equals(png)).toBe(true);
      expect(again.headers).toEqual({ 'content-type': 'image/png' });
      expect(replaced.status).toBe(200);
      expect(Buffer.from(stored.body).equals(other)).toBe(true);
    });

    it('signs the size: a body of another size, a dropped If-None-Match or a size over 50 MB is refused', async () => {
      // prepare
      const { body } = await presign([{ label: 'cat', name: 'sized.png', size: png.length }]);
      const u = body.uploads[0];
      if (!u) throw new Error('no upload');
      const tooLarge = await presign([{ label: 'cat', name: 'huge.png', size: 50 * 1024 * 1024 + 1 }]);
      const noSize = await presign([{ label: 'cat', name: 'nosize.png' }]);

      // act
      const bigger = await put(u, Buffer.concat([png, Buffer.alloc(1024)]));
      const withoutCondition = await fetch(u.url, {
        method: 'PUT',
        headers: { 'content-type': 'image/png' },
        body: png,
      });
      const exists = await clients.s3
        .send(new HeadObjectCommand({ Bucket: BUCKET, Key: u.key }))
        .then(() => true)
        .catch(() => false);
      const exact = await put(u, png);

      // assess
      expect(u.url).toMatch(/X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match/);
      expect(u.url).not.toContain('x-amz-checksum');
      expect(bigger.status).toBe(403);
      expect(await bigger.text()).toContain('SignatureDoesNotMatch');
      expect(withoutCondition.status).toBe(403);
      expect(exists).toBe(false);
      expect(exact.status).toBe(200);
      expect(tooLarge.res.statusCode).toBe(400);
      expect(errorOf(tooLarge.res).message).toContain('at most 50 MB');
      expect(noSize.res.statusCode).toBe(400);
    });

    it('normalizes names to NFC and rejects the same key twice in one request', async () => {
      // act
      const { body } = await presign([
        { label: 'cafe\u0301', name: 'a.png', size: 10 },
        { label: 'caf\u00e9', name: 'a.png', size: 12 },
        { label: 'cat', name: 'b.png', size: 10 },
      ]);

      // assess
      expect(body.uploads.map((u) => u.key)).toEqual([
        'datasets/pets/caf\u00e9/a.png',
        'datasets/pets/cat/b.png',
      ]);
      expect(body.rejected).toEqual([
        {
          name: 'a.png',
          label: 'caf\u00e9',
          reason: "'caf\u00e9/a.png' appears more than once in this request",
        },
      ]);
    });

    it('refuses a JSON body sent as text/plain (what a page on another site can send) with 415', async () => {
      // act
      const res = await call(
        requestEvent('POST', '/datasets/pets/uploads', {
          resource: '/datasets/{d}/uploads',
          dataset: 'pets',
          contentType: 'text/plain;charset=UTF-8',
          body: JSON.stringify({ files: [{ label: 'cat', name: 'c.png', size: 10 }] }),
        }),
      );

      // assess
      expect(res.statusCode).toBe(415);
      expect(errorOf(res).code).toBe('UnsupportedMediaType');
    });

    it('refuses an empty list and a bad dataset name with a 400 that says why', async () => {
      const empty = await json('POST', '/datasets/pets/uploads', '/datasets/{d}/uploads', 'pets', {
        files: [],
      });
      const badName = await json('POST', '/datasets/Pets/uploads', '/datasets/{d}/uploads', 'Pets', {
        files: [{ label: 'a', name: 'b.png', size: 1 }],
      });

      expect(empty.statusCode).toBe(400);
      expect(errorOf(empty).message).toContain('send at least one file');
      expect(badName.statusCode).toBe(400);
      expect(errorOf(badName).code).toBe('InvalidDatasetName');
    });
  });

  describe('GET /datasets/{d}/images', () => {
    const thumb = (dataset: string, query: Record<string, string>, headers: Record<string, string> = {}) => {
      const event = requestEvent('GET', `/datasets/${dataset}/images`, {
        resource: '/datasets/{d}/images',
        dataset,
        query,
      });
      event.headers = { ...event.headers, ...headers };
      return call(event);
    };

    it('answers a cached JPEG thumbnail no larger than asked, and 304 for the same ETag', async () => {
      const res = await thumb('pets', { key: 'datasets/pets/cat/1.png', size: '64' });
      const meta = await sharp(Buffer.from(res.body, 'base64')).metadata();
      const again = await thumb(
        'pets',
        { key: 'datasets/pets/cat/1.png', size: '64' },
        { 'If-None-Match': String(res.headers?.etag) },
      );

      expect(res.statusCode).toBe(200);
      expect(res.isBase64Encoded).toBe(true);
      expect(res.headers?.['content-type']).toBe('image/jpeg');
      expect(res.headers?.['cache-control']).toBe('private, max-age=3600');
      expect(meta.format).toBe('jpeg');
      expect([meta.width, meta.height]).toEqual([64, 43]);
      expect(again.statusCode).toBe(304);
    });

    it("refuses another dataset's image with 403, and names a missing one with 404", async () => {
      const other = await thumb('pets', { key: 'datasets/other/cat/1.png' });
      const missing = await thumb('pets', { key: 'datasets/pets/cat/nope.png' });
      const tooBig = await thumb('pets', { key: 'datasets/pets/cat/1.png', size: '4096' });

      expect(other.statusCode).toBe(403);
      expect(errorOf(other).code).toBe('KeyOutsideDataset');
      expect(missing.statusCode).toBe(404);
      expect(errorOf(missing).code).toBe('ImageNotFound');
      expect(tooBig.statusCode).toBe(400);
    });

    it('refuses an image over 50 MB with 422 ImageTooLarge, without reading it whole', async () => {
      // Prepare: 51 MB of zeros named like a photo (removed after, so other counts stay).
      const key = 'datasets/pets/cat/huge.png';
      await putLargeObject(clients.s3, BUCKET, key, Buffer.alloc(51 * 1024 * 1024));
      try {
        // Act
        const res = await thumb('pets', { key, size: '64' });

        // Assess
        expect(res.statusCode).toBe(422);
        expect(errorOf(res).code).toBe('ImageTooLarge');
      } finally {
        await deleteObject(clients.s3, BUCKET, key);
      }
    });
  });

  it('GET /datasets/{d}/failures lists unusable images with the reason from their error record', async () => {
    const res = await json('GET', '/datasets/pets/failures', '/datasets/{d}/failures', 'pets');

    expect(res.statusCode).toBe(200);
    expect(bodyOf(res)).toEqual({
      dataset: 'pets',
      total: 1,
      failures: [
        {
          key: 'datasets/pets/dog/broken.jpg',
          label: 'dog',
          code: 'CorruptImage',
          reason: 'CorruptImage: jpeg image is truncated or corrupt',
        },
      ],
    });
  });

  describe('model versions, promote and roll back', () => {
    type Versions = {
      current: string | null;
      versions: { version: string; complete: boolean; current: boolean }[];
    };
    const versions = async () =>
      bodyOf<Versions>(await json('GET', '/datasets/pets/models', '/datasets/{d}/models', 'pets'));
    const promoteTo = (version: string, dataset = 'pets') =>
      json('POST', `/datasets/${dataset}/model/promote`, '/datasets/{d}/model/promote', dataset, { version });

    it('lists versions newest first with the served one, promotes a newer one and rolls back to the older', async () => {
      const before = await versions();
      const forward = await promoteTo(V2);
      const afterForward = await versions();
      const back = await promoteTo(V1);
      const pointer = JSON.parse(
        Buffer.from((await getObject(clients.s3, BUCKET, 'models/pets/current.json')).body).toString('utf8'),
      ) as { version: string; previous: string };

      expect(before.versions.map((v) => [v.version, v.complete, v.current])).toEqual([
        [V3, false, false],
        [V2, true, false],
        [V1, true, true],
      ]);
      expect(forward.statusCode).toBe(200);
      expect(afterForward.current).toBe(V2);
      expect(back.statusCode).toBe(200);
      expect(pointer).toMatchObject({ version: V1, previous: V2 });
    });

    it('refuses an incomplete or unknown version with 404, and creates the first pointer of a dataset', async () => {
      const incomplete = await promoteTo(V3);
      const bad = await promoteTo('latest');
      const first = await promoteTo(V1, 'fresh');

      expect(incomplete.statusCode).toBe(404);
      expect(errorOf(incomplete).code).toBe('ModelVersionNotFound');
      expect(bad.statusCode).toBe(400);
      expect(first.statusCode).toBe(200);
      expect(bodyOf<{ pointer: { previous: string | null } }>(first).pointer.previous).toBeNull();
    });
  });

  describe('GET /', () => {
    it('serves the built page without data, with a CSP naming its one script, and 304 when unchanged', async () => {
      const res = await call(requestEvent('GET', '/', { resource: '/' }));
      const hash = createHash('sha256').update('console.log(1)').digest('base64');
      const event = requestEvent('GET', '/', { resource: '/' });
      event.headers = { ...event.headers, 'If-None-Match': String(res.headers?.etag) };
      const again = await call(event);

      expect(res.statusCode).toBe(200);
      expect(res.headers?.['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('<div id="app">');
      expect(res.headers?.['content-security-policy']).toContain(`script-src 'sha256-${hash}'`);
      expect(again.statusCode).toBe(304);
    });
  });

  describe('GET /console/ort/{file}', () => {
    const wasm = Buffer.from('\0asm fake onnxruntime-web binary');
    beforeAll(async () => {
      await mkdir(join(consoleDir, ORT_DIR), { recursive: true });
      await writeFile(join(consoleDir, ORT_DIR, BROWSER_MODEL_MODULE), 'export const x = 1;');
      await writeFile(join(consoleDir, ORT_DIR, ORT_WASM_FILE), wasm);
    });
    const file = (name: string) => {
      const event = requestEvent('GET', `/console/ort/${name}`, { resource: '/console/ort/{file}' });
      event.pathParameters = { file: name };
      return event;
    };

    it('answers the module itself and a page on another origin may import it through the CSP', async () => {
      const res = await call(file(BROWSER_MODEL_MODULE));
      const page = await call(requestEvent('GET', '/', { resource: '/' }));

      expect(res.statusCode).toBe(200);
      expect(res.headers?.['content-type']).toBe('text/javascript; charset=utf-8');
      expect(res.body).toBe('export const x = 1;');
      expect(page.headers?.['content-security-policy']).toMatch(/script-src [^;]*'self' 'wasm-unsafe-eval'/);
    });

    it('redirects the wasm to a bucket copy written once, which a page on another origin can GET', async () => {
      const first = await call(file(ORT_WASM_FILE));
      const second = await call(file(ORT_WASM_FILE));
      const url = String(first.headers?.location);
      const got = await fetch(url, { headers: { origin: PAGE_ORIGIN } });
      const bytes = Buffer.from(await got.arrayBuffer());
      const key = decodeURIComponent(new URL(url).pathname).replace(`/${BUCKET}/`, '');

      expect(first.statusCode).toBe(302);
      expect(second.statusCode).toBe(302);
      expect(key).toMatch(/^console\/ort\/[0-9a-f]{16}\/ort-wasm-simd-threaded\.wasm$/);
      expect(got.status).toBe(200);
      expect(got.headers.get('access-control-allow-origin')).toBe(PAGE_ORIGIN);
      expect(bytes.equals(wasm)).toBe(true);
      expect((await getObject(clients.s3, BUCKET, key)).body).toHaveLength(wasm.length);
    });

    it('names the files it has when asked for another', async () => {
      const res = await call(file('ort.all.min.mjs'));

      expect(res.statusCode).toBe(404);
      expect(errorOf(res).code).toBe('ConsoleFileNotFound');
      expect(errorOf(res).message).toContain(ORT_WASM_FILE);
    });
  });

  it('answers the sample events of events/ (as API Gateway sends them) on the console routes', async () => {
    const page = await call(loadEvent('api-console-page'));
    const uploads = await call(loadEvent('api-create-uploads'));
    const thumb = await call(loadEvent('api-thumbnail'));
    const promoted = await call(loadEvent('api-promote-model'));
    const ort = await call(loadEvent('api-console-ort'));

    expect(page.statusCode).toBe(200);
    expect(bodyOf<{ uploads: unknown[] }>(uploads).uploads).toHaveLength(2);
    expect(errorOf(thumb).code).toBe('ImageNotFound');
    expect(promoted.statusCode).toBe(200);
    expect(ort.statusCode).toBe(302);
  });
});
