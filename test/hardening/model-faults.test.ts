import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApiHandler } from '../../lib/api/app.ts';
import { SpecMismatchError } from '../../lib/errors.ts';
import { type PromoteDeps, promoteModel } from '../../lib/pipeline/promote.ts';
import { runTrainingJob, type TrainJobDeps } from '../../lib/pipeline/train-job.ts';
import { CurrentPointer } from '../../lib/serving/current-pointer.ts';
import { type AwsClients, createAwsClients } from '../../lib/storage/clients.ts';
import { currentModelKey, modelFileKey } from '../../lib/storage/keys.ts';
import { getJson, listAllObjects, putJson } from '../../lib/storage/s3.ts';
import { headFromModelDocument, ModelDocument, ReportDocument } from '../../lib/training/model-document.ts';
import type { Head } from '../../lib/training/types.ts';
import { silentLog } from '../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../helpers/emulator.ts';
import { fakeExtractor } from '../helpers/fake-extractor.ts';
import { makeImage } from '../helpers/images.ts';
import { putImageWithFeature } from '../integration/pipeline/support.ts';
import { type FaultProxy, startFaultProxy } from './fault-proxy.ts';
import {
  bodyOf,
  errorLines,
  expectError,
  expectPrediction,
  featuresOf,
  hardenedApi,
  makeHead,
  type PredictionBody,
  predictBinary,
  type RecordingLog,
  recordingLog,
  seedModel,
} from './support.ts';

const extractor = fakeExtractor(); // spec vgg16/random-7/32x32/avg/caffe/bilinear, 512 values
const otherExtractor = fakeExtractor({ weights: 'random-8' });
const REQUESTED = '2026-11-28T12:00:00.000Z';

describe('training, promotion and serving under faults and races (emulator behind a fault proxy)', () => {
  let emu: Emulator;
  let proxy: FaultProxy;
  /** Clients whose every call goes through the proxy (the trainer and promoter under test). */
  let faulty: AwsClients;
  let log: RecordingLog;
  let api: ApiHandler;
  let image: Buffer;
  let features: Float32Array;

  function trainDeps(at: string, shortId: string): TrainJobDeps {
    return {
      s3: faulty.s3,
      bucket: emu.bucket,
      training: { featureConcurrency: 4, refitOnAll: false, C: 1, maxIter: 50 },
      log: silentLog,
      expect: { weights: 'random-7', input: [32, 32], pooling: 'avg', resize: 'bilinear' },
      now: () => new Date(at),
      shortId: () => shortId,
    };
  }

  function train(at: string, shortId: string, deps: Partial<TrainJobDeps> = {}) {
    return runTrainingJob(
      { dataset: 'pets', trigger: 'manual', requestedAt: REQUESTED },
      { ...trainDeps(at, shortId), ...deps },
    );
  }

  const promoteDeps = (): PromoteDeps => ({
    s3: faulty.s3,
    bucket: emu.bucket,
    log: silentLog,
    now: () => new Date('2026-11-28T13:00:00Z'),
  });

  const current = () => getJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), CurrentPointer);

  async function headOf(version: string): Promise<Head> {
    const doc = await getJson(
      emu.clients.s3,
      emu.bucket,
      modelFileKey('pets', version, 'model.json'),
      ModelDocument,
    );
    return headFromModelDocument(doc);
  }

  /** A prediction must come from `version`, with that version's head applied to the image's features. */
  async function expectServed(version: string): Promise<void> {
    const body = expectPrediction(await api(predictBinary('pets', image)), await headOf(version), features);
    expect(body.model.version).toBe(version);
  }

  async function seedFeatures(spec: string, perLabel: number, firstSeed = 0): Promise<void> {
    for (const label of ['cat', 'dog', 'fox']) {
      for (let i = 0; i < perLabel; i++) {
        await putImageWithFeature(
          emu,
          `datasets/pets/${label}/${spec.includes('random-8') ? 'b' : 'a'}-${i}.png`,
          {
            spec,
            seed: firstSeed + i,
          },
        );
      }
    }
  }

  beforeAll(async () => {
    emu = await startEmulator();
    proxy = await startFaultProxy(emu.endpoint, emu.bucket);
    faulty = createAwsClients({ ...emu.storage, endpoint: proxy.url });
    image = await makeImage('png', {
      width: 20,
      height: 20,
      color: [200, 60, 40],
      pattern: 'checker',
      seed: 2,
    });
    features = await featuresOf(extractor, image);
  });
  afterAll(async () => {
    faulty?.s3.destroy();
    faulty?.sqs.destroy();
    faulty?.sfn.destroy();
    await proxy?.stop();
    await emu?.stop();
  });
  beforeEach(async () => {
    emu.reset();
    proxy.clearRules();
    proxy.clearCalls();
    proxy.enforceConditionalPuts(false);
    log = recordingLog();
    api = hardenedApi({ s3: emu.clients.s3, bucket: emu.bucket, extractor, log });
    await seedFeatures(extractor.specId, 3);
  });

  it('writes the reports, then model.json, then the pointer', async () => {
    // Act
    const trained = await train('2026-11-28T10:00:00Z', 'first1');
    await promoteModel({ dataset: 'pets', version: trained.version }, promoteDeps());

    // Assess: the order of the successful PUTs as the bucket saw them.
    const puts = proxy.calls.filter((c) => c.method === 'PUT' && c.outcome === 200).map((c) => c.key);
    const v = trained.version;
    expect(puts).toEqual([
      modelFileKey('pets', v, 'report.json'),
      modelFileKey('pets', v, 'report.html'),
      modelFileKey('pets', v, 'quality.json'),
      modelFileKey('pets', v, 'model.json'),
      currentModelKey('pets'),
    ]);
    await expectServed(v);
  });

  it('a trainer dying while writing leaves a version without model.json that is never promoted nor served', async () => {
    // Prepare: V1 served; the next training's model.json write fails on every attempt.
    const v1 = (await train('2026-11-28T10:00:00Z', 'first1')).version;
    await promoteModel({ dataset: 'pets', version: v1 }, promoteDeps());
    proxy.addRule({
      match: (c) => c.method === 'PUT' && c.key?.endsWith('/model.json') === true,
      action: 'error-500',
    });

    // Act
    const died = await train('2026-11-28T11:00:00Z', 'dying1').then(
      () => undefined,
      (e: unknown) => e,
    );
    proxy.clearRules();
    const v2 = '20261128T110000Z-dying1';
    const files = (await listAllObjects(emu.clients.s3, emu.bucket, `models/pets/${v2}/`)).map((o) => o.key);
    const promotion = await promoteModel({ dataset: 'pets', version: v2 }, promoteDeps());

    // Assess: the record is there (reports), the model is not, nothing points at it.
    expect(died).toBeInstanceOf(Error);
    expect(files.sort()).toEqual([
      modelFileKey('pets', v2, 'quality.json'),
      modelFileKey('pets', v2, 'report.html'),
      modelFileKey('pets', v2, 'report.json'),
    ]);
    expect(promotion).toMatchObject({ promoted: false, reason: expect.stringMatching(/no model\.json/) });
    expect((await current()).version).toBe(v1);
    await expectServed(v1);

    // Act / assess: the next training and promotion go through.
    const v3 = (await train('2026-11-28T12:00:00Z', 'third1')).version;
    expect(await promoteModel({ dataset: 'pets', version: v3 }, promoteDeps())).toMatchObject({
      promoted: true,
      previous: v1,
    });
    await expectServed(v3);
    expect(errorLines(log)).toEqual([]);
  });

  it('a trainer dying after writing a version but before promoting: never served, and it can never come back over a newer one', async () => {
    // Prepare
    const v1 = (await train('2026-11-28T10:00:00Z', 'first1')).version;
    await promoteModel({ dataset: 'pets', version: v1 }, promoteDeps());

    // Act: V2 is complete but its promote step never runs; V3 trains and promotes later.
    const v2 = (await train('2026-11-28T11:00:00Z', 'orphan')).version;
    const servedMeanwhile = bodyOf<PredictionBody>(await api(predictBinary('pets', image))).model.version;
    const v3 = (await train('2026-11-28T12:00:00Z', 'third1')).version;
    await promoteModel({ dataset: 'pets', version: v3 }, promoteDeps());
    const late = await promoteModel({ dataset: 'pets', version: v2 }, promoteDeps());

    // Assess
    expect(servedMeanwhile).toBe(v1);
    expect(late).toMatchObject({
      promoted: false,
      previous: v3,
      reason: expect.stringMatching(/newer version/),
    });
    expect(await current()).toMatchObject({ version: v3, previous: v1 });
    await expectServed(v3);
  });

  it.each([
    ['the older', 'older'],
    ['the newer', 'newer'],
  ])(
    'two trainings at once, %s promotion landing first: the newer model ends up served',
    async (_t, first) => {
      // Prepare: S3 semantics for conditional writes; both promotions read the pointer before either writes.
      proxy.enforceConditionalPuts(true);
      const v1 = (await train('2026-11-28T09:00:00Z', 'base01')).version;
      await promoteModel({ dataset: 'pets', version: v1 }, promoteDeps());
      const [older, newer] = await Promise.all([
        train('2026-11-28T10:00:00Z', 'racea1'),
        train('2026-11-28T10:00:01Z', 'raceb1'),
      ]);
      const later = first === 'older' ? newer.version : older.version;
      proxy.addRule({
        match: (c) => c.method === 'GET' && c.key === currentModelKey('pets'),
        action: 'delay',
        delayMs: 150,
        times: 2,
      });
      proxy.addRule({
        match: (c) => c.method === 'PUT' && c.key === currentModelKey('pets') && c.body.includes(later),
        action: 'delay',
        delayMs: 300,
        times: 1,
      });

      // Act
      const [a, b] = await Promise.all([
        promoteModel({ dataset: 'pets', version: older.version }, promoteDeps()),
        promoteModel({ dataset: 'pets', version: newer.version }, promoteDeps()),
      ]);

      // Assess: one conditional write lost the race and was decided again; both versions are whole.
      expect(proxy.calls.some((c) => c.outcome === 'precondition-failed')).toBe(true);
      expect(b).toMatchObject({ promoted: true, version: newer.version });
      if (first === 'older') expect(a).toMatchObject({ promoted: true, previous: v1 });
      else expect(a).toMatchObject({ promoted: false, reason: expect.stringMatching(/newer version/) });
      expect((await current()).version).toBe(newer.version);
      for (const v of [older.version, newer.version]) {
        const files = (await listAllObjects(emu.clients.s3, emu.bucket, `models/pets/${v}/`)).length;
        expect(files).toBe(4);
      }
      await expectServed(newer.version);
    },
  );

  it("features of two specs in one dataset: the trainer keeps to the deployment's spec and no API serves a model of another", async () => {
    // Prepare: 2 images per label also extracted by other weights (random-8).
    await seedFeatures(otherExtractor.specId, 2, 10);
    const otherApi = hardenedApi({ s3: emu.clients.s3, bucket: emu.bucket, extractor: otherExtractor, log });

    // Act
    const trained = await train('2026-11-28T10:00:00Z', 'specs1');
    await promoteModel({ dataset: 'pets', version: trained.version }, promoteDeps());
    const report = await getJson(
      emu.clients.s3,
      emu.bucket,
      modelFileKey('pets', trained.version, 'report.json'),
      ReportDocument,
    );
    const fromOther = await otherApi(predictBinary('pets', image));
    await seedFeatures(otherExtractor.specId, 3, 10); // now random-8 has 3 per label, like random-7
    const tie = await train('2026-11-28T11:00:00Z', 'specs2', { expect: undefined }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await putImageWithFeature(emu, 'datasets/pets/cat/b-extra.png', {
      spec: otherExtractor.specId,
      seed: 99,
    });
    const majority = await train('2026-11-28T12:00:00Z', 'specs3', { expect: undefined });
    await promoteModel({ dataset: 'pets', version: majority.version }, promoteDeps());
    const afterMajority = await api(predictBinary('pets', image));

    // Assess: the record says what was left out; the other extractor's API refuses with 409.
    expect(trained.spec).toBe(extractor.specId);
    expect(trained.excluded).toEqual([{ reason: 'other-spec', spec: otherExtractor.specId, count: 6 }]);
    expect(report.note).toMatch(/random-8/);
    expectError(fromOther, 409, 'SpecMismatch');
    expect(tie).toBeInstanceOf(SpecMismatchError);
    expect(majority.spec).toBe(otherExtractor.specId);
    expectError(afterMajority, 409, 'SpecMismatch');
    expect(errorLines(log)).toEqual([]);
  });

  it('while current.json is rewritten again and again, every answer comes whole from the version it names', async () => {
    // Prepare: three versions with very different heads.
    const versions = ['20261128T100000Z-aaaaaa', '20261128T110000Z-bbbbbb', '20261128T120000Z-cccccc'];
    const heads = new Map<string, Head>();
    for (const [i, v] of versions.entries()) {
      const head = makeHead(['cat', 'dog', 'fox'], extractor.dims, extractor.specId, 100 + i, 0.05);
      heads.set(v, head);
      await seedModel(emu.clients.s3, emu.bucket, 'pets', v, head);
    }
    const pointer = (v: string) => ({ version: v, promotedAt: '2026-11-28T12:30:00.000Z', previous: null });
    await putJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), pointer(versions[0] ?? ''));

    // Act: the pointer rewritten again and again while at least 80 predictions are in flight (more
    // rounds while every answer so far came from one version: a loaded machine can be slow to flip).
    let stop = false;
    const flipper = (async () => {
      for (let i = 0; !stop; i++) {
        await putJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), pointer(versions[i % 3] ?? ''));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const answers: PredictionBody[] = [];
    const served = () => new Set(answers.map((a) => a.model.version)).size;
    for (let round = 0; round < 8 || (served() < 2 && round < 80); round++) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => api(predictBinary('pets', image))));
      for (const res of batch) {
        const version = bodyOf<PredictionBody>(res).model.version;
        const head = heads.get(version);
        if (!head) throw new Error(`served unknown version ${version}`);
        answers.push(expectPrediction(res, head, features));
      }
    }
    stop = true;
    await flipper;

    // Assess: the swaps happened during the run, and no answer mixed two versions.
    expect(answers.length).toBeGreaterThanOrEqual(80);
    expect(served()).toBeGreaterThanOrEqual(2);
    expect(errorLines(log)).toEqual([]);
  });
});
