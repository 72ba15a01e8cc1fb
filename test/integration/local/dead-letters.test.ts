import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../../lib/batch/layout.ts';
import { batchStatus } from '../../../lib/batch/start.ts';
import { FeatureErrorRecord } from '../../../lib/features/metadata.ts';
import type { LocalStack } from '../../../lib/local/stack.ts';
import { checkReadiness } from '../../../lib/pipeline/readiness.ts';
import { buildObjectCreatedEvent, createSequencer } from '../../../lib/pipeline/s3-events.ts';
import { type AwsClients, createAwsClients } from '../../../lib/storage/clients.ts';
import { batchKeys } from '../../../lib/storage/keys.ts';
import { getJsonIfExists, putJson, putObject } from '../../../lib/storage/s3.ts';
import { pollUntil } from '../../helpers/poll.ts';
import { startTestStack } from '../../helpers/stack.ts';

describe('the local stack drains its dead-letter queues into records, as deployed', () => {
  let dataDir: string;
  let stack: LocalStack;
  let clients: AwsClients;

  async function sendTo(queueName: string, body: object): Promise<void> {
    const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: queueName }));
    await clients.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify(body) }));
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tlearn-dead-letters-'));
    // An extractor that takes every message and does nothing: what the DLQ gets is up to the test.
    stack = await startTestStack(dataDir, {
      handlers: { 'extract-features': async () => ({ batchItemFailures: [] }) },
    });
    clients = createAwsClients({
      bucket: stack.bucket,
      region: stack.region,
      endpoint: stack.awsEndpoint,
      awsTimeoutMs: 5_000,
    });
  }, 120_000);
  afterAll(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.sfn.destroy();
    await stack?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('records an image whose ingest message reached tlearn-ingest-dlq as ExtractionFailed', async () => {
    // Prepare: an image whose extraction died on every receive (its event is in the DLQ).
    const key = 'datasets/pets/cat/killer.jpg';
    const { etag } = await putObject(clients.s3, stack.bucket, key, 'bytes that crash the extractor');
    expect((await checkReadiness(clients.s3, stack.bucket, 'pets')).pending).toBe(1);
    const event = buildObjectCreatedEvent(
      { bucket: stack.bucket, key, size: 30, etag },
      { region: stack.region, configurationId: 'tlearn-ingest', sequencer: createSequencer() },
    );

    // Act
    await sendTo('tlearn-ingest-dlq', event);

    // Assess
    const record = await pollUntil(
      'the ExtractionFailed record',
      () =>
        getJsonIfExists(
          clients.s3,
          stack.bucket,
          'features/pets/cat/killer.jpg.error.json',
          FeatureErrorRecord,
        ),
      20_000,
    );
    expect(record).toMatchObject({ imageKey: key, sourceEtag: etag, code: 'ExtractionFailed' });
    expect(await checkReadiness(clients.s3, stack.bucket, 'pets')).toMatchObject({ pending: 0, failed: 1 });
  });

  it('finishes a batch whose chunk reached tlearn-batch-dlq, with its images as failed rows', async () => {
    // Prepare: a one-chunk batch that never got a part.
    const id = '20261207T010000Z-dead01';
    const manifest: Manifest = {
      id,
      dataset: 'pets',
      prefix: 'inbox/',
      createdAt: new Date().toISOString(),
      modelVersion: '20261207T000000Z-model1',
      threshold: 'none',
      chunks: [['inbox/a.jpg', 'inbox/b.jpg']],
      total: 2,
    };
    await putJson(clients.s3, stack.bucket, batchKeys('pets', id).manifest, manifest);

    // Act
    await sendTo('tlearn-batch-dlq', { dataset: 'pets', id, part: 0 });

    // Assess
    const status = await pollUntil(
      'the batch to succeed',
      async () => {
        const s = await batchStatus(clients.s3, stack.bucket, 'pets', id);
        return s.status === 'succeeded' ? s : undefined;
      },
      20_000,
    );
    expect(status.counts).toEqual({ total: 2, done: 2, failed: 2 });
  });
});
