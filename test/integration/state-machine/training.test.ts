import type { Context } from 'aws-lambda';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { synthesizeTrainingDefinition } from '../../../infra/definition.ts';
import { ENV } from '../../../lib/config.ts';
import { loadExtractor } from '../../../lib/model/extractor.ts';
import type { FeatureExtractor } from '../../../lib/model/types.ts';
import { extractImages } from '../../../lib/pipeline/extract.ts';
import type { ImageJob } from '../../../lib/pipeline/feature-records.ts';
import { startTrainings } from '../../../lib/pipeline/start-training.ts';
import {
  readTrainingLock,
  type TrainingSfnClient,
  writeTrainingLock,
} from '../../../lib/pipeline/training-lock.ts';
import { CurrentPointer } from '../../../lib/serving/current-pointer.ts';
import { currentModelKey, modelFileKey } from '../../../lib/storage/keys.ts';
import { getJson, getObject, putJson, putObject } from '../../../lib/storage/s3.ts';
import { parseModelDocument } from '../../../lib/training/model-document.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { makeLabelledImages } from '../../helpers/images.ts';
import { fakeContext, putImageWithFeature, setHandlerEnv, TEST_SPEC } from '../pipeline/support.ts';

type TaskName = 'check-readiness' | 'train-head' | 'promote-model' | 'finish-training';
type TaskFn = (input: unknown) => Promise<unknown>;
type Execution = ReturnType<StateMachine['run']>;
type EventLog = Execution['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

const MAX_ROUNDS = 2;

/** The feature.ready message of an image of dataset pets (what the extractor sends). */
function lateMessage(imageKey: string) {
  return {
    type: 'feature.ready',
    dataset: 'pets',
    label: imageKey.split('/')[2] ?? 'cat',
    imageKey,
    featureKey: imageKey.replace(/^datasets\//, 'features/').concat('.npy'),
    sourceEtag: 'etag',
    spec: TEST_SPEC,
    at: new Date().toISOString(),
  };
}
const INPUT = { dataset: 'pets', trigger: 'auto', requestedAt: '2026-01-01T00:00:05.000Z' };

/**
 * What Lambda does with a function's error before Step Functions sees it: `Error` is the error
 * type, `Cause` the JSON of `{errorType, errorMessage, trace}`.
 */
function asLambda(fn: TaskFn): (input: unknown) => Promise<never> {
  return async (input) => {
    try {
      return (await fn(input)) as never;
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const lambdaError = new Error(
        JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: [] }),
      );
      lambdaError.name = e.name;
      throw lambdaError;
    }
  };
}

describe('training state machine (CDK-synthesized definition, local interpreter, real handlers, emulated S3)', () => {
  let emu: Emulator;
  let restoreEnv: () => void;
  let definition: StateMachineDefinition;
  let taskStates: Record<string, TaskName>;
  let handlers: Record<TaskName, TaskFn>;
  let extractor: FeatureExtractor;
  let featuresQueueUrl: string;

  /** Uploads real PNGs of two separable classes; returns their keys and ETags as S3 events carry them. */
  async function uploadImages(perClass: number): Promise<ImageJob[]> {
    const images = await makeLabelledImages({ labels: ['cat', 'dog'], perClass, width: 32, height: 32 });
    const jobs: ImageJob[] = [];
    for (const img of images) {
      const key = `datasets/pets/${img.label}/${img.file}`;
      const { etag } = await putObject(emu.clients.s3, emu.bucket, key, img.data);
      jobs.push({ recordId: key, key, etag });
    }
    return jobs;
  }

  async function extract(jobs: ImageJob[]): Promise<void> {
    const r = await extractImages(jobs, {
      s3: emu.clients.s3,
      sqs: emu.clients.sqs,
      bucket: emu.bucket,
      featuresQueueUrl,
      extractor,
      batchSize: 8,
      log: silentLog,
    });
    expect(r.counts.extracted).toBe(jobs.length);
  }

  /** Runs one execution with the task states bound to the handlers (or to `override`s of them). */
  async function run(overrides: Partial<Record<TaskName, TaskFn>> = {}, executionName = 'pets-test') {
    const machine = new StateMachine(definition);
    const taskResourceLocalHandlers = Object.fromEntries(
      Object.entries(taskStates).map(([state, fn]) => [state, asLambda(overrides[fn] ?? handlers[fn])]),
    );
    const execution = machine.run(INPUT, {
      overrides: {
        taskResourceLocalHandlers,
        waitTimeOverrides: { Settle: 0, WaitForFeatures: 0 },
        retryIntervalOverrides: { CheckReadiness: 0, TrainHead: 0, Promote: 0 },
      },
      context: { Execution: { Name: executionName } },
    });
    const events: EventLog[] = [];
    const collecting = (async () => {
      for await (const e of execution.eventLogs) events.push(e);
    })();
    const output = (await execution.result.catch(() => undefined)) as Record<string, unknown> | undefined;
    await collecting;
    const path = events.flatMap((e) => (e.type === 'StateEntered' ? [e.state.name] : []));
    const failed = events.find((e) => e.type === 'ExecutionFailed');
    return {
      output,
      path,
      events,
      failure:
        failed?.type === 'ExecutionFailed' ? { error: failed.Error, cause: String(failed.Cause) } : undefined,
    };
  }

  beforeAll(async () => {
    emu = await startEmulator();
    featuresQueueUrl = emu.createQueue('features').queueUrl;
    restoreEnv = setHandlerEnv(emu, {
      [ENV.FEATURES_QUEUE_URL]: featuresQueueUrl,
      // finish-training starts fresh executions at the retrain limit (not reached here): loopback only.
      [ENV.STATE_MACHINE_ARN]: 'arn:aws:states:us-east-1:123456789012:stateMachine:t',
      [ENV.SFN_ENDPOINT]: 'http://127.0.0.1:9',
    });
    vi.resetModules();
    const ctx = (name: string): Context => fakeContext(name);
    const checkReadiness = (await import('../../../functions/check-readiness/handler.ts')).handler;
    const trainHead = (await import('../../../functions/train-head/handler.ts')).handler;
    const promoteModel = (await import('../../../functions/promote-model/handler.ts')).handler;
    const finishTraining = (await import('../../../functions/finish-training/handler.ts')).handler;
    handlers = {
      'check-readiness': (input) => checkReadiness(input, ctx('check-readiness')),
      'train-head': (input) => trainHead(input, ctx('train-head')),
      'promote-model': (input) => promoteModel(input, ctx('promote-model')),
      'finish-training': (input) => finishTraining(input, ctx('finish-training')),
    };
    const synthesized = await synthesizeTrainingDefinition({
      settleSeconds: 0,
      pollSeconds: 1,
      maxRounds: MAX_ROUNDS,
      maxRetrains: 3,
    });
    definition = synthesized.definition as unknown as StateMachineDefinition;
    taskStates = synthesized.taskStates;
    extractor = await loadExtractor({
      weights: { kind: 'random', seed: 1 },
      inputSize: 32,
      pooling: 'flatten',
      log: silentLog,
    });
    expect(extractor.specId).toBe(TEST_SPEC);
  });
  afterAll(async () => {
    extractor?.dispose();
    restoreEnv?.();
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
  });

  it('happy path: images → features → ready → trained → promoted', async () => {
    await extract(await uploadImages(4));

    const r = await run();

    expect(r.failure).toBeUndefined();
    expect(r.path).toEqual([
      'Start',
      'Settle',
      'CheckReadiness',
      'FeaturesReady',
      'TrainHead',
      'Promote',
      'Finish',
      'TrainAgain',
      'Done',
    ]);
    const training = r.output?.training as { version: string; accuracy: number; spec: string };
    expect(training.spec).toBe(TEST_SPEC);
    expect(r.output?.readiness).toMatchObject({ total: 8, ready: 8, pending: 0 });
    expect(r.output?.promotion).toEqual({ promoted: true, version: training.version, previous: null });
    const current = await getJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), CurrentPointer);
    expect(current.version).toBe(training.version);
    const modelObject = await getObject(
      emu.clients.s3,
      emu.bucket,
      modelFileKey('pets', training.version, 'model.json'),
    );
    const model = parseModelDocument(Buffer.from(modelObject.body).toString('utf8'));
    expect(model).toMatchObject({ classes: ['cat', 'dog'], spec: TEST_SPEC, dataset: 'pets' });
  });

  it('waits while features are pending and trains once the extractor has caught up', async () => {
    const jobs = await uploadImages(3);
    await extract(jobs.slice(0, -1));
    const late = jobs.slice(-1);
    let checks = 0;

    const r = await run({
      'check-readiness': async (input) => {
        const result = await handlers['check-readiness'](input);
        checks += 1;
        // The last image's extraction lands while the machine waits.
        if (checks === 1) await extract(late);
        return result;
      },
    });

    expect(r.failure).toBeUndefined();
    expect(r.path).toEqual([
      'Start',
      'Settle',
      'CheckReadiness',
      'FeaturesReady',
      'WaitForFeatures',
      'NextRound',
      'CheckReadiness',
      'FeaturesReady',
      'TrainHead',
      'Promote',
      'Finish',
      'TrainAgain',
      'Done',
    ]);
    const firstCheck = r.events.find((e) => e.type === 'StateExited' && e.state.name === 'CheckReadiness');
    expect(firstCheck?.type === 'StateExited' && firstCheck.state.output).toMatchObject({
      readiness: { pending: 1, ready: 5 },
    });
    expect(r.output?.readiness).toMatchObject({ pending: 0, ready: 6 });
  });

  it('trains on the ready images after the polling rounds and reports the pending ones as left out', async () => {
    const jobs = await uploadImages(3);
    await extract(jobs.slice(0, -1));

    const r = await run();

    expect(r.failure).toBeUndefined();
    expect(r.path.filter((s) => s === 'CheckReadiness')).toHaveLength(MAX_ROUNDS + 1);
    const training = r.output?.training as {
      version: string;
      nTrain: number;
      nTest: number;
      excluded: unknown;
    };
    expect(training.nTrain + training.nTest).toBe(5);
    expect(training.excluded).toEqual([{ reason: 'pending', count: 1 }]);
    const report = await getJson(
      emu.clients.s3,
      emu.bucket,
      modelFileKey('pets', training.version, 'report.json'),
      z.object({ note: z.string() }).passthrough(),
    );
    expect(report.note).toContain('1 image(s) still being extracted');
  });

  /** Holds the lock for `running`, as start-training would have, and returns the late feature's marker. */
  async function holdLock(running: string): Promise<(lateKey: string) => Promise<void>> {
    await writeTrainingLock(
      emu.clients.s3,
      emu.bucket,
      'pets',
      {
        state: 'running',
        executionName: running,
        acquiredAt: new Date().toISOString(),
        generation: 1,
        trainedGeneration: 0,
        trigger: 'auto',
        updatedAt: new Date().toISOString(),
      },
      undefined,
    );
    // start-training's answer to the late feature's message while the execution runs: a mark.
    const sfn: TrainingSfnClient = { send: async () => ({ status: 'RUNNING' }) };
    return async (lateKey) => {
      await putImageWithFeature(emu, lateKey, { seed: 7 });
      const marked = await startTrainings(
        [{ id: 'late', body: JSON.stringify(lateMessage(lateKey)), receiveCount: 1 }],
        {
          s3: emu.clients.s3,
          bucket: emu.bucket,
          sfn,
          stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:t',
          log: silentLog,
        },
      );
      expect(marked.datasets[0]?.status).toBe('marked');
    };
  }

  it('trains once on a feature that lands after the readiness check but before train-head lists: its late mark needs no retrain', async () => {
    await extract(await uploadImages(2));
    const running = 'pets-late-feature';
    const late = await holdLock(running);
    let checks = 0;

    const r = await run(
      {
        'check-readiness': async (input) => {
          const result = await handlers['check-readiness'](input);
          checks += 1;
          // Uploaded and extracted just after this check listed the dataset.
          if (checks === 1) await late('datasets/pets/cat/late.png');
          return result;
        },
      },
      running,
    );

    expect(r.failure).toBeUndefined();
    expect(r.path.filter((s) => s === 'TrainHead')).toHaveLength(1);
    expect(r.output?.finish).toMatchObject({ again: false, reason: 'unchanged', generation: 2 });
    const training = r.output?.training as { nTrain: number; nTest: number };
    expect(training.nTrain + training.nTest).toBe(5);
    const lock = await readTrainingLock(emu.clients.s3, emu.bucket, 'pets');
    expect(lock?.lock).toMatchObject({ state: 'idle', generation: 2, trainedGeneration: 2 });
  });

  it('includes a feature that lands after train-head listed the dataset: the lock generation moved and the listing changed, so it trains again', async () => {
    await extract(await uploadImages(2));
    const running = 'pets-late-feature';
    const late = await holdLock(running);
    let trainings = 0;

    const r = await run(
      {
        'train-head': async (input) => {
          const result = await handlers['train-head'](input);
          trainings += 1;
          if (trainings === 1) await late('datasets/pets/cat/late.png');
          return result;
        },
      },
      running,
    );

    expect(r.failure).toBeUndefined();
    expect(r.path.filter((s) => s === 'TrainHead')).toHaveLength(2);
    expect(r.path).toContain('NextTraining');
    const training = r.output?.training as { nTrain: number; nTest: number };
    expect(r.path.filter((s) => s === 'CheckReadiness')).toHaveLength(2);
    expect(training.nTrain + training.nTest).toBe(5);
    const lock = await readTrainingLock(emu.clients.s3, emu.bucket, 'pets');
    expect(lock?.lock).toMatchObject({ state: 'idle', generation: 2, trainedGeneration: 2 });
  });

  it('fails in TrainHeadFailed with a readable cause when there are too few labels', async () => {
    for (let i = 0; i < 3; i++) await putImageWithFeature(emu, `datasets/pets/cat/${i}.png`, { seed: i });

    const r = await run();

    expect(r.path.slice(-4)).toEqual([
      'TrainHead',
      'ReleaseAfterTrainHead',
      'ReleaseAfterTrainHeadAgain',
      'TrainHeadFailed',
    ]);
    expect(r.failure?.error).toBe('InsufficientDataError');
    const cause = JSON.parse(r.failure?.cause ?? '{}');
    expect(cause).toMatchObject({ errorType: 'InsufficientDataError' });
    expect(cause.errorMessage).toMatch(/only one label \('cat'\) found: training needs at least 2 labels/);
  });

  it('retries a task that fails once with Lambda.ServiceException, then carries on', async () => {
    for (const label of ['cat', 'dog']) {
      for (let i = 0; i < 3; i++)
        await putImageWithFeature(emu, `datasets/pets/${label}/${i}.png`, { seed: i });
    }
    let calls = 0;

    const r = await run({
      'train-head': async (input) => {
        calls += 1;
        if (calls === 1) {
          const err = new Error('Lambda is unable to handle the request: Service Unavailable');
          err.name = 'Lambda.ServiceException';
          throw err;
        }
        return handlers['train-head'](input);
      },
    });

    expect(r.failure).toBeUndefined();
    expect(calls).toBe(2);
    const retried = r.events.filter((e) => e.type === 'StateRetried');
    expect(retried.map((e) => e.type === 'StateRetried' && e.state.name)).toEqual(['TrainHead']);
    expect(r.path).toEqual([
      'Start',
      'Settle',
      'CheckReadiness',
      'FeaturesReady',
      'TrainHead',
      'Promote',
      'Finish',
      'TrainAgain',
      'Done',
    ]);
    expect(r.output?.promotion).toMatchObject({ promoted: true });
  });

  it('trains but does not promote when a newer version is already current', async () => {
    for (const label of ['cat', 'dog']) {
      for (let i = 0; i < 3; i++)
        await putImageWithFeature(emu, `datasets/pets/${label}/${i}.png`, { seed: i });
    }
    const newer = '20991231T235959Z-zzzzzzzz';
    await putJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), {
      version: newer,
      promotedAt: '2026-01-01T00:00:00.000Z',
      previous: null,
    });

    const r = await run();

    expect(r.failure).toBeUndefined();
    expect(r.path.slice(-4)).toEqual(['Promote', 'Finish', 'TrainAgain', 'Done']);
    const training = r.output?.training as { version: string };
    expect(r.output?.promotion).toMatchObject({
      promoted: false,
      version: training.version,
      previous: newer,
    });
    const current = await getJson(emu.clients.s3, emu.bucket, currentModelKey('pets'), CurrentPointer);
    expect(current.version).toBe(newer);
  });
});
