/**
 * Closing the loop through the API over the emulator: settings, capture by policy and on request,
 * the review queue (order, pages, label, discard, undo, errors), monitoring counts and drift, and
 * the roles (a predict key is captured but cannot read captures or monitoring).
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHandler, createApi } from '../../../lib/api/app.ts';
import type { KeyScope, KeyStore } from '../../../lib/api/keys.ts';
import { CAPTURE_ID_RE } from '../../../lib/capture/captures.ts';
import { extractPoolImages } from '../../../lib/capture/pool-extract.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { listAllObjects, putObject } from '../../../lib/storage/s3.ts';
import type { Head } from '../../../lib/training/types.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage } from '../../helpers/images.ts';
import { bodyOf, errorOf, predictBinary, promote, requestEvent, seedModel } from './support.ts';

const V1 = '20261207T100000Z-aaaaaa';
const NOW = new Date('2026-12-07T12:00:00.000Z');
const CLASSES = ['blue', 'green', 'red'];

/**
 * A head over the fake extractor's features (mean B, G, R as caffe values in the first three):
 * each class scores its own channel, gently, so colours between two give uncertain answers.
 */
function colourHead(spec: string, dims: number): Head {
  const row = (channel: number) => Array.from({ length: dims }, (_, j) => (j === channel ? 0.05 : 0));
  return { classes: CLASSES, coef: [row(0), row(1), row(2)], intercept: [0, 0, 0], spec };
}

interface Prediction {
  label: string;
  confidence: number;
  captureId?: string;
}

interface Capture {
  id: string;
  margin: number;
  label: string | null;
  imageKey: string;
  reason: string;
}

describe('closing the loop through the API (emulated S3)', () => {
  let em: Emulator;
  let api: ApiHandler;
  let extractor: ReturnType<typeof fakeExtractor>;
  const scopes = new Map<string, KeyScope>([
    ['admin-id', { role: 'admin', datasets: [] }],
    ['predict-id', { role: 'predict', datasets: ['pets'] }],
  ]);
  const keys: KeyStore = {
    scopeOf: async (id) => scopes.get(id),
    list: async () => [],
    create: () => Promise.reject(new Error('not used')),
    revoke: async () => false,
  };
  const as = (event: APIGatewayProxyEvent, keyId = 'admin-id') => {
    event.requestContext = {
      ...event.requestContext,
      identity: { ...event.requestContext.identity, apiKeyId: keyId },
    };
    return api(event);
  };
  const route = (
    method: string,
    path: string,
    resource: string,
    opts: Parameters<typeof requestEvent>[2] = {},
  ) => requestEvent(method, path, { resource, dataset: 'pets', ...opts });
  const withId = (event: APIGatewayProxyEvent, id: string) => {
    event.pathParameters = { ...event.pathParameters, id };
    return event;
  };
  const putSettings = (body: unknown, contentType = 'application/json') =>
    as(
      route('PUT', '/datasets/pets/settings', '/datasets/{d}/settings', {
        contentType,
        body: JSON.stringify(body),
      }),
    );
  const predict = async (
    rgb: [number, number, number],
    query: Record<string, string> = {},
    keyId = 'admin-id',
  ) => {
    const png = await makeImage('png', { width: 16, height: 16, color: rgb });
    const res = await as(predictBinary('pets', png, { query }), keyId);
    expect(res.statusCode).toBe(200);
    return bodyOf<Prediction>(res);
  };
  const captures = async (query: Record<string, string> = {}) => {
    const res = await as(route('GET', '/datasets/pets/captures', '/datasets/{d}/captures', { query }));
    expect(res.statusCode).toBe(200);
    return bodyOf<{ captures: Capture[]; nextToken?: string; pending: number; reviewed: number }>(res);
  };
  const review = (id: string, body: unknown) =>
    as(
      withId(
        route('POST', `/datasets/pets/captures/${id}/label`, '/datasets/{d}/captures/{id}/label', {
          contentType: 'application/json',
          body: JSON.stringify(body),
        }),
        id,
      ),
    );

  beforeAll(async () => {
    em = await startEmulator();
    extractor = fakeExtractor();
    api = createApi({
      s3: em.clients.s3,
      sfn: { send: () => Promise.reject(new Error('not used')) },
      extractor: Promise.resolve(extractor),
      cache: createModelCache({ s3: em.clients.s3, bucket: em.bucket, refreshSeconds: 0 }),
      config: {
        bucket: em.bucket,
        stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:t',
        maxBodyBytes: 1024 * 1024,
        limitInputPixels: 1_000_000,
        maxBatch: 1,
        corsOrigin: undefined,
      },
      log: silentLog,
      auth: { keys, openWithoutKey: false },
      now: () => NOW,
    });
    await putObject(em.clients.s3, em.bucket, 'datasets/pets/red/1.png', 'x');
    await seedModel(em.clients.s3, em.bucket, 'pets', V1, colourHead(extractor.specId, extractor.dims));
    await promote(em.clients.s3, em.bucket, 'pets', V1);
  });
  afterAll(async () => {
    await em.stop();
  });

  it('refuses settings that are not valid, whole or in part, with the shared error shape', async () => {
    const bad = await putSettings({ capture: { sample: 2 } });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).code).toBe('InvalidSettings');
    expect(errorOf(bad).message).toContain('capture.sample');
    const typo = await putSettings({ capture: { sampel: 0.5 } });
    expect(typo.statusCode).toBe(400);
    const text = await putSettings({ capture: { sample: 0.5 } }, 'text/plain');
    expect(text.statusCode).toBe(415);
    const missing = await as(
      requestEvent('PUT', '/datasets/nobody/settings', {
        resource: '/datasets/{d}/settings',
        dataset: 'nobody',
        contentType: 'application/json',
        body: '{}',
      }),
    );
    expect(missing.statusCode).toBe(404);
  });

  it('captures nothing without a policy, and exactly the predictions asked for', async () => {
    const plain = await predict([250, 0, 0]);
    expect(plain.captureId).toBeUndefined();
    const asked = await predict([250, 0, 0], { capture: 'true' });
    expect(asked.captureId).toMatch(CAPTURE_ID_RE);
    const bad = await as(
      predictBinary('pets', await makeImage('png', { color: [1, 2, 3] }), { query: { capture: 'yes' } }),
    );
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).code).toBe('InvalidCapture');
    const page = await captures();
    expect(page.captures.map((c) => c.id)).toEqual([asked.captureId]);
    expect(page.captures[0]?.reason).toBe('requested');
  });

  it('captures by policy below the confidence threshold, and a predict key is captured too', async () => {
    const ok = await putSettings({ capture: { sample: 0, belowConfidence: 0.9 } });
    expect(ok.statusCode).toBe(200);
    const got = await as(route('GET', '/datasets/pets/settings', '/datasets/{d}/settings'));
    expect(bodyOf<{ settings: unknown }>(got).settings).toEqual({
      capture: { sample: 0, belowConfidence: 0.9 },
      monitoring: true,
    });
    const sure = await predict([0, 0, 250]);
    expect(sure.confidence).toBeGreaterThan(0.9);
    expect(sure.captureId).toBeUndefined();
    const unsure = await predict([140, 128, 0], {}, 'predict-id');
    expect(unsure.confidence).toBeLessThan(0.9);
    expect(unsure.captureId).toMatch(CAPTURE_ID_RE);
  });

  it('lists the most uncertain first, pages without repeating, and recent order newest first', async () => {
    for (const rgb of [
      [130, 125, 0],
      [160, 100, 0],
      [128, 128, 5],
    ] as [number, number, number][]) {
      await predict(rgb, { capture: 'true' });
    }
    const all = await captures({ limit: '200' });
    const margins = all.captures.map((c) => c.margin);
    expect(margins).toEqual([...margins].sort((a, b) => a - b));
    expect(all.pending).toBe(all.captures.length);
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await captures({ limit: '2', ...(token ? { token } : {}) });
      expect(page.captures.length).toBeLessThanOrEqual(2);
      seen.push(...page.captures.map((c) => c.id));
      token = page.nextToken;
    } while (token);
    expect(seen).toEqual(all.captures.map((c) => c.id));
    const recent = await captures({ order: 'recent', limit: '200' });
    const ids = recent.captures.map((c) => c.id);
    expect(ids).toEqual([...ids].sort().reverse());
    const wrongToken = await as(
      route('GET', '/datasets/pets/captures', '/datasets/{d}/captures', {
        query: { order: 'recent', token: all.nextToken ?? 'eyJvIjoidW5jZXJ0YWluIn0' },
      }),
    );
    expect(wrongToken.statusCode).toBe(400);
  });

  it('labels a capture into the dataset once, refuses unknown labels, ids and a second review', async () => {
    const [first] = (await captures()).captures;
    if (!first) throw new Error('no capture');
    const unknown = await review(first.id, { label: 'purple' });
    expect(unknown.statusCode).toBe(400);
    expect(errorOf(unknown).code).toBe('UnknownLabel');
    const done = await review(first.id, { label: 'green' });
    expect(done.statusCode).toBe(200);
    const images = await listAllObjects(em.clients.s3, em.bucket, 'datasets/pets/green/');
    expect(images.map((o) => o.key)).toEqual([`datasets/pets/green/capture-${first.id}.png`]);
    const again = await review(first.id, { label: 'green' });
    expect(again.statusCode).toBe(409);
    expect(errorOf(again).code).toBe('CaptureAlreadyReviewed');
    const none = await review('20261207T000000Z-0001-zzzzzz', { label: 'green' });
    expect(none.statusCode).toBe(404);
    expect(errorOf(none).code).toBe('CaptureNotFound');
    const malformed = await review('..%2F..', { label: 'green' });
    expect(malformed.statusCode).toBe(400);
    const after = await captures();
    expect(after.captures.map((c) => c.id)).not.toContain(first.id);
    expect(after.reviewed).toBe(1);
  });

  it('creates a new class only when asked, discards, and undoes a review', async () => {
    const [a, b] = (await captures()).captures;
    if (!a || !b) throw new Error('need two captures');
    const created = await review(a.id, { label: 'yellow', createClass: true });
    expect(created.statusCode).toBe(200);
    const discard = await as(
      withId(route('DELETE', `/datasets/pets/captures/${b.id}`, '/datasets/{d}/captures/{id}'), b.id),
    );
    expect(discard.statusCode).toBe(200);
    const undo = await as(
      withId(route('POST', `/datasets/pets/captures/${a.id}/undo`, '/datasets/{d}/captures/{id}/undo'), a.id),
    );
    expect(undo.statusCode).toBe(200);
    expect(await listAllObjects(em.clients.s3, em.bucket, 'datasets/pets/yellow/')).toEqual([]);
    const ids = (await captures({ limit: '200' })).captures.map((c) => c.id);
    expect(ids).toContain(a.id);
    expect(ids).not.toContain(b.id);
  });

  it('never lets a predict key read captures, settings or monitoring', async () => {
    for (const [method, path, resource] of [
      ['GET', '/datasets/pets/captures', '/datasets/{d}/captures'],
      ['GET', '/datasets/pets/settings', '/datasets/{d}/settings'],
      ['GET', '/datasets/pets/monitoring', '/datasets/{d}/monitoring'],
    ] as const) {
      const res = await as(route(method, path, resource), 'predict-id');
      expect(res.statusCode).toBe(403);
    }
  });

  it('counts every prediction served in monitoring, per label, and flags drift when the mix moves', async () => {
    const before = await as(
      route('GET', '/datasets/pets/monitoring', '/datasets/{d}/monitoring', { query: { days: '7' } }),
    );
    const start =
      bodyOf<{ versions: Array<{ version: string; predictions: number }> }>(before).versions[0]
        ?.predictions ?? 0;
    // Only 'red' from now on: the held-out set predicted the three classes equally.
    for (let i = 0; i < 12; i++) await predict([200 + i, 0, 0]);
    const res = await as(
      route('GET', '/datasets/pets/monitoring', '/datasets/{d}/monitoring', { query: { days: '7' } }),
    );
    expect(res.statusCode).toBe(200);
    const body = bodyOf<{
      days: string[];
      versions: Array<{
        version: string;
        predictions: number;
        labels: Record<string, number>;
        confidence: number[];
        drift: { labelPsi: number; alert: boolean };
        days: Array<{ day: string; predictions: number }>;
      }>;
    }>(res);
    expect(body.days).toHaveLength(7);
    const v = body.versions[0];
    if (!v) throw new Error('no version');
    expect(v.version).toBe(V1);
    expect(v.predictions).toBe(start + 12);
    expect(v.confidence.reduce((a, b) => a + b, 0)).toBe(v.predictions);
    expect(v.labels.red).toBeGreaterThanOrEqual(12);
    expect(v.drift.labelPsi).toBeGreaterThan(0.25);
    expect(v.drift.alert).toBe(true);
    expect(v.days.map((d) => d.day)).toEqual(['2026-12-07']);
  });

  it('extracts the unlabelled pool without announcing it, and suggests uncertain, varied images first', async () => {
    // 12 pool images: six near-copies of one uncertain colour, three clear reds, three other uncertain ones.
    const pool: Array<[string, [number, number, number]]> = [
      ...Array.from(
        { length: 6 },
        (_, i) => [`unlabelled/pets/same-${i}.png`, [140, 128, i]] as [string, [number, number, number]],
      ),
      ...Array.from(
        { length: 3 },
        (_, i) => [`unlabelled/pets/red-${i}.png`, [240, i, 0]] as [string, [number, number, number]],
      ),
      ['unlabelled/pets/teal.png', [0, 130, 140]],
      ['unlabelled/pets/purple.png', [130, 0, 140]],
      ['unlabelled/pets/grey.png', [120, 120, 120]],
    ];
    const jobs = [];
    for (const [key, rgb] of pool) {
      const { etag } = await putObject(em.clients.s3, em.bucket, key, await makeImage('png', { color: rgb }));
      jobs.push({ recordId: key, key, etag });
    }
    const out = await extractPoolImages(jobs, {
      s3: em.clients.s3,
      bucket: em.bucket,
      extractor,
      batchSize: 4,
      log: silentLog,
    });
    expect(out).toEqual({ failedRecordIds: [], extracted: 12, unusable: 0 });
    // Redelivered events cost a HEAD, not a forward pass.
    const again = await extractPoolImages(jobs, {
      s3: em.clients.s3,
      bucket: em.bucket,
      extractor,
      batchSize: 4,
      log: silentLog,
    });
    expect(again.extracted).toBe(0);
    expect(await listAllObjects(em.clients.s3, em.bucket, 'features/pets/')).toEqual([]);

    const res = await as(
      route('GET', '/datasets/pets/suggestions', '/datasets/{d}/suggestions', { query: { n: '4' } }),
    );
    expect(res.statusCode).toBe(200);
    const body = bodyOf<{
      pool: { images: number; scored: number };
      suggestions: Array<{ key: string; margin: number }>;
    }>(res);
    expect(body.pool).toMatchObject({ images: 12, scored: 12 });
    const keys = body.suggestions.map((s) => s.key);
    expect(keys).toHaveLength(4);
    // Uncertain first, and not four copies of the same colour; no clear red before the uncertain ones.
    expect(keys.filter((k) => k.includes('same-')).length).toBeLessThanOrEqual(2);
    expect(keys.some((k) => k.includes('red-'))).toBe(false);
    const forbidden = await as(
      route('GET', '/datasets/pets/suggestions', '/datasets/{d}/suggestions'),
      'predict-id',
    );
    expect(forbidden.statusCode).toBe(403);

    const first = keys[0] as string;
    const label = (key: string, l: string) =>
      as(
        route('POST', '/datasets/pets/suggestions/label', '/datasets/{d}/suggestions/label', {
          contentType: 'application/json',
          body: JSON.stringify({ key, label: l }),
        }),
      );
    const moved = await label(first, 'green');
    expect(moved.statusCode).toBe(200);
    const file = first.slice('unlabelled/pets/'.length);
    expect(
      (await listAllObjects(em.clients.s3, em.bucket, 'datasets/pets/green/')).map((o) => o.key),
    ).toContain(`datasets/pets/green/${file}`);
    expect(await listAllObjects(em.clients.s3, em.bucket, first)).toEqual([]);
    expect((await label(first, 'green')).statusCode).toBe(404);
    const outside = await label('datasets/pets/red/1.png', 'green');
    expect(outside.statusCode).toBe(400);
  });
});
