import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../lib/cli/args.ts';
import { runModel } from '../../../lib/cli/commands/model.ts';
import { runRemotePredict } from '../../../lib/cli/commands/predict-remote.ts';
import { runStatus } from '../../../lib/cli/commands/status.ts';
import { PROMOTION_GRACE_MS, runTrain, trainingBlocker } from '../../../lib/cli/commands/train.ts';
import { EXIT } from '../../../lib/cli/exit-codes.ts';
import { RANDOM_WEIGHTS_WARNING } from '../../../lib/cli/remote.ts';
import { TargetError } from '../../../lib/cli/target.ts';
import {
  datasetStatus,
  modelBody,
  modelSummary,
  NEWER,
  PREVIOUS,
  PROMOTED_AT,
  predictionBody,
  RANDOM_SPEC,
  SPEC,
  TRAINED_AT,
  trainingStarted,
  VERSION,
  versionAt,
} from './api-bodies.ts';
import { closedPortUrl, type FakeApi, startFakeApi, testContext } from './helpers.ts';

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
    it('prints image and feature totals, a labels table sorted by label, the model and the last training', async () => {
      api.routes.set('GET /datasets/pets', () => ({ status: 200, body: datasetStatus() }));
      const { ctx, out } = testContext(cwd);

      const code = await runStatus(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(out).toEqual([
        'dataset   pets',
        'images    12   features: 10 ready, 1 failed, 1 pending (2 unusable keys skipped)',
        '          features are still being extracted; a training starts when they are ready',
        '',
        'label  images  ready  failed  pending',
        'cat         7      6       0        1',
        'dog         5      4       1        0',
        '',
        `model     ${VERSION}, trained ${TRAINED_AT}, promoted ${PROMOTED_AT}`,
        `          2 classes (cat, dog), spec ${SPEC}`,
        `training  ${VERSION} at ${versionAt(VERSION)}, promoted`,
      ]);
    });

    it('warns about a model of random base weights and says when the last training is not the current model', async () => {
      const body = datasetStatus({
        featuresSettled: true,
        images: { total: 12, ready: 11, failed: 1, pending: 0, skipped: 0 },
        model: modelSummary({ spec: RANDOM_SPEC, randomWeights: true }),
        lastTraining: { version: NEWER, at: versionAt(NEWER), promoted: false },
      });
      api.routes.set('GET /datasets/pets', () => ({ status: 200, body }));
      const { ctx, out } = testContext(cwd);

      const code = await runStatus(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(out[1]).toBe('images    12   features: 11 ready, 1 failed, 0 pending');
      expect(out).not.toContain(
        '          features are still being extracted; a training starts when they are ready',
      );
      expect(out.slice(-3)).toEqual([
        `          2 classes (cat, dog), spec ${RANDOM_SPEC}`,
        `          ${RANDOM_WEIGHTS_WARNING}`,
        `training  ${NEWER} at ${versionAt(NEWER)}, not promoted; the current model is ${VERSION}`,
      ]);
    });

    it('says when a dataset has no model and no training yet', async () => {
      api.routes.set('GET /datasets/pets', () => ({
        status: 200,
        body: datasetStatus({ model: null, lastTraining: null }),
      }));
      const { ctx, out } = testContext(cwd);

      expect(await runStatus(['pets', ...flags], ctx)).toBe(EXIT.OK);
      expect(out.slice(-2)).toEqual(['model     none yet (tlearn train pets)', 'training  none yet']);
    });

    it('prints the API answer with --json and sends the API key', async () => {
      api.apiKey = 'k-123';
      api.routes.set('GET /datasets/pets', () => ({ status: 200, body: datasetStatus({ model: null }) }));
      const { ctx, stdout } = testContext(cwd, { TLEARN_API_KEY: 'k-123' });

      const code = await runStatus(['pets', '--json', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(JSON.parse(stdout())).toEqual(datasetStatus({ model: null }));
      expect(api.requests[0]?.headers['x-api-key']).toBe('k-123');
    });

    it('refuses an answer of another shape, asking whether the CLI is as new as the stack', async () => {
      // The shape this CLI was first written against: a bare image count and a features object.
      api.routes.set('GET /datasets/pets', () => ({
        status: 200,
        body: { dataset: 'pets', images: 12, features: { ready: 10, failed: 1, pending: 1 } },
      }));
      const { ctx, stderr } = testContext(cwd);

      const code = await runStatus(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(stderr()).toMatch(
        /^tlearn status: UnexpectedResponse: GET \/datasets\/pets answered in an unexpected shape \(images: .*\); is the CLI as new as the stack\?/,
      );
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
      api.routes.set('POST /datasets/pets/trainings', () => ({ status: 202, body: trainingStarted() }));
      const { ctx, stdout } = testContext(cwd);

      const code = await runTrain(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(stdout()).toBe(
        `started training of 'pets' at 2026-11-28T11:00:00.000Z: ${trainingStarted().executionArn}`,
      );
      expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /datasets/pets/trainings']);
      expect(JSON.parse(api.requests[0]?.body.toString() ?? '')).toEqual({});
    });

    it('with --wait polls until a newer model is promoted, showing the version written meanwhile', async () => {
      let polls = 0;
      api.routes.set('POST /datasets/pets/trainings', () => ({ status: 202, body: trainingStarted() }));
      api.routes.set('GET /datasets/pets', () => {
        polls += 1;
        // 1: before the POST; 2: features pending; 3: the new version is written; 4: it is promoted.
        if (polls <= 2) return { status: 200, body: datasetStatus() };
        if (polls === 3)
          return {
            status: 200,
            body: datasetStatus({ lastTraining: { version: NEWER, at: versionAt(NEWER), promoted: false } }),
          };
        return {
          status: 200,
          body: datasetStatus({
            model: modelSummary({ version: NEWER, spec: RANDOM_SPEC, randomWeights: true }),
            lastTraining: { version: NEWER, at: versionAt(NEWER), promoted: true },
          }),
        };
      });
      const { ctx, stdout, err } = testContext(cwd);

      const code = await runTrain(['pets', '--wait', '--interval', '0.01', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(polls).toBe(4);
      expect(stdout()).toContain(`promoted model ${NEWER} (trained ${TRAINED_AT}, classes cat, dog)`);
      expect(err.map((l) => l.replace(/; \d+m\d+s$/, ''))).toEqual([
        'waiting: features 10/12 ready, 1 failed, 1 pending',
        `waiting: features 10/12 ready, 1 failed, 1 pending; model ${NEWER} written, promoting`,
        RANDOM_WEIGHTS_WARNING,
      ]);
    });

    it('with --wait stops at once when the settled features cannot train a model', async () => {
      api.routes.set('POST /datasets/pets/trainings', () => ({ status: 202, body: trainingStarted() }));
      api.routes.set('GET /datasets/pets', () => ({
        status: 200,
        body: datasetStatus({
          featuresSettled: true,
          images: { total: 9, ready: 7, failed: 2, pending: 0, skipped: 0 },
          labels: {
            cat: { images: 6, ready: 6, failed: 0, pending: 0 },
            dog: { images: 3, ready: 1, failed: 2, pending: 0 },
          },
        }),
      }));
      const { ctx, stderr } = testContext(cwd);

      const code = await runTrain(['pets', '--wait', '--interval', '0.01', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(stderr()).toBe(
        "tlearn train: the training cannot succeed: too few usable images for 'dog' (1); training needs at least 2 labels with at least 2 usable images each (tlearn status pets)",
      );
    });

    it("with --wait reports the state machine's error and cause when its execution failed", async () => {
      const started = trainingStarted();
      let polls = 0;
      api.routes.set('POST /datasets/pets/trainings', () => ({ status: 202, body: started }));
      api.routes.set('GET /datasets/pets', () => {
        polls += 1;
        return {
          status: 200,
          body: datasetStatus({
            lastExecution:
              polls === 1
                ? null
                : {
                    name: started.executionName,
                    executionArn: started.executionArn,
                    status: 'FAILED',
                    startedAt: started.startedAt,
                    stoppedAt: '2026-11-28T11:00:05.000Z',
                    trigger: 'manual',
                    error: 'InsufficientData',
                    cause: "label 'dog' has only 1 usable image",
                  },
          }),
        };
      });
      const { ctx, stderr } = testContext(cwd);

      const code = await runTrain(['pets', '--wait', '--interval', '0.01', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(stderr()).toContain(
        "the training failed: InsufficientData: label 'dog' has only 1 usable image",
      );
    });

    it('with --wait gives up when the version the training wrote stays unpromoted', async () => {
      let polls = 0;
      api.routes.set('POST /datasets/pets/trainings', () => ({ status: 202, body: trainingStarted() }));
      api.routes.set('GET /datasets/pets', () => {
        polls += 1;
        return {
          status: 200,
          body:
            polls === 1
              ? datasetStatus()
              : datasetStatus({ lastTraining: { version: NEWER, at: versionAt(NEWER), promoted: false } }),
        };
      });
      let clock = 0;
      const { ctx, stderr } = testContext(cwd);
      ctx.now = () => clock;
      ctx.sleep = async (ms) => {
        clock += ms;
      };

      const code = await runTrain(['pets', '--wait', '--interval', '5', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(clock).toBe(PROMOTION_GRACE_MS);
      expect(stderr()).toContain(
        `tlearn train: the training wrote model ${NEWER} but it was not promoted within 60 s; ${VERSION} is still current`,
      );
    });

    it('with --wait does not take an older unpromoted version for this training', async () => {
      // A version written before this training started (e.g. the trainer ran, promote failed).
      const old = '20261128T100000Z-old002';
      const stale = datasetStatus({ lastTraining: { version: old, at: versionAt(old), promoted: false } });
      api.routes.set('POST /datasets/pets/trainings', () => ({ status: 202, body: trainingStarted() }));
      api.routes.set('GET /datasets/pets', () => ({ status: 200, body: stale }));
      let clock = 0;
      const { ctx, stderr } = testContext(cwd);
      ctx.now = () => clock;
      ctx.sleep = async (ms) => {
        clock += ms;
      };

      const code = await runTrain(['pets', '--wait', '--wait-timeout', '120', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(clock).toBe(120_000);
      expect(stderr()).toContain('no new model after 120 s');
      expect(stderr()).not.toContain('written, promoting');
    });

    it('with --wait gives up after --wait-timeout', async () => {
      api.routes.set('POST /datasets/pets/trainings', () => ({ status: 202, body: trainingStarted() }));
      api.routes.set('GET /datasets/pets', () => ({
        status: 200,
        body: datasetStatus({ model: null, lastTraining: null }),
      }));
      let clock = 0;
      const { ctx, stderr } = testContext(cwd);
      ctx.now = () => clock;
      ctx.sleep = async (ms) => {
        clock += ms;
      };

      const code = await runTrain(['pets', '--wait', '--wait-timeout', '30', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(clock).toBe(30_000);
      expect(stderr()).toContain('no new model after 30 s; the training may still be running');
    });

    it('with --wait follows a training that is already running to its promoted model instead of exiting 1', async () => {
      const running = trainingStarted('2026-11-28T10:59:00.000Z');
      const execution = {
        name: running.executionName,
        executionArn: running.executionArn,
        status: 'RUNNING',
        startedAt: running.startedAt,
        stoppedAt: null,
        trigger: 'auto' as const,
        error: null,
        cause: null,
      };
      let polls = 0;
      api.routes.set('POST /datasets/pets/trainings', () => ({
        status: 409,
        body: { error: { code: 'TrainingInProgress', message: `a training of 'pets' is running` } },
      }));
      api.routes.set('GET /datasets/pets', () => {
        polls += 1;
        // 1: before the POST; 2-3: the running execution; 4: its model is promoted.
        if (polls <= 3) return { status: 200, body: datasetStatus({ lastExecution: execution }) };
        return {
          status: 200,
          body: datasetStatus({
            model: modelSummary({ version: NEWER }),
            lastTraining: { version: NEWER, at: versionAt(NEWER), promoted: true },
            lastExecution: { ...execution, status: 'SUCCEEDED', stoppedAt: '2026-11-28T11:06:00.000Z' },
          }),
        };
      });
      const { ctx, stdout, err } = testContext(cwd);

      const code = await runTrain(['pets', '--wait', '--interval', '0.01', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(polls).toBe(4);
      expect(api.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
      expect(err[0]).toBe("a training of 'pets' is already running: following it");
      expect(stdout()).toBe(
        [
          `following training of 'pets' started at ${running.startedAt}: ${running.executionArn}`,
          `promoted model ${NEWER} (trained ${TRAINED_AT}, classes cat, dog)`,
        ].join('\n'),
      );
      // Without --wait the 409 stays a refusal with the server's message.
      const plain = testContext(cwd);
      expect(await runTrain(['pets', ...flags], plain.ctx)).toBe(EXIT.FAILURE);
      expect(plain.stderr()).toContain("TrainingInProgress: a training of 'pets' is running");
    });

    it('with --wait exits 1 when the followed training ends without promoting a new model', async () => {
      const running = trainingStarted('2026-11-28T10:59:00.000Z');
      const execution = {
        name: running.executionName,
        executionArn: running.executionArn,
        status: 'RUNNING',
        startedAt: running.startedAt,
        stoppedAt: null,
        trigger: 'auto' as const,
        error: null,
        cause: null,
      };
      let polls = 0;
      api.routes.set('POST /datasets/pets/trainings', () => ({
        status: 409,
        body: { error: { code: 'TrainingInProgress', message: `a training of 'pets' is running` } },
      }));
      api.routes.set('GET /datasets/pets', () => {
        polls += 1;
        return {
          status: 200,
          body: datasetStatus({
            lastExecution: polls <= 2 ? execution : { ...execution, status: 'SUCCEEDED' },
          }),
        };
      });
      const { ctx, stderr } = testContext(cwd);

      const code = await runTrain(['pets', '--wait', '--interval', '0.01', ...flags], ctx);

      expect(code).toBe(EXIT.FAILURE);
      expect(stderr()).toContain(
        `the training ${running.executionName} ended without promoting a new model; ${VERSION} is still current`,
      );
    });

    it('tells from settled counts which datasets no training can fit', () => {
      const settled = (labels: Record<string, number>) =>
        datasetStatus({
          featuresSettled: true,
          labels: Object.fromEntries(
            Object.entries(labels).map(([l, ready]) => [
              l,
              { images: 5, ready, failed: 5 - ready, pending: 0 },
            ]),
          ),
        });

      expect(trainingBlocker(settled({ cat: 5, dog: 2 }))).toBeUndefined();
      expect(trainingBlocker(settled({ cat: 5, dog: 0 }))).toMatch(/^only label 'cat' has usable images/);
      expect(trainingBlocker(settled({ cat: 0, dog: 0 }))).toMatch(
        /^no image of 'pets' has a usable feature/,
      );
      expect(trainingBlocker(settled({ cat: 1, dog: 1, fox: 3 }))).toMatch(
        /^too few usable images for 'cat' \(1\), 'dog' \(1\)/,
      );
      // While features are pending, more may become usable: no verdict yet.
      expect(trainingBlocker({ ...settled({ cat: 5, dog: 0 }), featuresSettled: false })).toBeUndefined();
    });
  });

  describe('model', () => {
    it('prints version, dates, classes, accuracy, the confusion matrix and the per-class table', async () => {
      api.routes.set('GET /datasets/pets/model', () => ({ status: 200, body: modelBody() }));
      const { ctx, out } = testContext(cwd);

      const code = await runModel(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(out).toEqual([
        'dataset   pets',
        `model     ${VERSION}`,
        `trained   ${TRAINED_AT}`,
        `promoted  ${PROMOTED_AT}`,
        `previous  ${PREVIOUS} (tlearn model pets --rollback)`,
        'classes   cat, dog',
        `spec      ${SPEC}`,
        'accuracy  90.0 % on 10 held-out images   log loss 0.2512',
        'images    40 train, 10 test',
        '',
        'confusion matrix (rows: true label, columns: predicted)',
        '     cat  dog',
        'cat    5    1',
        'dog    0    4',
        '',
        'label         precision  recall     f1  support',
        'cat               1.000   0.833  0.909        6',
        'dog               0.800   1.000  0.889        4',
        'macro avg         0.900   0.917  0.899       10',
        'weighted avg      0.920   0.900  0.901       10',
      ]);
    });

    it('warns about random base weights and falls back to model.json metrics for an older report', async () => {
      const body = modelBody({ spec: RANDOM_SPEC, previous: null, report: { accuracy: 0.5, labels: ['x'] } });
      api.routes.set('GET /datasets/pets/model', () => ({ status: 200, body }));
      const { ctx, out } = testContext(cwd);

      const code = await runModel(['pets', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(out.join('\n')).not.toContain('previous');
      expect(out.slice(4)).toEqual([
        'classes   cat, dog',
        `spec      ${RANDOM_SPEC}`,
        `          ${RANDOM_WEIGHTS_WARNING}`,
        'accuracy  90.0 % on 10 held-out images   log loss 0.2512',
        'images    40 train, 10 test',
        'report    not shown: report.json does not match this CLI\'s schema (format: Invalid literal value, expected "tlearn-report"); see --json',
      ]);
    });

    it('lists the held-out predictions of one cell with --predictions, following the pages', async () => {
      const row = (i: number) => ({
        key: `datasets/pets/cat/${i}.jpg`,
        true: 'cat',
        predicted: 'dog',
        probabilities: [0.25, 0.75],
      });
      api.routes.set('GET /datasets/pets/model/predictions', (req) => {
        const second = req.query.get('token') === 'p2';
        return {
          status: 200,
          body: {
            dataset: 'pets',
            version: VERSION,
            classes: ['cat', 'dog'],
            items: second ? [row(3)] : [row(1), row(2)],
            total: 3,
            limit: 2,
            nextToken: second ? null : 'p2',
          },
        };
      });
      const { ctx, out, stderr } = testContext(cwd);

      const code = await runModel(
        ['pets', '--predictions', '--true', 'cat', '--predicted', 'dog', ...flags],
        ctx,
      );

      expect(code).toBe(EXIT.OK);
      expect(out).toEqual([
        'key\ttrue\tpredicted\tprobability',
        'datasets/pets/cat/1.jpg\tcat\tdog\t0.7500',
        'datasets/pets/cat/2.jpg\tcat\tdog\t0.7500',
        'datasets/pets/cat/3.jpg\tcat\tdog\t0.7500',
      ]);
      const asked = api.requests.filter((r) => r.path === '/datasets/pets/model/predictions');
      expect(asked.map((r) => [r.query.get('true'), r.query.get('predicted'), r.query.get('token')])).toEqual(
        [
          ['cat', 'dog', null],
          ['cat', 'dog', 'p2'],
        ],
      );
      expect(stderr()).toContain(`3 held-out predictions of model ${VERSION}`);
    });

    it('prints the API answer as it came with --json', async () => {
      api.routes.set('GET /datasets/pets/model', () => ({ status: 200, body: modelBody() }));
      const { ctx, stdout } = testContext(cwd);

      expect(await runModel(['pets', '--json', ...flags], ctx)).toBe(EXIT.OK);
      expect(JSON.parse(stdout())).toEqual(JSON.parse(JSON.stringify(modelBody())));
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

    const prediction = (label: string) => predictionBody(label);

    it('posts raw image bytes with their content type and prints label, confidence and scores', async () => {
      api.routes.set('POST /datasets/pets/predictions', () => ({ status: 200, body: prediction('cat') }));
      const { ctx, out, err } = testContext(cwd);

      const code = await runRemotePredict(['pets', join(imgDir, 'cat.jpg'), '--top', '2', ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      const req = api.requests[0];
      expect(req?.headers['content-type']).toBe('image/jpeg');
      expect([...(req?.body ?? [])]).toEqual([0xff, 0xd8, 0xff, 1, 2, 3]);
      expect(req?.query.get('top')).toBe('2');
      expect(out[1]).toMatch(/cat\.jpg\s+cat\s+97\.3 %\s+cat 97\.3 %, dog 2\.7 %$/);
      expect(err).toEqual([`(model ${VERSION} of 'pets')`]);
    });

    it('passes --threshold to the API and shows an abstained prediction with its scores', async () => {
      api.routes.set('POST /datasets/pets/predictions', () => ({
        status: 200,
        body: { ...prediction('cat'), label: null, abstained: true, threshold: 0.99 },
      }));
      const { ctx, out } = testContext(cwd);

      const code = await runRemotePredict(
        ['pets', join(imgDir, 'cat.jpg'), '--threshold', 'auto', ...flags],
        ctx,
      );

      expect(code).toBe(EXIT.OK);
      expect(api.requests.at(-1)?.query.get('threshold')).toBe('auto');
      expect(out[1]).toMatch(/cat\.jpg\s+\(abstained\)\s+97\.3 %\s+cat 97\.3 %, dog 2\.7 %$/);
      await expect(runRemotePredict(['pets', 'x.jpg', '--threshold', 'high', ...flags], ctx)).rejects.toThrow(
        /--threshold must be 'auto' or a number/,
      );
    });

    it('names the model that answered and warns when it was trained on random base weights', async () => {
      api.routes.set('POST /datasets/pets/predictions', () => ({
        status: 200,
        body: predictionBody('cat', { spec: RANDOM_SPEC, randomWeights: true }),
      }));
      const { ctx, err } = testContext(cwd);

      const code = await runRemotePredict(['pets', join(imgDir, 'cat.jpg'), ...flags], ctx);

      expect(code).toBe(EXIT.OK);
      expect(err).toEqual([`(model ${VERSION} of 'pets')`, RANDOM_WEIGHTS_WARNING]);
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
