/**
 * The training lock's life cycle on the whole local stack (real handlers, the synthesized state
 * machine, the status change events of lib/local/sfn-events.ts): an execution stopped from
 * outside, one that fails where no Finish runs, and one that reaches its retrain limit each end
 * with a model on every image, without any new upload. The state machine is synthesized with
 * maxRetrains 0, so every late feature is trained by a fresh execution (the limit path), and late
 * messages of features the model already has are trained by none.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListExecutionsCommand, type SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import type { Context, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeTrainingDefinition } from '../../infra/definition.ts';
import { createLambdaContext, type LambdaHandler } from '../../lib/local/lambda-context.ts';
import type { LocalStack } from '../../lib/local/stack.ts';
import { readTrainingLock } from '../../lib/pipeline/training-lock.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { listObjects, putObject } from '../../lib/storage/s3.ts';
import { makeLabelledImages } from '../helpers/images.ts';
import { pollUntil } from '../helpers/poll.ts';
import { startTestStack } from '../helpers/stack.ts';

type Hook = (input: { dataset: string }) => Promise<void>;

/** Per dataset, once: runs before check-readiness answers (the real answer is computed first). */
const afterCheck = new Map<string, Hook>();
/** Per dataset, once: runs after train-head wrote its model, before it answers. */
const afterTrain = new Map<string, Hook>();
/** Datasets whose next Finish step (state machine call, not the end event) fails once. */
const failFinish = new Set<string>();

/** The real handler, imported on first use (it reads the stack's environment at import). */
function lazy(name: string): LambdaHandler {
  let loaded: Promise<LambdaHandler> | undefined;
  return async (event: unknown, ctx: Context) => {
    loaded ??= import(`../../functions/${name}/handler.ts`).then(
      (m: { handler: LambdaHandler }) => m.handler,
    );
    return (await loaded)(event, ctx);
  };
}

const realFinish = lazy('finish-training');

/** The real handler, then the dataset's hook of `hooks` (once). */
function hooked(name: string, hooks: Map<string, Hook>): LambdaHandler {
  const real = lazy(name);
  return async (event, ctx) => {
    const result = await real(event, ctx);
    const dataset = (event as { dataset: string }).dataset;
    const hook = hooks.get(dataset);
    if (hook) {
      hooks.delete(dataset);
      await hook({ dataset });
    }
    return result;
  };
}

/** Per dataset, the features-queue batches start-training got (to deliver them again, as SQS may). */
const deliveries = new Map<string, Set<SQSEvent>>();
const realStartTraining = lazy('start-training');
const startTraining: LambdaHandler = async (event, ctx) => {
  const batch = event as SQSEvent;
  for (const r of batch.Records) {
    const { dataset } = JSON.parse(r.body) as { dataset: string };
    deliveries.set(dataset, (deliveries.get(dataset) ?? new Set()).add(batch));
  }
  return realStartTraining(event, ctx);
};

const finishTraining: LambdaHandler = async (event, ctx) => {
  const e = event as { dataset?: string; outcome?: string };
  if (e.outcome === 'trained' && e.dataset !== undefined && failFinish.delete(e.dataset)) {
    throw Object.assign(new Error('We encountered an internal error. Please try again.'), {
      name: 'InternalError',
    });
  }
  return realFinish(event, ctx);
};

describe('the training lock on the local stack: every end of an execution hands it on', () => {
  let dir: string;
  let stack: LocalStack;
  let clients: ReturnType<typeof createAwsClients>;
  let sfn: SFNClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tlearn-lock-e2e-'));
    stack = await startTestStack(dir, {
      settleSeconds: 1,
      handlers: {
        'check-readiness': hooked('check-readiness', afterCheck),
        'train-head': hooked('train-head', afterTrain),
        'finish-training': finishTraining,
        'start-training': startTraining,
      },
      definition: (opts) => synthesizeTrainingDefinition({ ...opts, maxRetrains: 0 }),
    });
    clients = createAwsClients({
      bucket: stack.bucket,
      region: stack.region,
      endpoint: stack.awsEndpoint,
      sfnEndpoint: stack.sfnEndpoint,
      awsTimeoutMs: 10_000,
    });
    sfn = clients.sfn;
  }, 120_000);
  afterAll(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.sfn.destroy();
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  async function upload(dataset: string, perClass: number, seed: number, prefix = ''): Promise<number> {
    const images = await makeLabelledImages({
      labels: ['cat', 'dog'],
      perClass,
      width: 32,
      height: 32,
      seed,
    });
    for (const img of images)
      await putObject(
        clients.s3,
        stack.bucket,
        `datasets/${dataset}/${img.label}/${prefix}${img.file}`,
        img.data,
      );
    return images.length;
  }

  async function featureCount(dataset: string): Promise<number> {
    let n = 0;
    for await (const o of listObjects(clients.s3, stack.bucket, `features/${dataset}/`))
      if (o.key.endsWith('.npy')) n++;
    return n;
  }

  async function executions(dataset: string) {
    const out = await sfn.send(new ListExecutionsCommand({ stateMachineArn: stack.stateMachineArn }));
    return (out.executions ?? []).filter((e) => e.name?.startsWith(`${dataset}-`)).reverse();
  }

  /** The served model's image count, once the lock is idle again. */
  async function settledModel(dataset: string, images: number): Promise<number> {
    return pollUntil(
      `a model of '${dataset}' on ${images} images and its lock idle`,
      async () => {
        const lock = await readTrainingLock(clients.s3, stack.bucket, dataset);
        if (lock?.lock.state !== 'idle') return undefined;
        const res = await fetch(`${stack.apiUrl}/datasets/${dataset}/model`);
        if (res.status !== 200) return undefined;
        const body = (await res.json()) as { report: { counts: { total: number } } };
        return body.report.counts.total === images ? images : undefined;
      },
      90_000,
    );
  }

  it('trains every image after an execution was stopped once the last waiting image had its feature, with no new upload', async () => {
    let entered: () => void = () => {};
    const inCheck = new Promise<void>((r) => {
      entered = r;
    });
    let release: () => void = () => {};
    afterCheck.set('halted', async () => {
      entered();
      await new Promise<void>((r) => {
        release = r;
      });
    });
    const images = await upload('halted', 3, 21);
    await inCheck;
    await pollUntil(
      'every feature of halted',
      async () => ((await featureCount('halted')) === images ? true : undefined),
      60_000,
    );
    const [stopped] = await executions('halted');

    await sfn.send(
      new StopExecutionCommand({
        executionArn: stopped?.executionArn,
        cause: 'aws stepfunctions stop-execution',
      }),
    );
    release();

    expect(await settledModel('halted', images)).toBe(images);
    const all = await executions('halted');
    expect(all[0]).toMatchObject({ name: stopped?.name, status: 'ABORTED' });
    expect(all.at(-1)?.status).toBe('SUCCEEDED');
  }, 150_000);

  it('hands the lock on when an execution fails where no Finish runs (Finish itself failed)', async () => {
    failFinish.add('unfinished');

    const images = await upload('unfinished', 2, 22);

    expect(await settledModel('unfinished', images)).toBe(images);
    const all = await pollUntil(
      'a failed and a succeeded execution',
      async () => {
        const e = await executions('unfinished');
        return e.some((x) => x.status === 'SUCCEEDED') ? e : undefined;
      },
      30_000,
    );
    expect(all.map((e) => e.status)).toEqual(['FAILED', 'SUCCEEDED']);
  }, 150_000);

  it('trains images that arrived during the training of an execution at its retrain limit in a fresh execution', async () => {
    afterTrain.set('late', async () => {
      const before = (await readTrainingLock(clients.s3, stack.bucket, 'late'))?.lock.generation ?? 0;
      await upload('late', 1, 23, 'late-');
      // Their feature messages mark the running execution's lock, after train-head listed the dataset.
      await pollUntil(
        'the late feature to mark the lock',
        async () => {
          const g = (await readTrainingLock(clients.s3, stack.bucket, 'late'))?.lock.generation ?? 0;
          return g > before ? g : undefined;
        },
        60_000,
      );
    });

    const images = (await upload('late', 2, 24)) + 2;

    expect(await settledModel('late', images)).toBe(images);
    const all = await executions('late');
    expect(all.map((e) => e.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
  }, 150_000);

  it('starts no second execution when the feature messages of images the model has are delivered again after train-head listed them', async () => {
    afterTrain.set('echo', async () => {
      const lockOf = async () => (await readTrainingLock(clients.s3, stack.bucket, 'echo'))?.lock;
      const before = (await lockOf())?.generation ?? 0;
      // SQS's at-least-once delivery (or messages that were late): every batch once more.
      for (const batch of deliveries.get('echo') ?? [])
        await realStartTraining(batch, createLambdaContext('start-training', { region: stack.region }));
      expect((await lockOf())?.generation).toBeGreaterThan(before);
    });

    const images = await upload('echo', 2, 25);

    expect(await settledModel('echo', images)).toBe(images);
    const all = await executions('echo');
    expect(all.map((e) => e.status)).toEqual(['SUCCEEDED']);
    const lock = (await readTrainingLock(clients.s3, stack.bucket, 'echo'))?.lock;
    expect(lock?.trainedGeneration).toBe(lock?.generation);
  }, 150_000);
});
