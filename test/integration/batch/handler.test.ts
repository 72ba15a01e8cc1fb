/**
 * The batch-predict handler (functions/batch-predict/handler.ts) against the S3 + SQS emulator and
 * the real random-weight VGG16 at 32x32: its SQS partial batch response. A scored chunk succeeds, a
 * malformed message is dropped rather than retried, a chunk that throws is reported for a retry,
 * a batch where every record fails is still a response, and overlapping invocations (the local
 * stack's pollers share one process) each report their own records.
 */
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { newBatchId, startBatch } from '../../../lib/batch/start.ts';
import { batchInputPrefix, batchKeys } from '../../../lib/storage/keys.ts';
import { headObject, putObject } from '../../../lib/storage/s3.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { makeImage } from '../../helpers/images.ts';
import { makeHead, promote, seedModel } from '../api/support.ts';
import { fakeContext, setHandlerEnv, sqsEventWithBodies, TEST_SPEC } from '../pipeline/support.ts';

type Handler = (event: SQSEvent, ctx: ReturnType<typeof fakeContext>) => Promise<SQSBatchResponse>;

const DATASET = 'pets';
const VERSION = '20261206T220000Z-abc123';

describe('the batch-predict handler', () => {
  let emu: Emulator;
  let queueUrl = '';
  let restoreEnv: () => void;
  let handler: Handler;
  const ctx = fakeContext('batch-predict');

  beforeAll(async () => {
    emu = await startEmulator();
    queueUrl = emu.createQueue('batch').queueUrl;
    restoreEnv = setHandlerEnv(emu);
    vi.resetModules();
    handler = (await import('../../../functions/batch-predict/handler.ts')).handler as unknown as Handler;
  });
  afterAll(async () => {
    restoreEnv?.();
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
  });

  /** A one-image batch of a promoted model of the handler's spec; returns its id and chunk message body. */
  async function startOneChunk(): Promise<{ id: string; body: string }> {
    const { s3, sqs } = emu.clients;
    await seedModel(s3, emu.bucket, DATASET, VERSION, makeHead(['cat', 'dog'], 512, TEST_SPEC, 3, 0.05));
    await promote(s3, emu.bucket, DATASET, VERSION);
    const id = newBatchId();
    const input = batchInputPrefix(DATASET, id);
    await putObject(s3, emu.bucket, `${input}img-0.png`, await makeImage('png', { seed: 1 }));
    await startBatch(
      { s3, bucket: emu.bucket, sqs, queueUrl, chunkSize: 2 },
      DATASET,
      { prefix: input },
      VERSION,
    );
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    const body = out.Messages?.[0]?.Body;
    if (out.Messages?.length !== 1 || body === undefined) throw new Error('expected one chunk message');
    return { id, body };
  }

  /** A well-formed chunk of a batch that does not exist: runChunk throws on its manifest. */
  const missingChunk = (part: number) =>
    JSON.stringify({ dataset: DATASET, id: '20261206T230000Z-ab12cd34', part });

  it('scores a chunk, drops a malformed message and reports only the chunk that threw', async () => {
    const { id, body } = await startOneChunk();

    const res = await handler(
      sqsEventWithBodies('batch-chunk-in-sqs.json', [body, 'not json', missingChunk(0)]),
      ctx,
    );

    expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'raw-2' }] });
    expect(await headObject(emu.clients.s3, emu.bucket, batchKeys(DATASET, id).part(0))).toBeDefined();
  });

  it('reports every record when every chunk throws, instead of failing the invocation', async () => {
    const res = await handler(
      sqsEventWithBodies('batch-chunk-in-sqs.json', [missingChunk(0), missingChunk(1)]),
      ctx,
    );

    expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'raw-0' }, { itemIdentifier: 'raw-1' }] });
  });

  it('keeps overlapping invocations apart: each reports its own failed records', async () => {
    const named = (event: SQSEvent, prefix: string): SQSEvent => ({
      Records: event.Records.map((r, i) => ({ ...r, messageId: `${prefix}-${i}` })),
    });
    const a = named(sqsEventWithBodies('batch-chunk-in-sqs.json', [missingChunk(0)]), 'a');
    const b = named(sqsEventWithBodies('batch-chunk-in-sqs.json', ['not json', missingChunk(1)]), 'b');

    const [resA, resB] = await Promise.all([handler(a, ctx), handler(b, ctx)]);

    expect(resA).toEqual({ batchItemFailures: [{ itemIdentifier: 'a-0' }] });
    expect(resB).toEqual({ batchItemFailures: [{ itemIdentifier: 'b-1' }] });
  });
});
