/**
 * Which prefixes a batch may read (lib/batch/start.ts): the dataset's own images, its uploaded
 * batch inputs and the inbox (images of no dataset, `inbox/` unless the stack says otherwise);
 * never another dataset's images or the bucket's own prefixes. Against the S3 + SQS emulator.
 */
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadApiConfig } from '../../../lib/api/config.ts';
import { readManifest, startBatch } from '../../../lib/batch/start.ts';
import { ENV } from '../../../lib/config.ts';
import { ConfigError } from '../../../lib/errors.ts';
import { putObject } from '../../../lib/storage/s3.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';

const DATASET = 'pets';
const VERSION = '20261206T220000Z-abc123';

describe('batch prefixes', () => {
  let emu: Emulator;
  let queueUrl = '';

  beforeAll(async () => {
    emu = await startEmulator();
    queueUrl = emu.createQueue('batch').queueUrl;
    const png = Buffer.from('not decoded when listing');
    for (const key of [
      'inbox/2026-12-07/a.png',
      'inbox/2026-12-07/b.jpg',
      'inbox/2026-12-07/notes.txt',
      'incoming/cam-1/c.png',
      'datasets/pets/cat/1.png',
      'datasets/pets-2/cat/1.png',
      'datasets/other/dog/1.png',
      'features/pets/cat/1.png.npy',
      'models/pets/x.png',
      'locks/pets/x.png',
      'batches/other/20261206T220000Z-abcdef12/input/x.png',
    ])
      await putObject(emu.clients.s3, emu.bucket, key, png);
  });
  afterAll(async () => {
    await emu.stop();
  });

  const deps = (inboxPrefix?: string) => ({
    s3: emu.clients.s3,
    bucket: emu.bucket,
    sqs: emu.clients.sqs,
    queueUrl,
    ...(inboxPrefix !== undefined ? { inboxPrefix } : {}),
  });

  it('scores the images under the inbox, whatever dataset the model belongs to', async () => {
    const { id } = await startBatch(deps(), DATASET, { prefix: 'inbox/2026-12-07/' }, VERSION);

    const manifest = await readManifest(emu.clients.s3, emu.bucket, DATASET, id);
    expect(manifest.chunks.flat()).toEqual(['inbox/2026-12-07/a.png', 'inbox/2026-12-07/b.jpg']);
    const out = await emu.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl }));
    expect(JSON.parse(out.Messages?.[0]?.Body ?? '{}')).toEqual({ dataset: DATASET, id, part: 0 });
  });

  it("refuses another dataset's images, a name prefix of them and the bucket's own prefixes", async () => {
    for (const prefix of [
      'datasets/other/',
      'datasets/pets',
      'datasets/',
      'features/pets/',
      'models/',
      'locks/',
      'batches/other/20261206T220000Z-abcdef12/input/',
      'inbox',
      'inboxes/',
      'incoming/',
    ]) {
      await expect(startBatch(deps(), DATASET, { prefix }, VERSION), prefix).rejects.toMatchObject({
        code: 'InvalidPrefix',
        status: 400,
      });
    }
    await expect(startBatch(deps(), DATASET, { prefix: 'datasets/pets/' }, VERSION)).resolves.toMatchObject({
      status: 'running',
    });
  });

  it('reads the inbox the stack configures instead of inbox/', async () => {
    const { id } = await startBatch(deps('incoming/'), DATASET, { prefix: 'incoming/cam-1/' }, VERSION);

    expect((await readManifest(emu.clients.s3, emu.bucket, DATASET, id)).total).toBe(1);
    await expect(
      startBatch(deps('incoming/'), DATASET, { prefix: 'inbox/2026-12-07/' }, VERSION),
    ).rejects.toMatchObject({ code: 'InvalidPrefix' });
  });

  it('takes the API’s inbox from TLEARN_INBOX_PREFIX, inbox/ by default, and fails at start on an unsafe one', () => {
    const env = {
      [ENV.BUCKET]: 'b',
      [ENV.REGION]: 'eu-west-1',
      [ENV.STATE_MACHINE_ARN]: 'arn:aws:states:eu-west-1:1:stateMachine:s',
    };
    expect(loadApiConfig(env).inboxPrefix).toBe('inbox/');
    expect(loadApiConfig({ ...env, [ENV.INBOX_PREFIX]: 'incoming/cam/' }).inboxPrefix).toBe('incoming/cam/');
    for (const bad of ['models/', 'datasets/pets/', 'inbox', '../x/'])
      expect(() => loadApiConfig({ ...env, [ENV.INBOX_PREFIX]: bad }), bad).toThrow(ConfigError);
    expect(() => loadApiConfig({ ...env, [ENV.INBOX_PREFIX]: 'features/' })).toThrow(
      /TLEARN_INBOX_PREFIX is invalid: must not overlap the bucket's own prefix 'features\/'/,
    );
  });
});
