import {
  DescribeExecutionCommand,
  StartExecutionCommand,
  type StartExecutionCommandOutput,
} from '@aws-sdk/client-sfn';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHandler, createApi } from '../../../lib/api/app.ts';
import type { StartExecutionClient } from '../../../lib/api/types.ts';
import { featureMetadata } from '../../../lib/features/metadata.ts';
import { preprocessImage } from '../../../lib/images/preprocess.ts';
import { loadExtractor } from '../../../lib/model/extractor.ts';
import type { FeatureExtractor } from '../../../lib/model/types.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { featureErrorKey, featureKey, modelFileKey } from '../../../lib/storage/keys.ts';
import { putLargeObject } from '../../../lib/storage/multipart.ts';
import { deleteObject, putObject } from '../../../lib/storage/s3.ts';
import { predictProba } from '../../../lib/training/head.ts';
import type { Head } from '../../../lib/training/types.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { makeImage, pngDeclaringSize, truncateImage } from '../../helpers/images.ts';
import {
  bodyOf,
  errorOf,
  loadEvent,
  makeHead,
  predictBinary,
  predictJson,
  promote,
  type RecordingLog,
  recordingLog,
  recordingMetrics,
  referenceProba,
  requestEvent,
  seedModel,
} from './support.ts';

const V1 = '20261128T100000Z-aaaaaa';
const V2 = '20261128T110000Z-bbbbbb';
const V3 = '20261128T120000Z-cccccc';
const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:train-test';
const NOW = new Date('2026-11-28T12:00:05.678Z');

interface Prediction {
  dataset: string;
  model: { version: string; trainedAt: string; spec: string; randomWeights: boolean };
  label: string;
  confidence: number;
  scores: { label: string; probability: number }[];
  timingsMs: Record<string, number>;
}

/**
 * A Step Functions stand-in (not emulated by fauxqs) that records StartExecution commands and
 * answers DescribeExecution with `status` (the lock asks whether its holder still runs).
 */
function fakeSfn(fail?: Error): StartExecutionClient & { commands: StartExecutionCommand[]; status: string } {
  const commands: StartExecutionCommand[] = [];
  const fake = {
    commands,
    status: 'SUCCEEDED',
    async send(command: StartExecutionCommand | DescribeExecutionCommand) {
      if (command instanceof DescribeExecutionCommand) return { status: fake.status as 'RUNNING' };
      commands.push(command);
      if (fail) throw fail;
      return {
        executionArn: `arn:aws:states:us-east-1:123456789012:execution:train-test:${command.input.name}`,
        startDate: new Date('2026-11-28T12:00:06.000Z'),
        $metadata: {},
      } satisfies StartExecutionCommandOutput;
    },
  };
  return fake;
}

describe('HTTP API over the emulator with the real extractor', () => {
  let em: Emulator;
  let extractor: FeatureExtractor;
  let api: ApiHandler;
  let log: RecordingLog;
  let sfn: ReturnType<typeof fakeSfn>;
  const metrics = recordingMetrics();
  let petsHead: Head;
  let duoHead: Head;
  let catPng: Buffer;
  let dogJpeg: Buffer;

  const call = (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => api(event);

  /** Features of an image computed outside the API, to check its maths independently. */
  async function features(bytes: Uint8Array): Promise<Float32Array> {
    const x = await preprocessImage(bytes, { size: extractor.spec.input, resize: extractor.spec.resize });
    const [f] = await extractor.extractBatch([x]);
    if (!f) throw new Error('no features');
    return f;
  }

  function expectScores(res: APIGatewayProxyResult, head: Head, f: Float32Array, top = head.classes.length) {
    expect(res.statusCode).toBe(200);
    const body = bodyOf<Prediction>(res);
    const expected = predictProba(head, f);
    const reference = referenceProba(head, f);
    const byLabel = new Map(body.scores.map((s) => [s.label, s.probability]));
    head.classes.forEach((label, i) => {
      if (!byLabel.has(label)) return; // not in the top k
      expect(byLabel.get(label)).toBeCloseTo(expected[i] ?? Number.NaN, 5);
      expect(byLabel.get(label)).toBeCloseTo(reference[i] ?? Number.NaN, 5);
    });
    expect(body.scores).toHaveLength(top);
    const probs = body.scores.map((s) => s.probability);
    expect([...probs].sort((a, b) => b - a)).toEqual(probs);
    const best = reference.indexOf(Math.max(...reference));
    expect(body.label).toBe(head.classes[best]);
    expect(body.confidence).toBe(body.scores[0]?.probability);
    return body;
  }

  beforeAll(async () => {
    em = await startEmulator();
    extractor = await loadExtractor({ weights: { kind: 'random', seed: 1 }, inputSize: 32, pooling: 'avg' });
    petsHead = makeHead(['cat', 'dog', 'fox'], extractor.dims, extractor.specId, 11);
    duoHead = makeHead(['a', 'b'], extractor.dims, extractor.specId, 12);
    catPng = await makeImage('png', {
      width: 40,
      height: 30,
      color: [220, 40, 40],
      pattern: 'hstripes',
      seed: 3,
    });
    dogJpeg = await makeImage('jpeg', {
      width: 24,
      height: 48,
      color: [40, 180, 60],
      pattern: 'vstripes',
      seed: 4,
    });
    const { s3 } = em.clients;
    const bucket = em.bucket;

    // pets: 3 classes, promoted; images in every state for GET /datasets/pets.
    await seedModel(s3, bucket, 'pets', V1, petsHead);
    await promote(s3, bucket, 'pets', V1);
    const cat1 = await putObject(s3, bucket, 'datasets/pets/cat/1.png', catPng);
    const dog1 = await putObject(s3, bucket, 'datasets/pets/dog/1.jpg', dogJpeg);
    await putObject(s3, bucket, 'datasets/pets/dog/2.jpg', dogJpeg);
    await putObject(s3, bucket, 'datasets/pets/fox.1.png', catPng);
    await putObject(s3, bucket, 'datasets/pets/notes.txt', 'not an image');
    const cat1Ref = { dataset: 'pets', label: 'cat', file: '1.png' };
    await putObject(s3, bucket, featureKey(cat1Ref), new Uint8Array(8), {
      metadata: featureMetadata(cat1.etag, extractor.specId, 'cat'),
    });
    await putObject(s3, bucket, featureErrorKey({ dataset: 'pets', label: 'dog', file: '1.jpg' }), '{}', {
      metadata: featureMetadata(dog1.etag, extractor.specId, 'dog'),
    });
    // An unpromoted newer training.
    await seedModel(s3, bucket, 'pets', V2, petsHead, { report: false });

    // duo: binary head. fresh: images, no model. other: image of another dataset.
    await seedModel(s3, bucket, 'duo', V1, duoHead);
    await promote(s3, bucket, 'duo', V1);
    await putObject(s3, bucket, 'datasets/duo/a/1.png', catPng);
    await putObject(s3, bucket, 'datasets/fresh/x/1.png', catPng);
    await putObject(s3, bucket, 'datasets/fresh/y/1.png', dogJpeg);
    await putObject(s3, bucket, 'datasets/other/cat/1.png', catPng);
    await putObject(s3, bucket, 'datasets/Bad-Name/cat/1.png', catPng);
    await putObject(s3, bucket, 'datasets/empty/readme.md', 'no images here');

    // Broken promotion (500) and a model of another spec (409).
    await promote(s3, bucket, 'broken', V1);
    await putObject(
      s3,
      bucket,
      modelFileKey('broken', V1, 'model.json'),
      '{"format": "tlearn-head", "coef": [',
    );
    const otherSpec = extractor.specId.replace('random-1', 'random-2');
    await seedModel(s3, bucket, 'respec', V1, makeHead(['a', 'b'], extractor.dims, otherSpec, 13));
    await promote(s3, bucket, 'respec', V1);

    log = recordingLog();
    sfn = fakeSfn();
    api = createApi({
      s3,
      sfn,
      extractor: Promise.resolve(extractor),
      cache: createModelCache({ s3, bucket, refreshSeconds: 0, log }),
      config: {
        bucket,
        stateMachineArn: STATE_MACHINE_ARN,
        maxBodyBytes: 6 * 1024 * 1024,
        limitInputPixels: 40_000_000,
        maxBatch: 4,
        corsOrigin: undefined,
      },
      log,
      metrics,
      now: () => NOW,
    });
  });

  afterAll(async () => {
    extractor?.dispose();
    await em?.stop();
  });

  describe('POST /datasets/{d}/predictions', () => {
    it('predicts a raw binary image with the probabilities of the promoted head', async () => {
      // Prepare
      const f = await features(catPng);
      // Act
      const res = await call(predictBinary('pets', catPng));
      // Assess
      const body = expectScores(res, petsHead, f);
      expect(body.dataset).toBe('pets');
      expect(body.model).toEqual({
        version: V1,
        trainedAt: '2026-11-28T10:30:00.000Z',
        spec: extractor.specId,
        randomWeights: true,
      });
      expect(body.scores.reduce((a, s) => a + s.probability, 0)).toBeCloseTo(1, 12);
      expect(Object.keys(body.timingsMs).sort()).toEqual(['decode', 'forward', 'head', 'observe', 'total']);
      expect(body.timingsMs.total).toBeGreaterThanOrEqual(body.timingsMs.forward ?? 0);
      expect(res.headers?.['content-type']).toBe('application/json');
    });

    it('predicts the sample event as API Gateway sends it (image/png, base64, top=2)', async () => {
      const event = loadEvent('api-predict-binary');
      const bytes = Buffer.from(event.body ?? '', 'base64');
      const res = await call(event);
      expectScores(res, petsHead, await features(bytes), 2);
    });

    it('predicts a JPEG sent as application/octet-stream', async () => {
      const res = await call(predictBinary('pets', dogJpeg, { contentType: 'application/octet-stream' }));
      expectScores(res, petsHead, await features(dogJpeg));
    });

    it('predicts a base64 image in a JSON body, also as a data: URL', async () => {
      const f = await features(dogJpeg);
      const plain = await call(predictJson('pets', { image: dogJpeg.toString('base64') }));
      const dataUrl = await call(
        predictJson(
          'pets',
          { image: `data:image/jpeg;base64,${dogJpeg.toString('base64')}` },
          { query: { top: '1' } },
        ),
      );
      expectScores(plain, petsHead, f);
      expectScores(dataUrl, petsHead, f, 1);
    });

    it('predicts an image named by its key in the same dataset', async () => {
      const res = await call(predictJson('pets', { key: 'datasets/pets/cat/1.png' }));
      const body = expectScores(res, petsHead, await features(catPng));
      expect(body.timingsMs.fetch).toBeGreaterThanOrEqual(0);
    });

    it('refuses an image named by its key that is over 50 MB without reading it whole (422 ImageTooLarge)', async () => {
      // Prepare: 51 MB of zeros named like a photo (removed after, so the dataset's counts stay).
      const key = 'datasets/pets/cat/huge.png';
      await putLargeObject(em.clients.s3, em.bucket, key, Buffer.alloc(51 * 1024 * 1024));
      try {
        // Act
        const res = await call(predictJson('pets', { key }));

        // Assess
        expect(res.statusCode).toBe(422);
        expect(JSON.parse(res.body).error.code).toBe('ImageTooLarge');
      } finally {
        await deleteObject(em.clients.s3, em.bucket, key);
      }
    });

    it('predicts with a binary head as [1-p, p] and returns the top k', async () => {
      const f = await features(catPng);
      const all = expectScores(await call(predictBinary('duo', catPng)), duoHead, f);
      const one = expectScores(
        await call(predictBinary('duo', catPng, { query: { top: '1' } })),
        duoHead,
        f,
        1,
      );
      expect(all.scores.map((s) => s.probability).reduce((a, b) => a + b)).toBeCloseTo(1, 12);
      expect(one.scores[0]).toEqual(all.scores[0]);
    });

    it('answers concurrent requests each with its own image', async () => {
      const [fc, fd] = await Promise.all([features(catPng), features(dogJpeg)]);
      const images = [catPng, dogJpeg, catPng, dogJpeg, dogJpeg, catPng];
      const results = await Promise.all(images.map((img) => call(predictBinary('pets', img))));
      results.forEach((res, i) => {
        expectScores(res, petsHead, images[i] === catPng ? fc : fd);
      });
    });

    it.each([['0'], ['-1'], ['abc'], ['1000'], ['4']])('refuses top=%s with 400 InvalidTop', async (top) => {
      const res = await call(predictBinary('pets', catPng, { query: { top } }));
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('InvalidTop');
    });

    it('names the number of classes when top is too large', async () => {
      const res = await call(predictBinary('pets', catPng, { query: { top: '1000' } }));
      expect(errorOf(res).message).toBe(
        "query parameter top must be from 1 to 3 (the model of 'pets' has 3 classes; got 1000)",
      );
    });

    it('refuses a content type it does not take with 415, and a missing one too', async () => {
      const text = await call(predictBinary('pets', Buffer.from('hello'), { contentType: 'text/plain' }));
      const none = predictBinary('pets', catPng);
      delete none.headers['Content-Type'];
      const missing = await call(none);
      expect(text.statusCode).toBe(415);
      expect(errorOf(text)).toEqual({
        code: 'UnsupportedMediaType',
        message:
          "content type 'text/plain' is not accepted; send image/*, application/octet-stream, application/json",
      });
      expect(missing.statusCode).toBe(415);
    });

    it('refuses a body over 6 MB with 413, raw or as base64 JSON', async () => {
      const raw = await call(predictBinary('pets', Buffer.alloc(6 * 1024 * 1024 + 1, 1)));
      const json = await call(predictJson('pets', { image: 'A'.repeat(6 * 1024 * 1024 + 8) }));
      expect(raw.statusCode).toBe(413);
      expect(errorOf(raw)).toEqual({
        code: 'PayloadTooLarge',
        message: 'request body is larger than the limit of 6 MB',
      });
      expect(json.statusCode).toBe(413);
    });

    it('refuses malformed JSON and bodies that break the schema with 400', async () => {
      const malformed = await call(predictJson('pets', '{"image": "abc', { raw: true }));
      const both = await call(predictJson('pets', { image: 'AAAA', key: 'datasets/pets/cat/1.png' }));
      const extra = await call(predictJson('pets', { image: 'AAAA', colour: 'red' }));
      const notBase64 = await call(predictJson('pets', { image: 'this is not base64!' }));
      const empty = await call(predictBinary('pets', Buffer.alloc(0)));
      expect(malformed.statusCode).toBe(400);
      expect(errorOf(malformed).code).toBe('InvalidJson');
      expect(errorOf(malformed).message).toMatch(/^request body is not valid JSON: /);
      expect(errorOf(both)).toEqual({
        code: 'InvalidBody',
        message:
          "request body is invalid: send exactly one of 'image' (base64-encoded image) or 'key' (an image key datasets/{d}/…)",
      });
      expect(errorOf(extra).message).toContain("Unrecognized key(s) in object: 'colour'");
      expect(errorOf(notBase64).code).toBe('InvalidBase64');
      expect(errorOf(empty).code).toBe('EmptyBody');
    });

    it('answers 422 with the decoder code for bytes that are not a usable image', async () => {
      const text = await call(
        predictJson('pets', { image: Buffer.from('just some text, no image').toString('base64') }),
      );
      const truncated = await call(
        predictBinary('pets', truncateImage(dogJpeg, 0.4), { contentType: 'image/jpeg' }),
      );
      const bomb = await call(predictBinary('pets', pngDeclaringSize(10_000, 10_000)));
      expect(text.statusCode).toBe(422);
      expect(errorOf(text).code).toBe('UnsupportedImageFormat');
      expect(truncated.statusCode).toBe(422);
      expect(errorOf(truncated).code).toBe('CorruptImage');
      expect(bomb.statusCode).toBe(422);
      expect(errorOf(bomb).code).toBe('ImageTooLarge');
    });

    it('refuses keys outside datasets/ (400), of another dataset (403), and missing images (404)', async () => {
      const outside = await call(predictJson('pets', { key: 'models/pets/current.json' }));
      const other = await call(predictJson('pets', { key: 'datasets/other/cat/1.png' }));
      const dotdot = await call(predictJson('pets', { key: 'datasets/pets/../other/cat/1.png' }));
      const missing = await call(predictJson('pets', { key: 'datasets/pets/cat/404.png' }));
      expect([outside.statusCode, errorOf(outside).code]).toEqual([400, 'InvalidImageKey']);
      expect([other.statusCode, errorOf(other).code]).toEqual([403, 'KeyOutsideDataset']);
      expect(dotdot.statusCode).toBe(400);
      expect([missing.statusCode, errorOf(missing)]).toEqual([
        404,
        { code: 'ImageNotFound', message: "image 'datasets/pets/cat/404.png' does not exist" },
      ]);
    });

    it.each([['..'], ['Pets'], ['pëts'], ['x'.repeat(200)], ['-pets']])(
      'refuses the dataset name %j with 400 InvalidDatasetName',
      async (name) => {
        const event = predictBinary(name, catPng);
        const res = await call(event);
        expect(res.statusCode).toBe(400);
        expect(errorOf(res).code).toBe('InvalidDatasetName');
      },
    );

    it('answers 404 for an unknown dataset and 409 for one without a promoted model', async () => {
      const unknown = await call(predictBinary('ghosts', catPng));
      const untrained = await call(predictBinary('fresh', catPng));
      expect(unknown.statusCode).toBe(404);
      expect(errorOf(unknown).code).toBe('DatasetNotFound');
      expect(untrained.statusCode).toBe(409);
      expect(errorOf(untrained)).toEqual({
        code: 'NoPromotedModel',
        message: "dataset 'fresh' has no promoted model yet; POST /datasets/fresh/trainings to train one",
      });
    });

    it('refuses a model of another spec with 409 SpecMismatch', async () => {
      const res = await call(predictBinary('respec', catPng));
      expect(res.statusCode).toBe(409);
      expect(errorOf(res).code).toBe('SpecMismatch');
      expect(errorOf(res).message).toContain(extractor.specId);
    });

    it('answers a broken promotion with a 500 that hides internals and is logged at error level', async () => {
      const before = log.lines.length;
      const event = predictBinary('broken', catPng);
      const res = await call(event);
      expect(res.statusCode).toBe(500);
      expect(errorOf(res)).toEqual({
        code: 'InternalError',
        message: `internal error (request id ${event.requestContext.requestId}); it has been logged`,
      });
      expect(res.body).not.toContain('model.json');
      expect(res.body).not.toContain(em.bucket);
      const errors = log.lines.slice(before).filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(JSON.stringify(errors[0]?.extra)).toContain('models/broken/20261128T100000Z-aaaaaa/model.json');
    });

    it('answers the next valid request correctly after a run of errors', async () => {
      await call(predictJson('pets', '{', { raw: true }));
      await call(predictBinary('pets', Buffer.from('garbage')));
      await call(predictBinary('broken', catPng));
      await call(predictBinary('pets', catPng, { query: { top: 'x' } }));
      const res = await call(predictBinary('pets', dogJpeg));
      expectScores(res, petsHead, await features(dogJpeg));
    });

    it('serves a newly promoted model without a restart', async () => {
      // Prepare: 'promo' serves V1 (2 classes) first.
      const { s3 } = em.clients;
      const head1 = makeHead(['no', 'yes'], extractor.dims, extractor.specId, 21);
      const head3 = makeHead(['red', 'green', 'blue'], extractor.dims, extractor.specId, 23);
      await seedModel(s3, em.bucket, 'promo', V1, head1);
      await seedModel(s3, em.bucket, 'promo', V3, head3);
      await promote(s3, em.bucket, 'promo', V1);
      const f = await features(catPng);
      const first = await call(predictBinary('promo', catPng));
      // Act: promote V3 by rewriting current.json.
      await promote(s3, em.bucket, 'promo', V3, V1);
      const second = await call(predictBinary('promo', catPng));
      // Assess
      expect(expectScores(first, head1, f).model.version).toBe(V1);
      const body = expectScores(second, head3, f);
      expect(body.model.version).toBe(V3);
      expect(body.scores.map((s) => s.label).sort()).toEqual(['blue', 'green', 'red']);
    });

    it('never logs client errors at error level and counts them as ClientErrors', () => {
      const errorLines = log.lines.filter((l) => l.level === 'error');
      // Only the broken promotions (500) are errors.
      expect(errorLines.every((l) => l.extra?.status === 500)).toBe(true);
      expect(metrics.clientErrors.length).toBeGreaterThan(20);
      expect(metrics.clientErrors.every((e) => e.status >= 400 && e.status < 500)).toBe(true);
      expect(metrics.clientErrors).toContainEqual({ status: 422, code: 'ImageTooLarge' });
      expect(metrics.predictions.length).toBeGreaterThan(10);
    });
  });

  describe('GET /datasets', () => {
    it('lists valid datasets with image and label counts and their promoted model', async () => {
      const res = await call(loadEvent('api-list-datasets'));
      const { datasets } = bodyOf<{ datasets: Record<string, unknown>[] }>(res);
      const byName = new Map(datasets.map((d) => [d.name, d]));
      expect(byName.get('pets')).toEqual({
        name: 'pets',
        images: 4,
        labels: 3,
        model: { version: V1, promotedAt: '2026-11-28T10:31:00.000Z' },
      });
      expect(byName.get('fresh')).toEqual({ name: 'fresh', images: 2, labels: 2, model: null });
      expect(byName.get('empty')).toEqual({ name: 'empty', images: 0, labels: 0, model: null });
      // A folder that breaks the naming rule is not a dataset; one with only models is.
      expect(byName.has('Bad-Name')).toBe(false);
      expect(byName.get('broken')).toMatchObject({ images: 0, model: { version: V1 } });
      expect(datasets.map((d) => d.name)).toEqual([...datasets.map((d) => d.name)].sort());
    });
  });

  describe('GET /datasets/{d}', () => {
    it('reports readiness counts, labels, the promoted model and the newest training', async () => {
      const res = await call(loadEvent('api-get-dataset'));
      expect(res.statusCode).toBe(200);
      expect(bodyOf(res)).toEqual({
        dataset: 'pets',
        images: { total: 4, ready: 1, failed: 1, pending: 2, skipped: 1 },
        labels: {
          cat: { images: 1, ready: 1, failed: 0, pending: 0 },
          dog: { images: 2, ready: 0, failed: 1, pending: 1 },
          fox: { images: 1, ready: 0, failed: 0, pending: 1 },
        },
        featuresSettled: false,
        model: {
          version: V1,
          promotedAt: '2026-11-28T10:31:00.000Z',
          trainedAt: '2026-11-28T10:30:00.000Z',
          spec: extractor.specId,
          randomWeights: true,
          classes: ['cat', 'dog', 'fox'],
        },
        lastTraining: { version: V2, at: '2026-11-28T11:00:00Z', promoted: false },
        // No execution history in these deps (see test/unit/api/executions.test.ts and the e2e run).
        lastExecution: null,
      });
    });

    it('reports a dataset without a model, and 404 for an unknown one', async () => {
      const fresh = await call(
        requestEvent('GET', '/datasets/fresh', { resource: '/datasets/{d}', dataset: 'fresh' }),
      );
      const ghost = await call(
        requestEvent('GET', '/datasets/ghosts', { resource: '/datasets/{d}', dataset: 'ghosts' }),
      );
      expect(bodyOf(fresh)).toMatchObject({
        model: null,
        lastTraining: null,
        lastExecution: null,
        images: { total: 2, pending: 2 },
      });
      expect(ghost.statusCode).toBe(404);
      expect(errorOf(ghost).code).toBe('DatasetNotFound');
    });

    it('validates the dataset name', async () => {
      const res = await call(
        requestEvent('GET', '/datasets/UPPER', { resource: '/datasets/{d}', dataset: 'UPPER' }),
      );
      expect(res.statusCode).toBe(400);
    });
  });

  describe('GET /datasets/{d}/model', () => {
    it('returns the promoted model metadata without weights, and its report', async () => {
      const res = await call(loadEvent('api-get-model'));
      const body = bodyOf<{
        dataset: string;
        model: Record<string, unknown>;
        report: Record<string, unknown>;
      }>(res);
      expect(res.statusCode).toBe(200);
      expect(body.dataset).toBe('pets');
      expect(body.model).toMatchObject({
        version: V1,
        previous: null,
        classes: ['cat', 'dog', 'fox'],
        spec: extractor.specId,
        randomWeights: true,
        options: { C: 1, maxIter: 100 },
        metrics: { accuracy: 0.75 },
      });
      expect(body.model).not.toHaveProperty('coef');
      expect(body.model).not.toHaveProperty('intercept');
      expect(body.report).toMatchObject({
        format: 'tlearn-report',
        accuracy: 1,
        classes: ['cat', 'dog', 'fox'],
      });
    });

    it('answers 409 without a promoted model, 404 for an unknown dataset', async () => {
      const ev = (d: string) =>
        requestEvent('GET', `/datasets/${d}/model`, { resource: '/datasets/{d}/model', dataset: d });
      expect((await call(ev('fresh'))).statusCode).toBe(409);
      expect((await call(ev('ghosts'))).statusCode).toBe(404);
    });
  });

  describe('POST /datasets/{d}/trainings', () => {
    it('starts an execution named {d}-{time}{random} with the manual input, answering 202', async () => {
      // Act
      const res = await call(loadEvent('api-start-training'));
      // Assess
      expect(res.statusCode).toBe(202);
      const body = bodyOf<{ executionName: string }>(res);
      const name = body.executionName;
      expect(name).toMatch(new RegExp(`^pets-${NOW.getTime().toString(36)}[a-z0-9]{3}$`));
      expect(body).toEqual({
        dataset: 'pets',
        executionArn: `arn:aws:states:us-east-1:123456789012:execution:train-test:${name}`,
        executionName: name,
        startedAt: NOW.toISOString(),
      });
      const command = sfn.commands.at(-1);
      expect(command).toBeInstanceOf(StartExecutionCommand);
      expect(command?.input.stateMachineArn).toBe(STATE_MACHINE_ARN);
      expect(command?.input.name).toBe(name);
      expect(JSON.parse(command?.input.input ?? '')).toEqual({
        dataset: 'pets',
        trigger: 'manual',
        requestedAt: '2026-11-28T12:00:05.678Z',
      });
    });

    it('takes an empty JSON object as body and refuses unknown options and other content types', async () => {
      const ev = (body: string, contentType: string) =>
        requestEvent('POST', '/datasets/pets/trainings', {
          resource: '/datasets/{d}/trainings',
          dataset: 'pets',
          body,
          contentType,
        });
      expect((await call(ev('{}', 'application/json'))).statusCode).toBe(202);
      const unknown = await call(ev('{"epochs": 3}', 'application/json'));
      expect(unknown.statusCode).toBe(400);
      expect(errorOf(unknown).message).toContain("'epochs'");
      expect((await call(ev('{', 'application/json'))).statusCode).toBe(400);
      expect((await call(ev('go', 'text/plain'))).statusCode).toBe(415);
    });

    it('answers 404 for a dataset without images and does not start anything', async () => {
      const sent = sfn.commands.length;
      const ev = (d: string) =>
        requestEvent('POST', `/datasets/${d}/trainings`, { resource: '/datasets/{d}/trainings', dataset: d });
      const none = await call(ev('empty'));
      const ghost = await call(ev('ghosts'));
      expect(none.statusCode).toBe(404);
      expect(errorOf(none).message).toBe(
        "dataset 'empty' does not exist; upload images to datasets/empty/{label}/ first",
      );
      expect(ghost.statusCode).toBe(404);
      expect(sfn.commands.length).toBe(sent);
    });

    it('answers 409 TrainingInProgress naming the running execution, and starts no second one', async () => {
      const running = fakeSfn();
      const api2 = createApi({
        s3: em.clients.s3,
        sfn: running,
        extractor: Promise.resolve(extractor),
        cache: createModelCache({ s3: em.clients.s3, bucket: em.bucket, refreshSeconds: 0 }),
        config: {
          bucket: em.bucket,
          stateMachineArn: STATE_MACHINE_ARN,
          maxBodyBytes: 1024,
          limitInputPixels: 1_000_000,
          maxBatch: 1,
          corsOrigin: undefined,
        },
        log: recordingLog(),
        now: () => NOW,
      });
      const first = await api2(loadEvent('api-start-training'));
      expect(first.statusCode).toBe(202);
      const { executionName } = bodyOf<{ executionName: string }>(first);
      running.status = 'RUNNING';
      const res = await api2(loadEvent('api-start-training'));
      expect(res.statusCode).toBe(409);
      expect(errorOf(res).code).toBe('TrainingInProgress');
      expect(errorOf(res).message).toContain(executionName);
      expect(running.commands).toHaveLength(1);
      // Once it is over (no longer RUNNING), the next request takes the lock.
      running.status = 'SUCCEEDED';
      expect((await api2(loadEvent('api-start-training'))).statusCode).toBe(202);
      expect(running.commands).toHaveLength(2);
    });
  });

  describe('GET /health', () => {
    it('reports the backend, the spec, the random-weights warning and how many models it holds, naming no dataset or version (it needs no key)', async () => {
      await call(predictBinary('pets', catPng));
      const version = bodyOf<{ model: { version: string } }>(await call(loadEvent('api-get-model'))).model
        .version;
      const res = await call(loadEvent('api-health'));
      expect(res.statusCode).toBe(200);
      const body = bodyOf<Record<string, unknown> & { warnings: string[] }>(res);
      expect(body).toMatchObject({
        status: 'ok',
        backend: extractor.backend,
        spec: extractor.specId,
        dims: 512,
        randomWeights: true,
      });
      expect(body.warnings[0]).toContain('RANDOM');
      expect(body.cachedModels).toBeGreaterThanOrEqual(1);
      expect(res.body).not.toContain('pets');
      expect(res.body).not.toContain(version);
    });
  });

  describe('routing', () => {
    it('answers 404 RouteNotFound for an unknown path', async () => {
      const res = await call(requestEvent('GET', '/nope'));
      expect(res.statusCode).toBe(404);
      expect(errorOf(res).code).toBe('RouteNotFound');
      expect(errorOf(res).message).toContain('POST /datasets/{d}/predictions');
    });

    // Reachable: the REST API routes every other method of a known resource to the function (ANY),
    // as test/integration/local/gateway-parity.test.ts checks against the synthesized template.
    it('answers 405 with Allow for a known path and another method', async () => {
      const get = await call(
        requestEvent('GET', '/datasets/pets/predictions', {
          resource: '/datasets/{d}/predictions',
          dataset: 'pets',
        }),
      );
      const del = await call(
        requestEvent('DELETE', '/datasets/pets', { resource: '/datasets/{d}', dataset: 'pets' }),
      );
      expect(get.statusCode).toBe(405);
      expect(get.headers?.allow).toBe('POST');
      expect(del.statusCode).toBe(405);
      expect(del.headers?.allow).toBe('GET');
    });

    it('routes by the path when API Gateway gives no path parameters (a {proxy+} resource)', async () => {
      const event = requestEvent('GET', '/datasets/pets/model', { resource: '/{proxy+}' });
      const res = await call(event);
      expect(res.statusCode).toBe(200);
      expect(bodyOf<{ dataset: string }>(res).dataset).toBe('pets');
      // The caller's event is not modified by routing.
      expect(event.pathParameters).toBeNull();
    });

    it('keeps working for non-prediction routes when the extractor failed to load', async () => {
      const failed = recordingLog();
      const api3 = createApi({
        s3: em.clients.s3,
        sfn: fakeSfn(),
        extractor: Promise.reject(new Error('weights not found at s3://x/base-models/vgg16/model.json')),
        cache: createModelCache({ s3: em.clients.s3, bucket: em.bucket, refreshSeconds: 0 }),
        config: {
          bucket: em.bucket,
          stateMachineArn: STATE_MACHINE_ARN,
          maxBodyBytes: 1024 * 1024,
          limitInputPixels: 1_000_000,
          maxBatch: 1,
          corsOrigin: '*',
        },
        log: failed,
      });
      const predict = await api3(predictBinary('pets', catPng));
      const health = await api3(loadEvent('api-health'));
      const list = await api3(loadEvent('api-list-datasets'));
      expect(health.statusCode).toBe(503);
      expect(bodyOf(health)).toMatchObject({ status: 'failed', backend: null });
      expect(predict.statusCode).toBe(500);
      expect(predict.body).not.toContain('s3://');
      expect(
        failed.lines.some((l) => l.level === 'error' && l.message === 'feature extractor failed to load'),
      ).toBe(true);
      expect(list.statusCode).toBe(200);
      expect(list.headers?.['access-control-allow-origin']).toBe('*');
      expect(predict.headers?.['access-control-allow-origin']).toBe('*');
    });
  });
});
