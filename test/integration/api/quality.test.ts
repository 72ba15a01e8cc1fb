import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHandler, createApi } from '../../../lib/api/app.ts';
import type { FeatureExtractor } from '../../../lib/model/types.ts';
import { trainHeadWithQuality } from '../../../lib/quality/assess.ts';
import { parseQualityDocument, type QualityDocument } from '../../../lib/quality/document.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { modelFileKey } from '../../../lib/storage/keys.ts';
import { putJson, putObject } from '../../../lib/storage/s3.ts';
import { DEFAULT_TRAIN_OPTIONS } from '../../../lib/training/train.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { makePlantedDataset } from '../../helpers/quality-data.ts';
import { bodyOf, errorOf, loadEvent, requestEvent } from './support.ts';

const OLD = '20261206T100000Z-aaaaaa';
const NEW = '20261206T110000Z-bbbbbb';

/** A real quality document of a small planted dataset, for `version`. */
function qualityFor(version: string): QualityDocument {
  const ds = makePlantedDataset({
    classes: 2,
    perClass: 40,
    d: 64,
    seed: 5,
    exact: 2,
    near: 0,
    crossLabel: 1,
    mislabels: 2,
  });
  return trainHeadWithQuality(
    {
      X: { data: ds.data, n: ds.n, d: ds.d },
      labels: ds.labels,
      spec: 'synthetic',
      options: DEFAULT_TRAIN_OPTIONS,
    },
    { keys: ds.keys, contentIds: ds.contentIds },
    { dataset: 'pets', version },
  ).quality;
}

describe('GET /datasets/{d}/quality (emulated S3)', () => {
  let em: Emulator;
  let api: ApiHandler;
  const call = (event: APIGatewayProxyEvent) => api(event);

  beforeAll(async () => {
    em = await startEmulator();
    api = createApi({
      s3: em.clients.s3,
      sfn: { send: () => Promise.reject(new Error('not used')) },
      // Never loads: these routes do not predict.
      extractor: new Promise<FeatureExtractor>(() => {}),
      cache: createModelCache({ s3: em.clients.s3, bucket: em.bucket, refreshSeconds: 0 }),
      config: {
        bucket: em.bucket,
        stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:t',
        maxBodyBytes: 1024,
        limitInputPixels: 1_000_000,
        maxBatch: 1,
        corsOrigin: undefined,
      },
      log: silentLog,
    });
    await putObject(em.clients.s3, em.bucket, 'datasets/pets/cat/1.png', 'x');
    await putObject(em.clients.s3, em.bucket, 'datasets/bare/cat/1.png', 'x');
    await putJson(em.clients.s3, em.bucket, modelFileKey('pets', OLD, 'quality.json'), qualityFor(OLD));
    await putJson(em.clients.s3, em.bucket, modelFileKey('pets', NEW, 'quality.json'), qualityFor(NEW));
  });
  afterAll(async () => {
    await em.stop();
  });

  it('serves the newest version’s quality.json for the sample event', async () => {
    const res = await call(loadEvent('api-get-quality'));
    expect(res.statusCode).toBe(200);
    const doc = parseQualityDocument(bodyOf(res));
    expect(doc.version).toBe(NEW);
    expect(doc.conflicts).toHaveLength(1);
    expect(doc.duplicates.filter((d) => d.kind === 'exact')).toHaveLength(3);
  });

  it('serves another version with ?version=, and rejects a malformed one', async () => {
    const q = (version: string) =>
      call(
        requestEvent('GET', '/datasets/pets/quality', {
          resource: '/datasets/{d}/quality',
          dataset: 'pets',
          query: { version },
        }),
      );
    expect(bodyOf(await q(OLD)).version).toBe(OLD);
    const bad = await q('latest');
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).code).toBe('InvalidVersion');
    const missing = await q('20261206T120000Z-cccccc');
    expect(missing.statusCode).toBe(404);
    expect(errorOf(missing).code).toBe('QualityNotFound');
  });

  it('answers 404 QualityNotFound for a dataset not trained yet and DatasetNotFound for an unknown one', async () => {
    const get = (d: string) =>
      call(requestEvent('GET', `/datasets/${d}/quality`, { resource: '/datasets/{d}/quality', dataset: d }));
    const untrained = await get('bare');
    expect(untrained.statusCode).toBe(404);
    expect(errorOf(untrained)).toMatchObject({ code: 'QualityNotFound' });
    expect(errorOf(untrained).message).toMatch(/POST \/datasets\/bare\/trainings/);
    const unknown = await get('nope');
    expect(unknown.statusCode).toBe(404);
    expect(errorOf(unknown).code).toBe('DatasetNotFound');
  });
});
