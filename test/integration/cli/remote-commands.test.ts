import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../lib/cli/args.ts';
import { runModel } from '../../../lib/cli/commands/model.ts';
import { runRemotePredict } from '../../../lib/cli/commands/predict-remote.ts';
import { runStatus } from '../../../lib/cli/commands/status.ts';
import { runTrain } from '../../../lib/cli/commands/train.ts';
import { EXIT } from '../../../lib/cli/exit-codes.ts';
import { TargetError } from '../../../lib/cli/target.ts';
import { closedPortUrl, type FakeApi, startFakeApi, testContext } from './helpers.ts';

const MODEL = { version: '20261128T103418Z-abc123', trainedAt: '2026-11-28T10:34:18Z' };

const statusBody = (version: string | null, training?: Record<string, unknown>) => ({
  dataset: 'pets',
  images: 12,
  features: { ready: 10, failed: 1, pending: 1 },
  labels: [
    { label: 'dog', images: 5, ready: 4, failed: 1, pending: 0 },
    { label: 'cat', images: 7, ready: 6, failed: 0, pending: 1 },
  ],
  model: version === null ? null : { version, trainedAt: MODEL.trainedAt, accuracy: 0.875 },
  lastTraining: training ?? null,
});

describe('remote commands against a fake API', () => {
  let api: FakeApi;
  let cwd: string;
  let flags: string[];

  beforeAll(async () => {
    api = await startFakeApi();
    cwd = await mkdtemp(join(tmpdir(), 'tlearn-remote-'));
    flags = ['--endpoint', api.url];
  });
  afterAll(async () => {
    await api.close();
    await rm(cwd, { recursive: true, force: true });
  });
  beforeEach(() => {
    api.routes.clear();
    api.requests.length = 0;
    api.apiKey = undefined;
  });

  describe('status', () => {
    it('prints counts, a labels table sorted by label, the model and the last training', async () => {
      api.routes.set('GET /datasets/pets', () => ({
        status: 200,
        body: statusBody(MODEL.version, {
          status: 'FAILED',
          trigger: 'auto',
          startedAt: '2026-11-28T10:00:00Z',
          error: 'InsufficientData',
          cause: "label 'dog' has 1 usable image",
        }),
      }));
      const { ctx, out } = testContext(cwd);

      const code = await runStatus(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(out).toEqual([
        'dataset   pets',
        'images    12   features: 10 ready, 1 failed, 1 pending',
        '',
        'label  images  ready  failed  pending',
        'cat         7      6       0        1',
        'dog         5      4       1        0',
        '',
        `model     ${MODEL.version}, trained ${MODEL.trainedAt}, accuracy 87.5%`,
        'training  FAILED (auto), started 2026-11-28T10:00:00Z',
        "          InsufficientData: label 'dog' has 1 usable image",
      ]);
    });

    it('prints the API answer with --json and sends the API key', async () => {
      api.apiKey = 'k-123';
      api.routes.set('GET /datasets/pets', () => ({ status: 200, body: statusBody(null) }));
      const { ctx, stdout } = testContext(cwd, { TLEARN_API_KEY: 'k-123' });

      const code = await runStatus(['pets', '--json', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(JSON.parse(stdout())).toEqual(statusBody(null));
      expect(api.requests[0]?.headers['x-api-key']).toBe('k-123');
    });

    it('prints the server error as code: message and exits 1', async () => {
      api.routes.set('GET /datasets/nope', () => ({
        status: 404,
        body: {
          error: {
            code: 'NotFound',
            message: "dataset 'nope' has no images; upload some with tlearn upload",
          },
        },
      }));
      const { ctx, stderr } = testContext(cwd);

      const code = await runStatus(['nope', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(stderr()).toBe(
        "tlearn status: NotFound: dataset 'nope' has no images; upload some with tlearn upload",
      );
    });

    it('explains a 403 from API Gateway as a missing or wrong key', async () => {
      api.apiKey = 'right';
      const { ctx, stderr } = testContext(cwd, { TLEARN_API_KEY: 'wrong' });

      const code = await runStatus(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(stderr()).toMatch(/Forbidden: Forbidden: the API key is missing or wrong/);
    });

    it('exits 4 naming the target and where it came from when nothing answers', async () => {
      const closed = await closedPortUrl();
      const { ctx, stderr } = testContext(cwd, { TLEARN_API_URL: closed });

      const code = await runStatus(['pets'], ctx);

      expect(code).toBe(EXIT.UNAVAILABLE);
      expect(stderr()).toBe(
        `tlearn status: using the local stack at ${closed} (from TLEARN_API_URL; start it with \`npm start\`): connection refused`,
      );
    });

    it('exits 4 with the timeout when the server does not answer in time', async () => {
      api.routes.set('GET /datasets/slow', () => new Promise(() => {}));
      const { ctx, stderr } = testContext(cwd);

      const code = await runStatus(['slow', '--timeout', '0.2', ...flags], ctx);

      expect(code).toBe(EXIT.UNAVAILABLE);
      expect(stderr()).toMatch(/from --endpoint.*: no answer within 0\.2 s$/);
    });

    it('refuses an invalid dataset name as a usage error', async () => {
      const { ctx } = testContext(cwd);
      await expect(runStatus(['../etc', ...flags], ctx)).rejects.toThrow(UsageError);
    });

    it('requires an API key for an AWS stack from cdk-outputs.json, printing the command', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tlearn-aws-'));
      await writeFile(
        join(dir, 'cdk-outputs.json'),
        JSON.stringify({
          S: { ApiUrl: 'https://a.execute-api.eu-west-1.amazonaws.com/prod/', ApiKeyId: 'id9' },
        }),
      );
      const { ctx } = testContext(dir);

      const run = runStatus(['pets'], ctx);

      await expect(run).rejects.toThrow(TargetError);
      await expect(runStatus(['pets'], ctx)).rejects.toThrow(
        'aws apigateway get-api-key --api-key id9 --include-value --query value --output text',
      );
      await rm(dir, { recursive: true, force: true });
    });
  });

  describe('train', () => {
    it('starts a training and prints the execution', async () => {
      api.routes.set('POST /datasets/pets/trainings', () => ({
        status: 202,
        body: {
          executionArn: 'arn:aws:states:us-east-1:1:execution:train:pets-1',
          startedAt: '2026-11-28T11:00:00Z',
        },
      }));
      const { ctx, stdout } = testContext(cwd);

      const code = await runTrain(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(stdout()).toBe(
        "started training of 'pets' at 2026-11-28T11:00:00Z: arn:aws:states:us-east-1:1:execution:train:pets-1",
      );
      expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /datasets/pets/trainings']);
    });

    it('with --wait polls until a newer model is promoted', async () => {
      const arn = 'arn:aws:states:us-east-1:1:execution:train:pets-2';
      let polls = 0;
      api.routes.set('POST /datasets/pets/trainings', () => ({
        status: 202,
        body: { executionArn: arn, startedAt: '2026-11-28T11:00:00Z' },
      }));
      api.routes.set('GET /datasets/pets', () => {
        polls += 1;
        // 1: before the POST; 2-3: running; 4: the new model is current.
        const version = polls >= 4 ? '20261128T110500Z-new001' : MODEL.version;
        return { status: 200, body: statusBody(version, { executionArn: arn, status: 'RUNNING' }) };
      });
      const { ctx, stdout, stderr } = testContext(cwd);

      const code = await runTrain(['pets', '--wait', '--interval', '0.01', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(polls).toBe(4);
      expect(stdout()).toContain('promoted model 20261128T110500Z-new001 (accuracy 87.5%)');
      expect(stderr()).toContain('waiting: features 10/12 ready, 1 failed, 1 pending; training RUNNING');
    });

    it('with --wait exits 1 with the cause when the training fails', async () => {
      const arn = 'arn:x:pets-3';
      let polls = 0;
      api.routes.set('POST /datasets/pets/trainings', () => ({ status: 202, body: { executionArn: arn } }));
      api.routes.set('GET /datasets/pets', () => {
        polls += 1;
        const training =
          polls >= 3
            ? { executionArn: arn, status: 'FAILED', error: 'InsufficientData', cause: 'needs 2 labels' }
            : { executionArn: 'arn:x:older', status: 'FAILED', error: 'Old' };
        return { status: 200, body: statusBody(null, training) };
      });
      const { ctx, stderr } = testContext(cwd);

      const code = await runTrain(['pets', '--wait', '--interval', '0.01', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(polls).toBe(3);
      expect(stderr()).toContain('tlearn train: training FAILED: InsufficientData: needs 2 labels');
    });

    it('with --wait gives up after --wait-timeout', async () => {
      api.routes.set('POST /datasets/pets/trainings', () => ({
        status: 202,
        body: { executionArn: 'arn:x:4' },
      }));
      api.routes.set('GET /datasets/pets', () => ({ status: 200, body: statusBody(null) }));
      let clock = 0;
      const { ctx, stderr } = testContext(cwd);
      ctx.now = () => clock;
      ctx.sleep = async (ms) => {
        clock += ms;
      };

      const code = await runTrain(['pets', '--wait', '--wait-timeout', '30', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(clock).toBe(30_000);
      expect(stderr()).toContain('no new model after 30 s; the training goes on');
    });
  });

  describe('model', () => {
    it('prints version, accuracy, the confusion matrix and the per-class table', async () => {
      api.routes.set('GET /datasets/pets/model', () => ({
        status: 200,
        body: {
          dataset: 'pets',
          version: MODEL.version,
          promotedAt: '2026-11-28T10:35:00Z',
          previous: '20261127T090000Z-old001',
          model: { trainedAt: MODEL.trainedAt, classes: ['cat', 'dog'] },
          report: {
            accuracy: 0.9,
            logLoss: 0.2512,
            labels: ['cat', 'dog'],
            confusionMatrix: [
              [5, 1],
              [0, 4],
            ],
            perClass: [
              { label: 'cat', precision: 1, recall: 0.8333, f1: 0.9091, support: 6 },
              { label: 'dog', precision: 0.8, recall: 1, f1: 0.8889, support: 4 },
            ],
          },
        },
      }));
      const { ctx, out } = testContext(cwd);

      const code = await runModel(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(out).toEqual([
        'dataset   pets',
        `model     ${MODEL.version}`,
        `trained   ${MODEL.trainedAt}`,
        'promoted  2026-11-28T10:35:00Z',
        'previous  20261127T090000Z-old001 (tlearn model pets --rollback)',
        'accuracy  90.0%   log loss 0.2512',
        '',
        'confusion matrix (rows: true label, columns: predicted)',
        '     cat  dog',
        'cat    5    1',
        'dog    0    4',
        '',
        'label  precision  recall     f1  support',
        'cat        1.000   0.833  0.909        6',
        'dog        0.800   1.000  0.889        4',
      ]);
    });

    it('reads a scikit-learn style classification report too', async () => {
      api.routes.set('GET /datasets/pets/model', () => ({
        status: 200,
        body: {
          version: 'v',
          report: {
            classificationReport: {
              cat: { precision: 0.5, recall: 1, 'f1-score': 0.667, support: 1 },
              'macro avg': { precision: 0.5, recall: 0.5, 'f1-score': 0.5, support: 2 },
            },
          },
        },
      }));
      const { ctx, out } = testContext(cwd);

      expect(await runModel(['pets', ...flags], ctx)).toBe(EXIT.OK);
      expect(out.slice(-2)).toEqual([
        'label  precision  recall     f1  support',
        'cat        0.500   1.000  0.667        1',
      ]);
    });

    it('exits 1 with the server message when there is no model yet (409)', async () => {
      const message = "dataset 'pets' has no promoted model yet; POST /datasets/pets/trainings to train one";
      api.routes.set('GET /datasets/pets/model', () => ({
        status: 409,
        body: { error: { code: 'NoModel', message } },
      }));
      const { ctx, stderr } = testContext(cwd);

      const code = await runModel(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(stderr()).toBe(`tlearn model: NoModel: ${message}`);
    });
  });

  describe('predict', () => {
    let imgDir: string;
    beforeAll(async () => {
      imgDir = await mkdtemp(join(tmpdir(), 'tlearn-predict-'));
      await writeFile(join(imgDir, 'cat.jpg'), Buffer.from([0xff, 0xd8, 0xff, 1, 2, 3]));
      await writeFile(join(imgDir, 'broken.png'), Buffer.from('not really'));
      await writeFile(join(imgDir, 'notes.txt'), 'x');
    });
    afterAll(async () => {
      await rm(imgDir, { recursive: true, force: true });
    });

    const prediction = (label: string) => ({
      dataset: 'pets',
      model: MODEL,
      label,
      confidence: 0.973,
      scores: [
        { label, probability: 0.973 },
        { label: 'dog', probability: 0.027 },
      ],
      timingsMs: { total: 42 },
    });

    it('posts raw image bytes with their content type and prints label, confidence and scores', async () => {
      api.routes.set('POST /datasets/pets/predictions', () => ({ status: 200, body: prediction('cat') }));
      const { ctx, out } = testContext(cwd);

      const code = await runRemotePredict(['pets', join(imgDir, 'cat.jpg'), '--top', '2', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      const req = api.requests[0];
      expect(req?.headers['content-type']).toBe('image/jpeg');
      expect([...(req?.body ?? [])]).toEqual([0xff, 0xd8, 0xff, 1, 2, 3]);
      expect(req?.query.get('top')).toBe('2');
      expect(out[1]).toMatch(/cat\.jpg\s+cat\s+97\.3%\s+cat 97\.3%, dog 2\.7%$/);
    });

    it('prints 4xx errors per image from the error body and exits 3 when some failed', async () => {
      api.routes.set('POST /datasets/pets/predictions', (r) =>
        r.headers['content-type'] === 'image/png'
          ? { status: 422, body: { error: { code: 'CorruptImage', message: 'cannot decode the PNG' } } }
          : { status: 200, body: prediction('cat') },
      );
      const { ctx, stdout } = testContext(cwd);

      const code = await runRemotePredict(
        [
          'pets',
          join(imgDir, 'cat.jpg'),
          join(imgDir, 'broken.png'),
          join(imgDir, 'notes.txt'),
          '--json',
          ...flags,
        ],
        ctx,
      );

      expect(code).toBe(EXIT.PARTIAL);
      const results = JSON.parse(stdout()) as Array<Record<string, unknown>>;
      expect(results.map((r) => Object.keys(r).sort())).toEqual([
        ['file', 'prediction'],
        ['error', 'file'],
        ['error', 'file'],
      ]);
      expect(results[1]?.error).toEqual({ code: 'CorruptImage', message: 'cannot decode the PNG' });
      expect(results[2]?.error).toMatchObject({ code: 'NotAnImage' });
      // The .txt never went to the server.
      expect(api.requests).toHaveLength(2);
    });

    it('exits 1 with the server message when the dataset has no model (409)', async () => {
      const message = "dataset 'pets' has no promoted model yet; POST /datasets/pets/trainings to train one";
      api.routes.set('POST /datasets/pets/predictions', () => ({
        status: 409,
        body: { error: { code: 'NoModel', message } },
      }));
      const { ctx, stderr } = testContext(cwd);

      const code = await runRemotePredict(['pets', join(imgDir, 'cat.jpg'), ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(stderr()).toBe(`tlearn predict: NoModel: ${message}`);
    });

    it('exits 4 naming the target when the stack is down', async () => {
      const closed = await closedPortUrl();
      const { ctx, stderr } = testContext(cwd);

      const code = await runRemotePredict(['pets', join(imgDir, 'cat.jpg'), '--endpoint', closed], ctx);

      expect(code).toBe(EXIT.UNAVAILABLE);
      expect(stderr()).toBe(
        `tlearn predict: using the local stack at ${closed} (from --endpoint; start it with \`npm start\`): connection refused`,
      );
    });
  });
});
