import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FeatureErrorRecord } from '../../../lib/features/metadata.ts';
import type { LocalStack } from '../../../lib/local/stack.ts';
import { type AwsClients, createAwsClients } from '../../../lib/storage/clients.ts';
import { putLargeObject } from '../../../lib/storage/multipart.ts';
import { getJsonIfExists } from '../../../lib/storage/s3.ts';
import { pollUntil } from '../../helpers/poll.ts';
import { startTestStack } from '../../helpers/stack.ts';

describe('the local stack with an upload far over the image limit', () => {
  let dataDir: string;
  let stack: LocalStack;
  let clients: AwsClients;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tlearn-size-gates-'));
    stack = await startTestStack(dataDir);
    clients = createAwsClients({
      bucket: stack.bucket,
      region: stack.region,
      endpoint: stack.awsEndpoint,
      awsTimeoutMs: 10_000,
    });
  }, 120_000);
  afterAll(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.sfn.destroy();
    await stack?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('records a 120 MB huge.jpg sent like `aws s3 cp` (multipart) as ImageTooLarge', async () => {
    // Prepare: 120 MB of zeros named like a photo.
    const key = 'datasets/pets/cat/huge.jpg';

    // Act
    const { etag } = await putLargeObject(clients.s3, stack.bucket, key, Buffer.alloc(120 * 1024 * 1024));

    // Assess
    const record = await pollUntil(
      'the error record of huge.jpg',
      () =>
        getJsonIfExists(
          clients.s3,
          stack.bucket,
          'features/pets/cat/huge.jpg.error.json',
          FeatureErrorRecord,
        ),
      30_000,
    );
    expect(record).toMatchObject({ imageKey: key, sourceEtag: etag, code: 'ImageTooLarge' });
  }, 60_000);
});
