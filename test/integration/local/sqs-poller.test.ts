import { ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalEmulator, startLocalEmulator } from '../../../lib/local/emulator.ts';
import { failedMessageIds, startSqsPoller } from '../../../lib/local/sqs-poller.ts';
import { type AwsClients, createAwsClients } from '../../../lib/storage/clients.ts';
import { silentLog } from '../../../lib/util/log.ts';

const REGION = 'us-east-1';

const until = async (what: string, test: () => boolean, timeoutMs = 10_000): Promise<void> => {
  const end = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('the SQS poller (Lambda event source mapping stand-in)', () => {
  let emu: LocalEmulator;
  let clients: AwsClients;
  let n = 0;

  /** A fresh queue with a DLQ after 2 receives and a 1 s visibility timeout. */
  const queues = () => {
    n++;
    const dlq = emu.createQueue(`dlq-${n}`);
    const q = emu.createQueue(`q-${n}`, {
      VisibilityTimeout: '1',
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.queueArn, maxReceiveCount: 2 }),
    });
    return { queueUrl: q.queueUrl, queueArn: q.queueArn, dlqUrl: dlq.queueUrl };
  };
  const send = (queueUrl: string, bodies: string[]) =>
    clients.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.map((b, i) => ({ Id: String(i), MessageBody: b })),
      }),
    );
  const receiveAll = async (queueUrl: string) =>
    (await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 })))
      .Messages ?? [];

  beforeAll(async () => {
    emu = await startLocalEmulator({ port: 0, region: REGION, log: silentLog });
    clients = createAwsClients({
      bucket: 'unused',
      region: REGION,
      endpoint: emu.endpoint,
      awsTimeoutMs: 5000,
    });
  });
  afterAll(async () => {
    clients.sqs.destroy();
    clients.s3.destroy();
    await emu.stop();
  });

  it('invokes the handler with a Lambda SQS event', async () => {
    const { queueUrl, queueArn } = queues();
    const events: SQSEvent[] = [];
    await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: '{"hello":1}',
        MessageAttributes: { kind: { DataType: 'String', StringValue: 'test' } },
      }),
    );

    const poller = await startSqsPoller({
      sqs: clients.sqs,
      queueUrl,
      functionName: 'fn',
      region: REGION,
      waitTimeSeconds: 1,
      handler: async (e) => {
        events.push(e);
      },
      log: silentLog,
    });
    await until('one batch', () => poller.stats.batches === 1);
    await poller.stop();
    const r = events[0]?.Records[0];

    expect(events[0]?.Records).toHaveLength(1);
    expect(r).toMatchObject({
      body: '{"hello":1}',
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: REGION,
      attributes: { ApproximateReceiveCount: '1', SenderId: '000000000000' },
      messageAttributes: {
        kind: { dataType: 'String', stringValue: 'test', stringListValues: [], binaryListValues: [] },
      },
    });
    expect(r?.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r?.receiptHandle).not.toBe('');
    expect(Number(r?.attributes.SentTimestamp)).toBeGreaterThan(Date.now() - 60_000);
    expect(await receiveAll(queueUrl)).toHaveLength(0); // handled messages are deleted
  });

  it('redelivers only the records reported in batchItemFailures, then moves them to the DLQ', async () => {
    const { queueUrl, dlqUrl } = queues();
    await send(queueUrl, ['good-1', 'bad', 'good-2']);
    const seen: { body: string; receiveCount: string }[] = [];

    const poller = await startSqsPoller({
      sqs: clients.sqs,
      queueUrl,
      functionName: 'fn',
      region: REGION,
      waitTimeSeconds: 1,
      handler: async (e): Promise<SQSBatchResponse> => {
        for (const r of e.Records)
          seen.push({ body: r.body, receiveCount: r.attributes.ApproximateReceiveCount });
        return {
          batchItemFailures: e.Records.filter((r) => r.body === 'bad').map((r) => ({
            itemIdentifier: r.messageId,
          })),
        };
      },
      log: silentLog,
    });
    // maxReceiveCount 2: received twice, then SQS redrives it on the third receive.
    const dead = async () => {
      for (let i = 0; i < 100; i++) {
        const m = await receiveAll(dlqUrl);
        if (m.length > 0) return m;
        await new Promise((r) => setTimeout(r, 100));
      }
      return [];
    };
    const inDlq = await dead();
    await poller.stop();

    expect(seen.filter((s) => s.body === 'good-1')).toHaveLength(1);
    expect(seen.filter((s) => s.body === 'good-2')).toHaveLength(1);
    expect(seen.filter((s) => s.body === 'bad').map((s) => s.receiveCount)).toEqual(['1', '2']);
    expect(inDlq.map((m) => m.Body)).toEqual(['bad']);
    expect(poller.stats.failedRecords).toBe(2);
  });

  it('treats a thrown error as a failure of the whole batch', async () => {
    const { queueUrl } = queues();
    await send(queueUrl, ['a', 'b']);
    const attempts: string[][] = [];

    const poller = await startSqsPoller({
      sqs: clients.sqs,
      queueUrl,
      functionName: 'fn',
      region: REGION,
      waitTimeSeconds: 1,
      handler: async (e) => {
        attempts.push(e.Records.map((r) => r.body).sort());
        if (attempts.length === 1) throw new Error('cold start failed');
      },
      log: silentLog,
    });
    await until('the retry', () => attempts.length === 2);
    await poller.stop();

    expect(attempts).toEqual([
      ['a', 'b'],
      ['a', 'b'],
    ]);
    expect(await receiveAll(queueUrl)).toHaveLength(0);
  });

  it('gathers records for the batching window before invoking', async () => {
    const { queueUrl } = queues();
    const batches: number[] = [];
    const poller = await startSqsPoller({
      sqs: clients.sqs,
      queueUrl,
      functionName: 'fn',
      region: REGION,
      waitTimeSeconds: 1,
      batchSize: 20,
      maxBatchingWindowMs: 600,
      handler: async (e) => {
        batches.push(e.Records.length);
      },
      log: silentLog,
    });

    await send(queueUrl, ['1', '2', '3']);
    await new Promise((r) => setTimeout(r, 200));
    await send(queueUrl, ['4', '5']);
    await until('a batch', () => batches.length > 0);
    await poller.stop();

    expect(batches).toEqual([5]);
  });

  it('stops cleanly: waits for the batch in flight, then receives no more', async () => {
    const { queueUrl } = queues();
    await send(queueUrl, ['slow']);
    let finished = false;
    let release: () => void = () => {};
    const poller = await startSqsPoller({
      sqs: clients.sqs,
      queueUrl,
      functionName: 'fn',
      region: REGION,
      waitTimeSeconds: 20,
      handler: async () => {
        await new Promise<void>((r) => {
          release = r;
        });
        finished = true;
      },
      log: silentLog,
    });
    await until('the batch to start', () => poller.busy);

    const stopping = poller.stop();
    setTimeout(() => release(), 100);
    await stopping;

    expect(finished).toBe(true);
    expect(poller.busy).toBe(false);
    await send(queueUrl, ['after stop']);
    await new Promise((r) => setTimeout(r, 200));
    expect((await receiveAll(queueUrl)).map((m) => m.Body)).toEqual(['after stop']);
  });
});

describe("Lambda's partial batch response rules", () => {
  const ids = ['m1', 'm2', 'm3'];

  it('counts no response and an empty list as success', () => {
    expect(failedMessageIds(undefined, ids).failed.size).toBe(0);
    expect(failedMessageIds(null, ids).failed.size).toBe(0);
    expect(failedMessageIds({ batchItemFailures: [] }, ids).failed.size).toBe(0);
    expect(failedMessageIds({}, ids).failed.size).toBe(0);
  });

  it('fails exactly the listed records', () => {
    expect([...failedMessageIds({ batchItemFailures: [{ itemIdentifier: 'm2' }] }, ids).failed]).toEqual([
      'm2',
    ]);
  });

  it('fails the whole batch for an unknown or empty identifier or a non-object response', () => {
    expect(failedMessageIds({ batchItemFailures: [{ itemIdentifier: 'nope' }] }, ids).failed.size).toBe(3);
    expect(failedMessageIds({ batchItemFailures: [{ itemIdentifier: '' }] }, ids).failed.size).toBe(3);
    expect(failedMessageIds({ batchItemFailures: [{}] }, ids).failed.size).toBe(3);
    expect(failedMessageIds('ok', ids).failed.size).toBe(3);
  });
});
