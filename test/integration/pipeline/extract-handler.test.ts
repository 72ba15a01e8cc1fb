import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../../lib/config.ts';
import { FeatureMessage } from '../../../lib/features/messages.ts';
import { FeatureErrorRecord } from '../../../lib/features/metadata.ts';
import { decodeNpy } from '../../../lib/features/npy.ts';
import { featureErrorKey, featureKey, parseImageKey } from '../../../lib/storage/keys.ts';
import { getJson, getObject, headObject, listAllObjects, putObject } from '../../../lib/storage/s3.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { makeImage, truncateImage } from '../../helpers/images.ts';
import {
  drainQueue,
  fakeContext,
  loadEvent,
  type PutRef,
  s3PutEvent,
  setHandlerEnv,
  sqsEventWithBodies,
} from './support.ts';

type Handler = (event: SQSEvent, ctx: ReturnType<typeof fakeContext>) => Promise<SQSBatchResponse>;

const SPEC = 'vgg16/random-1/32x32/flatten/caffe/bilinear';

describe('extract-features handler (emulated S3 + SQS, real random-weight VGG16 at 32x32)', () => {
  let emu: Emulator;
  let queueUrl: string;
  let restoreEnv: () => void;
  let handler: Handler;
  const ctx = fakeContext('extract-features');

  async function importHandler(extra: Record<string, string>): Promise<Handler> {
    restoreEnv?.();
    // Two images per forward pass, so a batch of five takes three passes.
    restoreEnv = setHandlerEnv(emu, { [ENV.EXTRACT_BATCH_SIZE]: '2', ...extra });
    vi.resetModules();
    const mod = await import('../../../functions/extract-features/handler.ts');
    return mod.handler as unknown as Handler;
  }

  /** PUTs an image and returns the ref an S3 event would carry. */
  async function putImage(key: string, body: Uint8Array, messageId?: string): Promise<PutRef> {
    const { etag } = await putObject(emu.clients.s3, emu.bucket, key, body);
    return { key, etag, size: body.length, ...(messageId ? { messageId } : {}) };
  }

  function featureOf(key: string): string {
    const parsed = parseImageKey(key);
    if (!parsed.ok) throw new Error(`bad test key ${key}`);
    return featureKey(parsed.image);
  }

  function errorOf(key: string): string {
    const parsed = parseImageKey(key);
    if (!parsed.ok) throw new Error(`bad test key ${key}`);
    return featureErrorKey(parsed.image);
  }

  const MARK = new Uint8Array([0x6d, 0x61, 0x72, 0x6b]);

  /** Replaces a feature's body with a marker, keeping its metadata: a rewrite would remove it. */
  async function markFeature(imageKey: string): Promise<void> {
    const head = await headObject(emu.clients.s3, emu.bucket, featureOf(imageKey));
    if (!head) throw new Error(`no feature for ${imageKey}`);
    await putObject(emu.clients.s3, emu.bucket, featureOf(imageKey), MARK, { metadata: head.metadata });
  }

  async function isMarked(imageKey: string): Promise<boolean> {
    const obj = await getObject(emu.clients.s3, emu.bucket, featureOf(imageKey));
    return Buffer.from(obj.body).equals(Buffer.from(MARK));
  }

  beforeAll(async () => {
    emu = await startEmulator();
    queueUrl = emu.createQueue('features').queueUrl;
    handler = await importHandler({ [ENV.FEATURES_QUEUE_URL]: queueUrl });
  });
  afterAll(async () => {
    restoreEnv?.();
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
  });

  it('writes a .npy with source-etag, spec and label metadata and sends one feature.ready', async () => {
    const ref = await putImage('datasets/pets/cat/1.png', await makeImage('png', { seed: 1 }));

    const res = await handler(s3PutEvent([ref], emu.bucket), ctx);

    expect(res.batchItemFailures).toEqual([]);
    const obj = await getObject(emu.clients.s3, emu.bucket, 'features/pets/cat/1.png.npy');
    const npy = decodeNpy(obj.body);
    expect(npy.shape).toEqual([512]);
    expect(npy.data.some((v) => v !== 0)).toBe(true);
    expect(obj.metadata).toMatchObject({ 'source-etag': ref.etag, 'feature-spec': SPEC, label: 'cat' });
    const messages = (await drainQueue(emu.clients.sqs, queueUrl)).map((m) => FeatureMessage.parse(m));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      type: 'feature.ready',
      dataset: 'pets',
      label: 'cat',
      imageKey: 'datasets/pets/cat/1.png',
      featureKey: 'features/pets/cat/1.png.npy',
      sourceEtag: ref.etag,
      spec: SPEC,
    });
  });

  it('skips an image whose feature is current: the same event twice makes one write and one message', async () => {
    const ref = await putImage('datasets/pets/dog/2.jpg', await makeImage('jpeg', { seed: 2 }));
    await handler(s3PutEvent([ref], emu.bucket), ctx);
    await markFeature(ref.key);

    const res = await handler(s3PutEvent([ref], emu.bucket), ctx);

    expect(res.batchItemFailures).toEqual([]);
    expect(await isMarked(ref.key)).toBe(true);
    expect(await drainQueue(emu.clients.sqs, queueUrl)).toHaveLength(1);
  });

  it('announces a current feature again when SQS redelivers the record (an earlier attempt may not have)', async () => {
    const ref = await putImage('datasets/pets/dog/3.png', await makeImage('png', { seed: 3 }));
    await handler(s3PutEvent([ref], emu.bucket), ctx);
    await drainQueue(emu.clients.sqs, queueUrl);
    await markFeature(ref.key);

    const res = await handler(s3PutEvent([{ ...ref, receiveCount: 2 }], emu.bucket), ctx);

    expect(res.batchItemFailures).toEqual([]);
    expect(await isMarked(ref.key)).toBe(true);
    const messages = await drainQueue(emu.clients.sqs, queueUrl);
    expect(messages).toEqual([expect.objectContaining({ type: 'feature.ready', sourceEtag: ref.etag })]);
  });

  it('re-extracts an image replaced with new content (new ETag)', async () => {
    const key = 'datasets/pets/cat/4.png';
    const v1 = await putImage(key, await makeImage('png', { seed: 4, color: [250, 10, 10] }));
    await handler(s3PutEvent([v1], emu.bucket), ctx);
    const before = decodeNpy((await getObject(emu.clients.s3, emu.bucket, featureOf(key))).body).data;

    const v2 = await putImage(key, await makeImage('png', { seed: 5, color: [10, 10, 250] }));
    const res = await handler(s3PutEvent([v2], emu.bucket), ctx);

    expect(v2.etag).not.toBe(v1.etag);
    expect(res.batchItemFailures).toEqual([]);
    const after = await getObject(emu.clients.s3, emu.bucket, featureOf(key));
    expect(after.metadata['source-etag']).toBe(v2.etag);
    expect(Array.from(decodeNpy(after.body).data)).not.toEqual(Array.from(before));
    const messages = (await drainQueue(emu.clients.sqs, queueUrl)) as { sourceEtag: string }[];
    expect(messages.map((m) => m.sourceEtag)).toEqual([v1.etag, v2.etag]);
  });

  it('writes an error record and feature.failed for a corrupt image without failing the batch', async () => {
    const good = await makeImage('png', { seed: 6, width: 64, height: 64 });
    const ref = await putImage('datasets/pets/cat/broken.png', truncateImage(good, 0.5));

    const res = await handler(s3PutEvent([ref], emu.bucket), ctx);

    expect(res.batchItemFailures).toEqual([]);
    const rec = await getJson(emu.clients.s3, emu.bucket, errorOf(ref.key), FeatureErrorRecord);
    expect(rec).toMatchObject({ imageKey: ref.key, sourceEtag: ref.etag, spec: SPEC, code: 'CorruptImage' });
    expect(await headObject(emu.clients.s3, emu.bucket, featureOf(ref.key))).toBeUndefined();
    const [msg] = (await drainQueue(emu.clients.sqs, queueUrl)).map((m) => FeatureMessage.parse(m));
    expect(msg).toMatchObject({ type: 'feature.failed', imageKey: ref.key, sourceEtag: ref.etag });
    expect(msg?.type === 'feature.failed' && msg.reason).toMatch(/^CorruptImage: /);
  });

  it('records a zero-byte image as EmptyImage', async () => {
    const ref = await putImage('datasets/pets/cat/empty.jpg', new Uint8Array(0));

    const res = await handler(s3PutEvent([ref], emu.bucket), ctx);

    expect(res.batchItemFailures).toEqual([]);
    const rec = await getJson(emu.clients.s3, emu.bucket, errorOf(ref.key), FeatureErrorRecord);
    expect(rec.code).toBe('EmptyImage');
  });

  it('replaces the error record with a feature once a broken image is fixed, and vice versa', async () => {
    const key = 'datasets/pets/dog/fixme.png';
    const broken = await putImage(key, Buffer.from('not an image at all'));
    await handler(s3PutEvent([broken], emu.bucket), ctx);
    expect(await headObject(emu.clients.s3, emu.bucket, errorOf(key))).toBeDefined();

    const fixed = await putImage(key, await makeImage('png', { seed: 7 }));
    await handler(s3PutEvent([fixed], emu.bucket), ctx);
    expect(await headObject(emu.clients.s3, emu.bucket, errorOf(key))).toBeUndefined();
    expect((await headObject(emu.clients.s3, emu.bucket, featureOf(key)))?.metadata['source-etag']).toBe(
      fixed.etag,
    );

    const brokenAgain = await putImage(key, Buffer.alloc(0));
    await handler(s3PutEvent([brokenAgain], emu.bucket), ctx);
    expect(await headObject(emu.clients.s3, emu.bucket, featureOf(key))).toBeUndefined();
    expect((await headObject(emu.clients.s3, emu.bucket, errorOf(key)))?.metadata['source-etag']).toBe(
      brokenAgain.etag,
    );
  });

  it('decodes keys with spaces, plus signs and unicode and URI-encodes a unicode label in metadata', async () => {
    const key = 'datasets/pets/chat noir/été +1 ü.png';
    const ref = await putImage(key, await makeImage('png', { seed: 8 }));
    const event = s3PutEvent([ref], emu.bucket);
    // The sample encodes like S3: spaces as '+', a literal '+' as %2B.
    expect(JSON.parse(event.Records[0]?.body ?? '').Records[0].s3.object.key).toBe(
      'datasets/pets/chat+noir/%C3%A9t%C3%A9+%2B1+%C3%BC.png',
    );

    const res = await handler(event, ctx);

    expect(res.batchItemFailures).toEqual([]);
    const head = await headObject(emu.clients.s3, emu.bucket, 'features/pets/chat noir/été +1 ü.png.npy');
    expect(head?.metadata.label).toBe('chat%20noir');
    const [msg] = (await drainQueue(emu.clients.sqs, queueUrl)) as { imageKey: string; label: string }[];
    expect(msg).toMatchObject({ imageKey: key, label: 'chat noir' });
  });

  it('skips unusable keys, other buckets, the s3:TestEvent and unparsable bodies, without failing', async () => {
    const refs: PutRef[] = [];
    for (const key of [
      'datasets/Bad_Name/cat/1.png',
      'datasets/pets/cat/notes.txt',
      'datasets/pets/cat/.DS_Store',
    ]) {
      refs.push(await putImage(key, await makeImage('png', { seed: 9 })));
    }
    const usable = await putImage('datasets/pets/cat/elsewhere.png', await makeImage('png', { seed: 9 }));
    refs.push({ ...usable, bucket: 'someone-elses-bucket' });
    const event = s3PutEvent(refs, emu.bucket);
    const testEvent = loadEvent<SQSEvent>('s3-test-event-in-sqs.json');
    event.Records.push(...testEvent.Records);
    event.Records.push(
      ...sqsEventWithBodies('s3-put-in-sqs.json', ['{"not": "an s3 event"}', '<xml/>']).Records,
    );

    const res = await handler(event, ctx);

    expect(res.batchItemFailures).toEqual([]);
    expect(await listAllObjects(emu.clients.s3, emu.bucket, 'features/')).toEqual([]);
    expect(await drainQueue(emu.clients.sqs, queueUrl)).toEqual([]);
  });

  it('extracts a batch larger than the forward-pass batch size, one message per image', async () => {
    const refs: PutRef[] = [];
    for (let i = 0; i < 5; i++) {
      refs.push(
        await putImage(
          `datasets/pets/${i % 2 ? 'cat' : 'dog'}/b${i}.webp`,
          await makeImage('webp', { seed: 20 + i }),
        ),
      );
    }

    const res = await handler(s3PutEvent(refs, emu.bucket), ctx);

    expect(res.batchItemFailures).toEqual([]);
    const features = await listAllObjects(emu.clients.s3, emu.bucket, 'features/pets/');
    expect(features.map((o) => o.key).sort()).toEqual(refs.map((r) => featureOf(r.key)).sort());
    const messages = (await drainQueue(emu.clients.sqs, queueUrl)) as { imageKey: string }[];
    expect(messages.map((m) => m.imageKey).sort()).toEqual(refs.map((r) => r.key).sort());
  });

  it('fails exactly the record whose message cannot be sent (features queue missing)', async () => {
    const current = await putImage('datasets/pets/cat/current.png', await makeImage('png', { seed: 30 }));
    await handler(s3PutEvent([current], emu.bucket), ctx);
    const fresh = await putImage('datasets/pets/cat/fresh.png', await makeImage('png', { seed: 31 }));
    const badHandler = await importHandler({
      [ENV.FEATURES_QUEUE_URL]: `${emu.endpoint}/000000000000/no-such-queue`,
      [ENV.AWS_TIMEOUT_MS]: '2000',
    });
    const event = s3PutEvent(
      [
        { ...current, messageId: 'current' },
        { ...fresh, messageId: 'fresh' },
        { key: 'datasets/pets/cat/readme.md', etag: 'x', size: 1, messageId: 'invalid-key' },
      ],
      emu.bucket,
    );
    event.Records.push(...loadEvent<SQSEvent>('s3-test-event-in-sqs.json').Records);

    try {
      const res = await badHandler(event, ctx);

      expect(res.batchItemFailures).toEqual([{ itemIdentifier: 'fresh' }]);
      // The object was written before the message failed; the retry finds it current and, being a
      // redelivery, announces it.
      const head = await headObject(emu.clients.s3, emu.bucket, featureOf(fresh.key));
      expect(head?.metadata['source-etag']).toBe(fresh.etag);
    } finally {
      handler = await importHandler({ [ENV.FEATURES_QUEUE_URL]: queueUrl });
    }
    const retry = await handler(
      s3PutEvent([{ ...fresh, messageId: 'fresh', receiveCount: 2 }], emu.bucket),
      ctx,
    );
    expect(retry.batchItemFailures).toEqual([]);
    const messages = (await drainQueue(emu.clients.sqs, queueUrl)) as { imageKey: string }[];
    expect(messages.map((m) => m.imageKey)).toEqual(['datasets/pets/cat/current.png', fresh.key]);
  });
});
