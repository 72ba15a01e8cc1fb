import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalEmulator, startLocalEmulator } from '../../../lib/local/emulator.ts';
import {
  buildObjectCreatedEvent,
  createSequencer,
  encodeS3EventKey,
  notifyUnprocessedImages,
  type S3Notifier,
  startS3Notifications,
} from '../../../lib/local/s3-notifications.ts';
import { decodeS3EventKey, parseS3EventBody } from '../../../lib/pipeline/s3-events.ts';
import { type AwsClients, createAwsClients } from '../../../lib/storage/clients.ts';
import { silentLog } from '../../../lib/util/log.ts';

const BUCKET = 'tlearn-local';
const REGION = 'eu-west-1';

describe('S3 event key encoding', () => {
  it('encodes keys the way S3 does in notifications', () => {
    // Examples from the S3 documentation and from events S3 delivered.
    expect(encodeS3EventKey('red flower.jpg')).toBe('red+flower.jpg');
    expect(encodeS3EventKey('something/dt=2018-05-04/_SUCCESS')).toBe('something/dt%3D2018-05-04/_SUCCESS');
    expect(encodeS3EventKey('test/10:47:07.log')).toBe('test/10%3A47%3A07.log');
    expect(encodeS3EventKey('c++ (1) copy.png')).toBe('c%2B%2B+%281%29+copy.png');
    expect(encodeS3EventKey('datasets/pets/chat/é.png')).toBe('datasets/pets/chat/%C3%A9.png');
    expect(encodeS3EventKey('a-b_c.d*e~f')).toBe('a-b_c.d*e%7Ef');
  });

  it('decodes back to the key for spaces, plus signs, percent signs and unicode', () => {
    const keys = [
      'datasets/pets/cat/my cat+1.jpg',
      'datasets/pets/cat/100% 😺.png',
      'datasets/pets/猫/写真 (2).jpeg',
      "datasets/pets/cat/it's a+b=c&d?.png",
    ];

    for (const key of keys) expect(decodeS3EventKey(encodeS3EventKey(key))).toBe(key);
  });

  it('builds an event record with the fields S3 sends', () => {
    const body = buildObjectCreatedEvent(
      { bucket: 'b', key: 'datasets/d/a/x y.png', size: 12, etag: 'abc' },
      {
        region: REGION,
        configurationId: 'cfg',
        sequencer: () => '0055AED6DCD90281E5',
        now: () => new Date(0),
      },
    ) as { Records: Record<string, unknown>[] };
    const r = body.Records[0];

    expect(body.Records).toHaveLength(1);
    expect(r).toMatchObject({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: REGION,
      eventTime: '1970-01-01T00:00:00.000Z',
      eventName: 'ObjectCreated:Put',
      s3: {
        s3SchemaVersion: '1.0',
        configurationId: 'cfg',
        bucket: { name: 'b', arn: 'arn:aws:s3:::b' },
        object: { key: 'datasets/d/a/x+y.png', size: 12, eTag: 'abc', sequencer: '0055AED6DCD90281E5' },
      },
    });
  });

  it('makes increasing sequencers of a fixed width', () => {
    const next = createSequencer();
    const seq = Array.from({ length: 5 }, next);

    expect([...seq].sort()).toEqual(seq);
    expect(new Set(seq).size).toBe(5);
    expect(seq.every((s) => /^[0-9A-F]{18}$/.test(s))).toBe(true);
  });
});

describe('S3 notifications through the emulator', () => {
  let emu: LocalEmulator;
  let clients: AwsClients;
  let queueUrl: string;
  let notifier: S3Notifier;

  const drain = async () => {
    await notifier.idle();
    const bodies: string[] = [];
    for (;;) {
      const out = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }),
      );
      if (!out.Messages?.length) return bodies;
      bodies.push(...out.Messages.map((m) => m.Body ?? ''));
    }
  };

  beforeAll(async () => {
    emu = await startLocalEmulator({ port: 0, region: REGION, buckets: [BUCKET], log: silentLog });
    clients = createAwsClients({
      bucket: BUCKET,
      region: REGION,
      endpoint: emu.endpoint,
      awsTimeoutMs: 5000,
    });
    queueUrl = emu.createQueue('ingest').queueUrl;
    notifier = startS3Notifications({
      onObjectEvent: emu.onObjectEvent,
      sqs: clients.sqs,
      queueUrl,
      bucket: BUCKET,
      region: REGION,
      log: silentLog,
    });
  });
  afterAll(async () => {
    await notifier.stop();
    clients.s3.destroy();
    clients.sqs.destroy();
    await emu.stop();
  });

  it('sends the s3:TestEvent first, then one ObjectCreated per upload under datasets/ only', async () => {
    const key = 'datasets/pets/cat/my cat+1 (é).jpg';
    const put = await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'img' }));
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'features/pets/cat/x.npy', Body: 'f' }),
    );

    const bodies = await drain();
    const parsed = bodies.map(parseS3EventBody);

    expect(parsed[0]).toEqual({ kind: 'test-event' });
    expect(parsed.slice(1)).toEqual([
      {
        kind: 'objects',
        objects: [
          {
            bucket: BUCKET,
            key,
            etag: put.ETag?.replace(/"/g, ''),
            size: 3,
            eventName: 'ObjectCreated:Put',
            eventTime: expect.any(Date),
          },
        ],
        removed: [],
        ignored: [],
      },
    ]);
    expect(bodies[1]).toContain('datasets/pets/cat/my+cat%2B1+%28%C3%A9%29.jpg');
  });

  it('sends ObjectRemoved:Delete for a deleted image under datasets/ only, like S3', async () => {
    await drain();
    const key = 'datasets/pets/dog/gone 1.jpg';
    await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'img' }));
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'features/pets/dog/x.npy', Body: 'f' }),
    );
    await drain();
    await clients.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    await clients.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'features/pets/dog/x.npy' }));

    const parsed = (await drain()).map(parseS3EventBody);

    expect(parsed).toEqual([
      {
        kind: 'objects',
        objects: [],
        removed: [{ bucket: BUCKET, key, eventName: 'ObjectRemoved:Delete' }],
        ignored: [],
      },
    ]);
  });

  it('catches up on images without features at startup, and only those', async () => {
    await drain();
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'datasets/cat-dog/cat/1.png', Body: 'a' }),
    );
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'datasets/cat-dog/cat/2.png', Body: 'b' }),
    );
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'datasets/cat-dog/cat/3.png', Body: 'c' }),
    );
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'features/cat-dog/cat/1.png.npy', Body: 'f' }),
    );
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'features/cat-dog/cat/2.png.error.json', Body: '{}' }),
    );
    await drain();

    const count = await notifyUnprocessedImages({
      s3: clients.s3,
      bucket: BUCKET,
      notifier,
      prefix: 'datasets/cat-dog/',
    });
    const keys = (await drain()).flatMap((b) => {
      const p = parseS3EventBody(b);
      return p.kind === 'objects' ? p.objects.map((o) => o.key) : [];
    });

    expect(count).toBe(1);
    expect(keys).toEqual(['datasets/cat-dog/cat/3.png']);
  });
});
