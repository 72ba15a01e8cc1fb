import type { APIGatewayProxyResult } from 'aws-lambda';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHandler, createApi } from '../../../lib/api/app.ts';
import { modelExportKey } from '../../../lib/export/model-export.ts';
import { readOnnxMetadata } from '../../../lib/export/onnx-metadata.ts';
import { EXPORT_INPUT_NAME, EXPORT_OUTPUT_NAME } from '../../../lib/export/onnx-model.ts';
import { decodeToRgb, preprocessImage } from '../../../lib/images/preprocess.ts';
import { loadExtractor } from '../../../lib/model/extractor.ts';
import type { FeatureExtractor } from '../../../lib/model/types.ts';
import { loadWeights } from '../../../lib/model/weights.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { getObject, headObject, putJson, putObject } from '../../../lib/storage/s3.ts';
import type { Head } from '../../../lib/training/types.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { makeLabelledImages } from '../../helpers/images.ts';
import {
  bodyOf,
  errorOf,
  loadEvent,
  makeHead,
  predictBinary,
  promote,
  recordingLog,
  requestEvent,
  seedModel,
} from './support.ts';

const V1 = '20261128T100000Z-aaaaaa';
const V2 = '20261128T110000Z-bbbbbb';

interface Prediction {
  label: string | null;
  confidence: number;
  abstained: boolean;
  threshold?: number | null;
  scores: { label: string; probability: number }[];
}

/**
 * A random head scaled so its logits are of order 1 on these features (so the probabilities are
 * not all 0 or 1 and the parity check means something).
 */
function calibratedHead(classes: string[], feats: Float32Array[], spec: string, seed: number): Head {
  const d = feats[0]?.length ?? 0;
  let sq = 0;
  for (const f of feats) for (const v of f) sq += v * v;
  const rms = Math.sqrt(sq / (feats.length * d));
  const head = makeHead(classes, d, spec, seed, 1);
  const scale = 2 / (Math.sqrt(d / 3) * rms);
  return { ...head, coef: head.coef.map((r) => r.map((w) => w * scale)) };
}

describe('ONNX export of the whole model', () => {
  let em: Emulator;
  let extractor: FeatureExtractor;
  let api: ApiHandler;
  let images: { label: string; data: Buffer }[];
  const heads: Record<string, Head> = {};
  let weightLoads = 0;
  const testLog = recordingLog();

  const exportEvent = (dataset: string, query: Record<string, string> = { format: 'onnx' }) =>
    requestEvent('GET', `/datasets/${dataset}/model/export`, {
      resource: '/datasets/{d}/model/export',
      dataset,
      query,
    });

  async function download(res: APIGatewayProxyResult): Promise<Uint8Array> {
    const location = res.headers?.location;
    if (typeof location !== 'string') throw new Error('no location header');
    const got = await fetch(location);
    expect(got.status).toBe(200);
    return new Uint8Array(await got.arrayBuffer());
  }

  beforeAll(async () => {
    em = await startEmulator();
    extractor = await loadExtractor({
      weights: { kind: 'random', seed: 1 },
      inputSize: 150,
      pooling: 'flatten',
      backend: 'onnx',
    });
    // Held-out images: none of them was used to make the heads.
    images = await makeLabelledImages({ labels: 3, perClass: 2, width: 61, height: 47, seed: 21 });
    const feats = await extractor.extractBatch(
      await Promise.all(images.map((i) => preprocessImage(i.data, { size: [150, 150] }))),
    );
    heads.pets = calibratedHead(['cat', 'dog', 'fox'], feats, extractor.specId, 5);
    heads.duo = calibratedHead(['no', 'yes'], feats, extractor.specId, 6);
    const { s3 } = em.clients;
    for (const d of ['pets', 'duo']) {
      await seedModel(s3, em.bucket, d, V1, heads[d] as Head);
      await promote(s3, em.bucket, d, V1);
    }
    await putObject(s3, em.bucket, 'datasets/fresh/a/1.png', images[0]?.data ?? '');
    api = createApi({
      s3,
      sfn: { send: async () => ({ $metadata: {} }) as never },
      extractor: Promise.resolve(extractor),
      cache: createModelCache({ s3, bucket: em.bucket, refreshSeconds: 0 }),
      baseWeights: () => {
        weightLoads++;
        return loadWeights({ kind: 'random', seed: 1 });
      },
      config: {
        bucket: em.bucket,
        stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:train-test',
        maxBodyBytes: 6 * 1024 * 1024,
        limitInputPixels: 40_000_000,
        maxBatch: 4,
        corsOrigin: undefined,
      },
      log: testLog,
    });
  });

  afterAll(async () => {
    extractor?.dispose();
    await em?.stop();
  });

  for (const dataset of ['pets', 'duo']) {
    it(`gives the API's probabilities within 1e-5 on held-out images (${dataset})`, async () => {
      // Prepare
      const res = await api(exportEvent(dataset));
      expect(res.statusCode).toBe(302);
      const bytes = await download(res);
      const session = await ort.InferenceSession.create(bytes);
      const rgb = await Promise.all(images.map((i) => decodeToRgb(i.data, { size: [150, 150] })));
      const batch = new Float32Array(images.length * 150 * 150 * 3);
      rgb.forEach((r, i) => {
        batch.set(Float32Array.from(r.data), i * 150 * 150 * 3);
      });
      // Act
      const out = await session.run({
        [EXPORT_INPUT_NAME]: new ort.Tensor('float32', batch, [images.length, 150, 150, 3]),
      });
      const probs = out[EXPORT_OUTPUT_NAME];
      const predictions: Prediction[] = [];
      for (const img of images) {
        predictions.push(bodyOf<Prediction>(await api(predictBinary(dataset, img.data))));
      }
      // Assess
      const classes = (heads[dataset] as Head).classes;
      expect(probs?.dims).toEqual([images.length, classes.length]);
      const data = probs?.data as Float32Array;
      let spread = 0;
      predictions.forEach((p, i) => {
        classes.forEach((label, k) => {
          const fromApi = p.scores.find((s) => s.label === label)?.probability ?? Number.NaN;
          const fromOnnx = data[i * classes.length + k] ?? Number.NaN;
          expect(Math.abs(fromOnnx - fromApi)).toBeLessThan(1e-5);
          spread = Math.max(spread, Math.min(fromApi, 1 - fromApi));
        });
      });
      // The probabilities are not all saturated, so the comparison is a real one.
      expect(spread).toBeGreaterThan(0.01);
      await session.release();
    });
  }

  it('answers the sample event events/api-export-model.json with a redirect to the file', async () => {
    const res = await api(loadEvent('api-export-model'));
    expect(res.statusCode).toBe(302);
    expect(res.headers?.location).toContain('/models/pets/');
  });

  it('answers the same body with a 200 and no Location for redirect=false (browsers, whose key must not follow to S3)', async () => {
    const res = await api(exportEvent('pets', { format: 'onnx', version: V1, redirect: 'false' }));

    expect(res.statusCode).toBe(200);
    expect(res.headers?.location).toBeUndefined();
    expect(bodyOf<{ version: string; url: string }>(res)).toMatchObject({
      version: V1,
      url: expect.stringContaining('/models/pets/'),
    });
  });

  it('writes model.onnx once per version and carries the labels, spec, version and input contract', async () => {
    // Prepare
    const key = modelExportKey('pets', V1);
    const before = await headObject(em.clients.s3, em.bucket, key);
    const loads = weightLoads;
    // Act
    const res = await api(exportEvent('pets', { format: 'onnx', version: V1 }));
    const bytes = await download(res);
    // Assess
    expect(res.statusCode).toBe(302);
    expect(bodyOf<{ version: string; url: string }>(res).version).toBe(V1);
    const after = await headObject(em.clients.s3, em.bucket, key);
    expect(before?.etag).toBeDefined();
    expect(after?.etag).toBe(before?.etag);
    expect(weightLoads).toBe(loads);
    const meta = readOnnxMetadata(bytes);
    expect(JSON.parse(meta['tlearn.classes'] ?? '[]')).toEqual(['cat', 'dog', 'fox']);
    expect(meta['tlearn.spec']).toBe(extractor.specId);
    expect(meta['tlearn.dataset']).toBe('pets');
    expect(meta['tlearn.version']).toBe(V1);
    const contract = JSON.parse(meta['tlearn.input'] ?? '{}') as Record<string, unknown>;
    expect(contract).toMatchObject({ name: 'image', dtype: 'float32', channels: 'RGB', range: [0, 255] });
    expect(contract.shape).toEqual(['N', 150, 150, 3]);
  });

  it('answers clear errors for a bad format, a bad or unknown version and a dataset without a model', async () => {
    const cases: [Record<string, string>, string, number, string][] = [
      [{ format: 'tflite' }, 'pets', 400, 'InvalidFormat'],
      [{ format: 'onnx', version: 'latest' }, 'pets', 400, 'InvalidVersion'],
      [{ format: 'onnx', version: V2 }, 'pets', 404, 'ModelVersionNotFound'],
      [{ format: 'onnx' }, 'fresh', 409, 'NoPromotedModel'],
      [{ format: 'onnx' }, 'nothing', 404, 'DatasetNotFound'],
    ];
    for (const [query, dataset, status, code] of cases) {
      const res = await api(exportEvent(dataset, query));
      expect({ status: res.statusCode, code: errorOf(res).code }).toEqual({ status, code });
    }
  });

  it("abstains below the threshold asked for (auto: the model's per-class one) and still lists the scores", async () => {
    // Prepare: thresholds that let exactly the first image's label pass at its own confidence.
    const plain: Prediction[] = [];
    for (const img of images) plain.push(bodyOf<Prediction>(await api(predictBinary('pets', img.data))));
    const first = plain[0] as Prediction;
    const passLabel = first.label as string;
    const classes = (heads.pets as Head).classes;
    const thresholds = {
      targetPrecision: 0.95,
      samples: 6,
      perClass: classes.map((label) => ({
        label,
        threshold: label === passLabel ? first.confidence : label === classes[2] ? null : 1,
        precision: 1,
        recall: 1,
        predicted: 2,
        support: 2,
      })),
    };
    const { s3 } = em.clients;
    await seedModel(s3, em.bucket, 'gated', V1, heads.pets as Head);
    const doc = JSON.parse(
      Buffer.from((await getObject(s3, em.bucket, `models/gated/${V1}/model.json`)).body).toString(),
    ) as Record<string, unknown>;
    await putJson(s3, em.bucket, `models/gated/${V1}/model.json`, { ...doc, thresholds });
    await promote(s3, em.bucket, 'gated', V1);
    // Act
    const auto: Prediction[] = [];
    for (const img of images) {
      auto.push(
        bodyOf<Prediction>(await api(predictBinary('gated', img.data, { query: { threshold: 'auto' } }))),
      );
    }
    const fixed = bodyOf<Prediction>(
      await api(predictBinary('gated', images[0]?.data ?? Buffer.alloc(0), { query: { threshold: '1' } })),
    );
    const zero = bodyOf<Prediction>(
      await api(predictBinary('gated', images[0]?.data ?? Buffer.alloc(0), { query: { threshold: '0' } })),
    );
    const bad = await api(
      predictBinary('gated', images[0]?.data ?? Buffer.alloc(0), { query: { threshold: 'high' } }),
    );
    const none = await api(
      predictBinary('pets', images[0]?.data ?? Buffer.alloc(0), { query: { threshold: 'auto' } }),
    );
    // Assess
    auto.forEach((p, i) => {
      const before = plain[i] as Prediction;
      const passes = before.label === passLabel && before.confidence >= first.confidence;
      expect(p.abstained).toBe(!passes);
      expect(p.label).toBe(passes ? before.label : null);
      expect(p.scores).toEqual(before.scores);
      expect(p.confidence).toBe(before.confidence);
    });
    expect(auto[0]).toMatchObject({ label: passLabel, abstained: false, threshold: first.confidence });
    expect(plain.every((p) => p.abstained === false && p.threshold === undefined)).toBe(true);
    expect(fixed).toMatchObject({ label: null, abstained: true, threshold: 1 });
    expect(fixed.scores).toHaveLength(classes.length);
    expect(zero).toMatchObject({ label: passLabel, abstained: false, threshold: 0 });
    expect([bad.statusCode, errorOf(bad).code]).toEqual([400, 'InvalidThreshold']);
    expect([none.statusCode, errorOf(none).code]).toEqual([400, 'NoThresholds']);
  });
});
