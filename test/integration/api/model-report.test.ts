/**
 * The report over HTTP in bounded answers: GET /datasets/{d}/model carries a summary sized by the
 * classes, and the held-out predictions and curves come in pages (lib/api/model-report.ts).
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHandler, createApi } from '../../../lib/api/app.ts';
import { LAMBDA_MAX_RESPONSE_BYTES } from '../../../lib/api/gateway.ts';
import type { CurvesPage, PredictionsPage } from '../../../lib/api/model-report.ts';
import type { FeatureExtractor } from '../../../lib/model/types.ts';
import { createModelCache } from '../../../lib/serving/model-cache.ts';
import { modelFileKey } from '../../../lib/storage/keys.ts';
import { putJson } from '../../../lib/storage/s3.ts';
import type { ReportDocument } from '../../../lib/training/model-document.ts';
import { REPORT_LIMITS, type ReportSummary } from '../../../lib/training/report-summary.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { reportWithPredictions } from '../../helpers/reports.ts';
import {
  bodyOf,
  errorOf,
  loadEvent,
  makeHead,
  promote,
  reportDocument,
  requestEvent,
  seedModel,
} from './support.ts';

const V1 = '20261128T100000Z-aaaaaa';
const V2 = '20261128T110000Z-bbbbbb';
const SPEC = 'vgg16/random-1/32x32/avg/caffe/bilinear';
const CLASSES = ['cat', 'dog', 'fox'];

describe('the model report in bounded answers', () => {
  let em: Emulator;
  let api: ApiHandler;
  const reports = new Map<string, ReportDocument>();
  const call = (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => api(event);
  const get = (dataset: string, route: '' | '/predictions' | '/curves', query?: Record<string, string>) =>
    call(
      requestEvent('GET', `/datasets/${dataset}/model${route}`, {
        resource: `/datasets/{d}/model${route}`,
        dataset,
        ...(query ? { query } : {}),
      }),
    );

  async function seed(dataset: string, version: string, n: number) {
    const head = makeHead(CLASSES, 4, SPEC, 1);
    await seedModel(em.clients.s3, em.bucket, dataset, version, head, { report: false });
    const report = reportWithPredictions(reportDocument(head, dataset, version), n);
    await putJson(em.clients.s3, em.bucket, modelFileKey(dataset, version, 'report.json'), report);
    reports.set(`${dataset}/${version}`, report);
    return report;
  }

  beforeAll(async () => {
    em = await startEmulator();
    api = createApi({
      s3: em.clients.s3,
      sfn: { send: async () => ({}) } as never,
      // The report routes never predict: an extractor that never finishes loading is enough.
      extractor: new Promise<FeatureExtractor>(() => undefined),
      cache: createModelCache({ s3: em.clients.s3, bucket: em.bucket, refreshSeconds: 0 }),
      config: {
        bucket: em.bucket,
        stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:train-test',
        maxBodyBytes: 1024 * 1024,
        limitInputPixels: 1_000_000,
        maxBatch: 1,
        corsOrigin: undefined,
      },
      log: silentLog,
    });
    await seed('small', V1, 250);
    await promote(em.clients.s3, em.bucket, 'small', V1);
  }, 60_000);

  afterAll(async () => {
    await em?.stop();
  });

  it('answers GET /datasets/{d}/model with a summary sized by the classes: ten times the held-out images, the same few KB', async () => {
    const small = await seed('tenth', V1, 2_500);
    const report = await seed('big', V1, 25_000);
    await promote(em.clients.s3, em.bucket, 'tenth', V1);
    await promote(em.clients.s3, em.bucket, 'big', V1);
    const stored = Buffer.byteLength(JSON.stringify(report));

    const res = await get('big', '');
    const tenth = await get('tenth', '');

    const summary = bodyOf<{ report: ReportSummary & Record<string, unknown> }>(res).report;
    const bytes = Buffer.byteLength(res.body);
    console.log(
      `report.json ${stored} bytes at 25,000 held-out images x 3 classes (${Buffer.byteLength(JSON.stringify(small))} at 2,500); GET …/model ${bytes} bytes (${Buffer.byteLength(tenth.body)} at 2,500)`,
    );
    expect(stored).toBeGreaterThan(LAMBDA_MAX_RESPONSE_BYTES / 2);
    expect(bytes).toBeLessThan(20_000);
    expect(Math.abs(bytes - Buffer.byteLength(tenth.body))).toBeLessThan(200);
    expect(summary).not.toHaveProperty('predictions');
    expect(summary.thresholds).not.toHaveProperty('curves');
    expect(summary.thresholds?.perClass.map((c) => c.label)).toEqual(CLASSES);
    expect(summary.confusionMatrix).toEqual(report.confusionMatrix);
    expect(summary.heldOut).toEqual({
      predictions: 25_000,
      curvePoints: report.thresholds?.curves.reduce((n, c) => n + c.points.length, 0),
    });
    // The most confidently wrong, most confident first.
    const conf = summary.mostConfidentlyWrong.map((p) => {
      expect(p.true).not.toBe(p.predicted);
      return p.probabilities[CLASSES.indexOf(p.predicted)] ?? 0;
    });
    expect(conf).toHaveLength(REPORT_LIMITS.wrongest);
    expect([...conf].sort((a, b) => b - a)).toEqual(conf);
  }, 120_000);

  it('pages through one confusion-matrix cell with limit and token, every prediction of the cell once', async () => {
    const report = reports.get(`small/${V1}`) as ReportDocument;
    const cell = (report.predictions ?? []).filter((p) => p.true === 'cat' && p.predicted === 'dog');
    const seen: PredictionsPage['items'] = [];
    const pages: PredictionsPage[] = [];

    let token: string | null = null;
    do {
      const res = await get('small', '/predictions', {
        true: 'cat',
        predicted: 'dog',
        limit: '2',
        ...(token ? { token } : {}),
      });
      expect(res.statusCode).toBe(200);
      const page = bodyOf<PredictionsPage>(res);
      pages.push(page);
      seen.push(...page.items);
      token = page.nextToken;
    } while (token !== null);

    expect(cell.length).toBeGreaterThan(2);
    expect(seen).toEqual(cell);
    expect(pages.every((p) => p.total === cell.length && p.version === V1 && p.items.length <= 2)).toBe(true);
    expect(pages).toHaveLength(Math.ceil(cell.length / 2));
    expect(pages[0]?.classes).toEqual(CLASSES);
  });

  it('keeps a token on the version it started with after a promotion, and refuses a forged token or a bad limit', async () => {
    await seed('small', V2, 40);
    const first = bodyOf<PredictionsPage>(await get('small', '/predictions', { limit: '100' }));
    await promote(em.clients.s3, em.bucket, 'small', V2, V1);

    const next = bodyOf<PredictionsPage>(
      await get('small', '/predictions', { limit: '100', token: first.nextToken ?? '' }),
    );
    const fresh = bodyOf<PredictionsPage>(await get('small', '/predictions'));
    const forged = await get('small', '/predictions', { token: 'bm90LWEtdG9rZW4' });
    const tooMany = await get('small', '/predictions', {
      limit: String(REPORT_LIMITS.predictionsPerPage.max + 1),
    });
    await promote(em.clients.s3, em.bucket, 'small', V1, V2);

    expect(first.version).toBe(V1);
    expect(next.version).toBe(V1);
    expect(next.items[0]).toEqual(reports.get(`small/${V1}`)?.predictions?.[100]);
    expect(fresh).toMatchObject({ version: V2, total: 40, nextToken: null });
    expect(forged.statusCode).toBe(400);
    expect(errorOf(forged).code).toBe('InvalidToken');
    expect(tooMany.statusCode).toBe(400);
  });

  it('pages through the precision/recall curves class by class, or one class with ?label=', async () => {
    const report = reports.get(`small/${V1}`) as ReportDocument;
    const all = (report.thresholds?.curves ?? []).flatMap((c) =>
      c.points.map((p) => ({ label: c.label, ...p })),
    );
    const walk = async (query: Record<string, string>) => {
      const items: CurvesPage['items'] = [];
      let token: string | null = null;
      do {
        const page: CurvesPage = bodyOf<CurvesPage>(
          await get('small', '/curves', { ...query, limit: '50', ...(token ? { token } : {}) }),
        );
        items.push(...page.items);
        token = page.nextToken;
      } while (token !== null);
      return items;
    };

    const everything = await walk({});
    const dogs = await walk({ label: 'dog' });

    expect(all.length).toBeGreaterThan(50);
    expect(everything).toEqual(all);
    expect(dogs).toEqual(all.filter((p) => p.label === 'dog'));
  });

  it('answers the sample events of both page routes (events/api-model-predictions.json, api-model-curves.json)', async () => {
    await seed('pets', V1, 60);
    await promote(em.clients.s3, em.bucket, 'pets', V1);

    const predictions = await call(loadEvent('api-model-predictions'));
    const curves = await call(loadEvent('api-model-curves'));

    expect(predictions.statusCode).toBe(200);
    expect(
      bodyOf<PredictionsPage>(predictions).items.every((p) => p.true === 'cat' && p.predicted === 'dog'),
    ).toBe(true);
    expect(curves.statusCode).toBe(200);
    expect(bodyOf<CurvesPage>(curves).items.every((p) => p.label === 'cat')).toBe(true);
  });

  it('answers 409 for a dataset without a promoted model and 404 for a version without a report', async () => {
    await seedModel(em.clients.s3, em.bucket, 'fresh', V1, makeHead(CLASSES, 4, SPEC, 1), { report: false });
    const none = await get('nothing-here', '/predictions');
    const noReport = await get('small', '/curves', { version: '20261128T090000Z-zzzzzz' });

    expect(none.statusCode).toBe(404);
    expect(noReport.statusCode).toBe(404);
    expect(errorOf(noReport).code).toBe('ReportNotFound');
  });
});
