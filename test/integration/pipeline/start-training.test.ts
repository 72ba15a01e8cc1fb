import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../../lib/config.ts';
import type { QueueMessage } from '../../../lib/pipeline/ingest.ts';
import {
  executionName,
  type StartExecutionClient,
  startTrainings,
} from '../../../lib/pipeline/start-training.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeContext, loadEvent, setHandlerEnv } from './support.ts';

const ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:train-test';
const NOW = new Date('2026-01-01T00:07:30Z');

function readyBody(dataset: string, n: number): string {
  const event = loadEvent<SQSEvent>('feature-ready-in-sqs.json');
  const msg = JSON.parse(event.Records[0]?.body ?? '{}');
  return JSON.stringify({
    ...msg,
    dataset,
    imageKey: `datasets/${dataset}/cat/${n}.png`,
    featureKey: `features/${dataset}/cat/${n}.png.npy`,
  });
}

/** A fake Step Functions client that records calls and answers per dataset. */
function fakeSfn(behaviour: (input: { dataset: string }) => 'ok' | 'exists' | 'throttled') {
  const calls: { name: string; input: Record<string, unknown>; arn: string }[] = [];
  const client: StartExecutionClient = {
    async send(cmd: StartExecutionCommand) {
      const input = JSON.parse(cmd.input.input ?? '{}');
      calls.push({ name: cmd.input.name ?? '', input, arn: cmd.input.stateMachineArn ?? '' });
      const b = behaviour(input);
      if (b === 'exists') throw Object.assign(new Error('exists'), { name: 'ExecutionAlreadyExists' });
      if (b === 'throttled') throw Object.assign(new Error('slow down'), { name: 'ThrottlingException' });
      return { executionArn: `${ARN.replace(':stateMachine:', ':execution:')}:${cmd.input.name}` };
    },
  };
  return { client, calls };
}

describe('startTrainings (fake Step Functions client)', () => {
  it('starts one execution per dataset named {dataset}-{window} with an auto trigger', async () => {
    const sfn = fakeSfn(() => 'ok');
    const messages: QueueMessage[] = [
      { id: 'a1', body: readyBody('pets', 1), receiveCount: 1 },
      { id: 'a2', body: readyBody('pets', 2), receiveCount: 1 },
      { id: 'b1', body: readyBody('birds', 1), receiveCount: 1 },
    ];

    const r = await startTrainings(messages, {
      sfn: sfn.client,
      stateMachineArn: ARN,
      trainWindowSeconds: 300,
      log: silentLog,
      now: () => NOW,
    });

    const window = Math.floor(NOW.getTime() / 1000 / 300);
    expect(sfn.calls.map((c) => c.name).sort()).toEqual([`birds-${window}`, `pets-${window}`]);
    expect(sfn.calls.find((c) => c.name.startsWith('pets'))).toEqual({
      name: `pets-${window}`,
      arn: ARN,
      input: { dataset: 'pets', trigger: 'auto', requestedAt: NOW.toISOString() },
    });
    expect(r.datasets.map((d) => [d.dataset, d.status, d.messageIds])).toEqual([
      ['pets', 'started', ['a1', 'a2']],
      ['birds', 'started', ['b1']],
    ]);
    expect(r.failedMessageIds).toEqual([]);
  });

  it('treats ExecutionAlreadyExists as success (debounced within the window)', async () => {
    const sfn = fakeSfn(() => 'exists');

    const r = await startTrainings([{ id: 'a1', body: readyBody('pets', 1), receiveCount: 1 }], {
      sfn: sfn.client,
      stateMachineArn: ARN,
      trainWindowSeconds: 300,
      log: silentLog,
      now: () => NOW,
    });

    expect(r.datasets[0]?.status).toBe('exists');
    expect(r.failedMessageIds).toEqual([]);
  });

  it("fails only the failing dataset's messages and drops invalid ones", async () => {
    const sfn = fakeSfn(({ dataset }) => (dataset === 'birds' ? 'throttled' : 'ok'));
    const failed = JSON.parse(readyBody('pets', 3));
    const messages: QueueMessage[] = [
      { id: 'a1', body: readyBody('pets', 1), receiveCount: 1 },
      { id: 'b1', body: readyBody('birds', 1), receiveCount: 1 },
      { id: 'b2', body: readyBody('birds', 2), receiveCount: 1 },
      {
        id: 'a2',
        body: JSON.stringify({ ...failed, type: 'feature.failed', reason: 'CorruptImage: x' }),
        receiveCount: 1,
      },
      { id: 'junk', body: 'not json', receiveCount: 1 },
      { id: 'wrong-type', body: JSON.stringify({ ...failed, type: 'feature.lost' }), receiveCount: 1 },
      { id: 'bad-dataset', body: readyBody('Bad_Name', 1), receiveCount: 1 },
    ];

    const r = await startTrainings(messages, {
      sfn: sfn.client,
      stateMachineArn: ARN,
      trainWindowSeconds: 300,
      log: silentLog,
      now: () => NOW,
    });

    expect(r.failedMessageIds.sort()).toEqual(['b1', 'b2']);
    expect(r.invalid.map((i) => i.id).sort()).toEqual(['bad-dataset', 'junk', 'wrong-type']);
    expect(r.datasets.find((d) => d.dataset === 'pets')).toMatchObject({
      status: 'started',
      messageIds: ['a1', 'a2'],
    });
    expect(sfn.calls).toHaveLength(2);
  });

  it('names executions by time window', () => {
    expect(executionName('pets', new Date('2026-01-01T00:04:59Z'), 300)).toBe(
      executionName('pets', new Date('2026-01-01T00:00:00Z'), 300),
    );
    expect(executionName('pets', new Date('2026-01-01T00:05:00Z'), 300)).not.toBe(
      executionName('pets', new Date('2026-01-01T00:04:59Z'), 300),
    );
  });
});

describe('start-training handler (SDK against a loopback Step Functions stand-in)', () => {
  let emu: Emulator;
  let server: Server;
  let restoreEnv: () => void;
  const names = new Set<string>();
  const requests: { target: string; body: Record<string, unknown> }[] = [];

  beforeAll(async () => {
    emu = await startEmulator();
    // Speaks the awsJson1_0 protocol of StartExecution, refusing a name it has seen (like SFN).
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => {
        raw += c;
      });
      req.on('end', () => {
        const body = JSON.parse(raw);
        requests.push({ target: String(req.headers['x-amz-target']), body });
        res.setHeader('content-type', 'application/x-amz-json-1.0');
        if (names.has(body.name)) {
          res.statusCode = 400;
          res.end(
            JSON.stringify({
              __type: 'ExecutionAlreadyExists',
              message: `Execution already exists: '${body.name}'`,
            }),
          );
          return;
        }
        names.add(body.name);
        res.end(
          JSON.stringify({
            executionArn: `arn:aws:states:us-east-1:123456789012:execution:t:${body.name}`,
            startDate: 1767225600,
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    restoreEnv = setHandlerEnv(emu, {
      [ENV.SFN_ENDPOINT]: `http://127.0.0.1:${port}`,
      [ENV.STATE_MACHINE_ARN]: ARN,
      [ENV.TRAIN_WINDOW_SECONDS]: '3600',
    });
    vi.resetModules();
  });
  afterAll(async () => {
    restoreEnv();
    await new Promise((resolve) => server.close(resolve));
    await emu.stop();
  });

  it('starts once per window and answers a second burst with no failures', async () => {
    const { handler } = (await import('../../../functions/start-training/handler.ts')) as unknown as {
      handler: (e: SQSEvent, c: unknown) => Promise<SQSBatchResponse>;
    };
    const event = loadEvent<SQSEvent>('feature-ready-in-sqs.json');

    const first = await handler(event, fakeContext('start-training'));
    const second = await handler(
      loadEvent<SQSEvent>('feature-ready-in-sqs.json'),
      fakeContext('start-training'),
    );

    expect(first.batchItemFailures).toEqual([]);
    expect(second.batchItemFailures).toEqual([]);
    expect(requests).toHaveLength(2);
    expect(requests[0]?.target).toBe('AWSStepFunctions.StartExecution');
    expect(requests[0]?.body).toMatchObject({
      stateMachineArn: ARN,
      name: expect.stringMatching(/^pets-\d+$/),
    });
    expect(requests[1]?.body.name).toBe(requests[0]?.body.name);
    expect(JSON.parse(String(requests[0]?.body.input))).toMatchObject({ dataset: 'pets', trigger: 'auto' });
  });
});
