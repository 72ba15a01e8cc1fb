import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeKeySegment } from '../../../lib/local/disk-mirror.ts';
import { type LocalEmulator, type ObjectEvent, startLocalEmulator } from '../../../lib/local/emulator.ts';
import { startS3Notifications } from '../../../lib/local/s3-notifications.ts';
import { type AwsClients, createAwsClients } from '../../../lib/storage/clients.ts';
import { getObject, listAllObjects } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';

const BUCKET = 'tlearn-local';
const REGION = 'us-east-1';

describe('the local S3 emulator with a disk mirror', () => {
  let dataDir: string;
  let emu: LocalEmulator | undefined;
  let clients: AwsClients | undefined;

  const start = async () => {
    emu = await startLocalEmulator({ port: 0, region: REGION, buckets: [BUCKET], dataDir, log: silentLog });
    clients = createAwsClients({
      bucket: BUCKET,
      region: REGION,
      endpoint: emu.endpoint,
      awsTimeoutMs: 5000,
    });
    return { emu, s3: clients.s3, sqs: clients.sqs };
  };
  const stop = async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.sfn.destroy();
    await emu?.stop();
    emu = undefined;
  };

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tlearn-emu-'));
  });
  afterEach(async () => {
    await stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('listens on loopback only', async () => {
    const { emu } = await start();

    expect(emu.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('reports writes and deletes with the stored object at hand', async () => {
    const { emu, s3 } = await start();
    const events: ObjectEvent[] = [];
    emu.onObjectEvent((e) => events.push(e));

    const put = await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'datasets/d/cat/1.png',
        Body: 'abc',
        ContentType: 'image/png',
      }),
    );
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'datasets/d/cat/1.png' }));

    expect(events.map((e) => e.type)).toEqual(['created', 'removed']);
    const created = events[0];
    expect(created?.type === 'created' && created.object.etag).toBe(put.ETag?.replace(/"/g, ''));
    expect(created?.type === 'created' && Buffer.from(created.object.body).toString()).toBe('abc');
    expect(created?.type === 'created' && created.object.size).toBe(3);
  });

  it('mirrors objects to {dataDir}/s3/{bucket}/{key} with a sidecar, and removes deleted ones', async () => {
    const { emu, s3 } = await start();

    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'datasets/pets/cat/my cat.png',
        Body: 'pixels',
        ContentType: 'image/png',
        Metadata: { label: 'cat' },
      }),
    );
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'models/pets/current.json', Body: '{}' }));
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'models/pets/current.json' }));
    await emu.flush();
    const dir = join(dataDir, 's3', BUCKET);
    const data = await readFile(join(dir, 'datasets/pets/cat/my cat.png'), 'utf8');
    const meta = JSON.parse(await readFile(join(dir, 'datasets/pets/cat/my cat.png.meta.json'), 'utf8'));

    expect(data).toBe('pixels');
    expect(meta).toMatchObject({
      key: 'datasets/pets/cat/my cat.png',
      contentType: 'image/png',
      metadata: { label: 'cat' },
      size: 6,
    });
    await expect(stat(join(dir, 'models/pets/current.json'))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(dir, 'models'))).rejects.toThrow(/ENOENT/); // empty folders pruned
  });

  it('restores every object after a restart: same bytes, ETag, metadata; no ingest events', async () => {
    const first = await start();
    const tricky = [
      'datasets/pets/cat/my cat+1 (é).png',
      'datasets/pets/日本/猫.png',
      'datasets/pets/dog/../odd/./x.png',
      'datasets/pets/dog/trailing.meta.json',
      'datasets/pets/dog/100%.png',
    ];
    const etags = new Map<string, string>();
    for (const [i, key] of tricky.entries()) {
      const out = await first.s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: key,
          Body: `body-${i}`,
          ContentType: 'image/png',
          Metadata: { n: String(i) },
        }),
      );
      etags.set(key, out.ETag?.replace(/"/g, '') ?? '');
    }
    const mpu = await first.s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'datasets/pets/big.cat.png' }),
    );
    const parts = [];
    // S3 (and fauxqs) want every part but the last to be at least 5 MiB.
    for (const [n, body] of [
      [1, Buffer.alloc(5 * 1024 * 1024, 7)],
      [2, Buffer.from('tail')],
    ] as const) {
      const p = await first.s3.send(
        new UploadPartCommand({
          Bucket: BUCKET,
          Key: 'datasets/pets/big.cat.png',
          UploadId: mpu.UploadId,
          PartNumber: n,
          Body: body,
        }),
      );
      parts.push({ ETag: p.ETag, PartNumber: n });
    }
    const done = await first.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: 'datasets/pets/big.cat.png',
        UploadId: mpu.UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    etags.set('datasets/pets/big.cat.png', done.ETag?.replace(/"/g, '') ?? '');
    await stop();

    const second = await start();
    const { queueUrl } = second.emu.createQueue('ingest');
    const notifier = startS3Notifications({
      onObjectEvent: second.emu.onObjectEvent,
      sqs: second.sqs,
      queueUrl,
      bucket: BUCKET,
      region: REGION,
      log: silentLog,
    });
    await notifier.idle();
    const listed = await listAllObjects(second.s3, BUCKET, '');
    const received = await second.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }),
    );
    await notifier.stop();

    expect(second.emu.restoredObjects).toBe(tricky.length + 1);
    expect(new Map(listed.map((o) => [o.key, o.etag]))).toEqual(etags);
    expect(etags.get('datasets/pets/big.cat.png')).toMatch(/-2$/);
    for (const [i, key] of tricky.entries()) {
      const obj = await getObject(second.s3, BUCKET, key);
      expect(Buffer.from(obj.body).toString()).toBe(`body-${i}`);
      expect(obj.metadata).toEqual({ n: String(i) });
      expect(obj.contentType).toBe('image/png');
    }
    // Only S3's test event: restored objects raise no ObjectCreated notifications.
    expect(received.Messages?.map((m) => JSON.parse(m.Body ?? '{}').Event)).toEqual(['s3:TestEvent']);
  });

  it('skips an object whose data file does not match its sidecar (an interrupted write)', async () => {
    const first = await start();
    await first.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'datasets/d/a/ok.png', Body: 'ok' }));
    await first.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'datasets/d/a/torn.png', Body: 'original' }),
    );
    await stop();
    await import('node:fs/promises').then((fs) =>
      fs.writeFile(join(dataDir, 's3', BUCKET, 'datasets/d/a/torn.png'), 'half-new'),
    );

    const second = await start();
    const keys = (await listAllObjects(second.s3, BUCKET, '')).map((o) => o.key);

    expect(keys).toEqual(['datasets/d/a/ok.png']);
  });

  it('still answers reads while a GetObject of the restored object is served from memory', async () => {
    const first = await start();
    await first.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'features/d/a/1.png.npy', Body: Buffer.from([1, 2, 3]) }),
    );
    await stop();

    const second = await start();
    const out = await second.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'features/d/a/1.png.npy' }));

    expect([...((await out.Body?.transformToByteArray()) ?? [])]).toEqual([1, 2, 3]);
  });
});

describe('file names of mirrored keys', () => {
  it('escapes segments a file system cannot hold or that would collide with a sidecar', () => {
    expect(encodeKeySegment('')).toBe('%empty');
    expect(encodeKeySegment('.')).toBe('%2E');
    expect(encodeKeySegment('..')).toBe('%2E%2E');
    expect(encodeKeySegment('a%b')).toBe('a%25b');
    expect(encodeKeySegment('x.meta.json')).toBe('x.meta%2Ejson');
    expect(encodeKeySegment('my cat (1).png')).toBe('my cat (1).png');
    expect(Buffer.byteLength(encodeKeySegment('é'.repeat(200)))).toBeLessThanOrEqual(245);
    expect(encodeKeySegment('é'.repeat(200))).not.toBe(encodeKeySegment(`${'é'.repeat(199)}e`));
  });
});
