import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../lib/config.ts';
import { FeatureMessage } from '../../lib/features/messages.ts';
import { decodeNpy } from '../../lib/features/npy.ts';
import { featureKey, parseImageKey } from '../../lib/storage/keys.ts';
import { getObject, putObject } from '../../lib/storage/s3.ts';
import { type Emulator, startEmulator } from '../helpers/emulator.ts';
import { makeImage } from '../helpers/images.ts';
import {
  drainQueue,
  fakeContext,
  type PutRef,
  s3PutEvent,
  setHandlerEnv,
} from '../integration/pipeline/support.ts';
import { type FaultProxy, startFaultProxy } from './fault-proxy.ts';

type Handler = (event: SQSEvent, ctx: ReturnType<typeof fakeContext>) => Promise<SQSBatchResponse>;

/** Per-call timeout of the handler's clients (see known-bugs: it is not enforced today). */
const AWS_TIMEOUT_MS = 700;

function featureOf(imageKey: string): string {
  const parsed = parseImageKey(imageKey);
  if (!parsed.ok) throw new Error(`bad test key ${imageKey}`);
  return featureKey(parsed.image);
}

describe('extract-features under S3 and SQS faults (emulator behind a fault-injecting proxy)', () => {
  let emu: Emulator;
  let proxy: FaultProxy;
  let queueUrl: string;
  let restoreEnv: () => void;
  let handler: Handler;
  const ctx = fakeContext('extract-features');

  /** PUTs `n` images (directly, not through the proxy) and returns their event refs `m0…`. */
  async function putImages(n: number, folder = 'pets'): Promise<PutRef[]> {
    const refs: PutRef[] = [];
    for (let i = 0; i < n; i++) {
      const key = `datasets/${folder}/${i % 2 ? 'cat' : 'dog'}/img-${i}.png`;
      const body = await makeImage('png', { width: 16, height: 16, seed: 50 + i, noise: 20 });
      const { etag } = await putObject(emu.clients.s3, emu.bucket, key, body);
      refs.push({ key, etag, size: body.length, messageId: `m${i}` });
    }
    return refs;
  }

  /** A redelivery of some records, as SQS sends them after a partial batch failure. */
  function redelivery(refs: readonly PutRef[], ids: readonly string[]): SQSEvent {
    return s3PutEvent(
      refs.filter((r) => ids.includes(r.messageId ?? '')).map((r) => ({ ...r, receiveCount: 2 })),
      emu.bucket,
    );
  }

  async function messages(): Promise<FeatureMessage[]> {
    return (await drainQueue(emu.clients.sqs, queueUrl)).map((m) => FeatureMessage.parse(m));
  }

  /** The feature of an image exists, decodes whole and belongs to the image's current content. */
  async function expectWholeFeature(ref: PutRef): Promise<void> {
    const obj = await getObject(emu.clients.s3, emu.bucket, featureOf(ref.key));
    const npy = decodeNpy(obj.body);
    expect(npy.shape).toEqual([512]);
    expect(npy.data.every(Number.isFinite)).toBe(true);
    expect(obj.metadata['source-etag']).toBe(ref.etag);
  }

  const failedIds = (res: SQSBatchResponse) => res.batchItemFailures.map((f) => f.itemIdentifier).sort();
  const putsSince = (seq: number) => proxy.calls.filter((c) => c.seq > seq && c.method === 'PUT');

  beforeAll(async () => {
    emu = await startEmulator();
    queueUrl = emu.createQueue('features').queueUrl;
    proxy = await startFaultProxy(emu.endpoint, emu.bucket);
    restoreEnv = setHandlerEnv(emu, {
      [ENV.ENDPOINT]: proxy.url,
      [ENV.FEATURES_QUEUE_URL]: queueUrl,
      [ENV.AWS_TIMEOUT_MS]: String(AWS_TIMEOUT_MS),
      [ENV.EXTRACT_BATCH_SIZE]: '2',
    });
    vi.resetModules();
    handler = (await import('../../functions/extract-features/handler.ts')).handler as unknown as Handler;
  });
  afterAll(async () => {
    restoreEnv?.();
    await proxy?.stop();
    await emu?.stop();
  });
  beforeEach(() => {
    emu.reset();
    proxy.clearRules();
    proxy.clearCalls();
  });

  it('fails exactly the record whose image read keeps failing; the retry completes it, each feature written once', async () => {
    // Prepare
    const refs = await putImages(5);
    const broken = refs[2];
    if (!broken) throw new Error('no image 2');
    proxy.addRule({ match: (c) => c.method === 'GET' && c.key === broken.key, action: 'error-500' });

    // Act
    const first = await handler(s3PutEvent(refs, emu.bucket), ctx);
    const announcedFirst = await messages();
    proxy.clearRules();
    const retry = await handler(redelivery(refs, ['m2']), ctx);
    const announcedRetry = await messages();

    // Assess
    expect(failedIds(first)).toEqual(['m2']);
    expect(announcedFirst.map((m) => m.imageKey).sort()).toEqual(
      refs
        .filter((r) => r !== broken)
        .map((r) => r.key)
        .sort(),
    );
    expect(failedIds(retry)).toEqual([]);
    expect(announcedRetry.map((m) => m.imageKey)).toEqual([broken.key]);
    for (const ref of refs) {
      await expectWholeFeature(ref);
      expect(proxy.putCount(featureOf(ref.key)), ref.key).toBe(1);
    }
  });

  it('retries a write whose answer was lost after it took effect without extracting again or announcing twice', async () => {
    // Prepare
    const refs = await putImages(2);
    const lost = refs[0];
    if (!lost) throw new Error('no image 0');
    proxy.addRule({
      match: (c) => c.method === 'PUT' && c.key === featureOf(lost.key),
      action: 'lose-response',
    });

    // Act
    const first = await handler(s3PutEvent(refs, emu.bucket), ctx);
    const announcedFirst = await messages();
    proxy.clearRules();
    const mark = proxy.calls.at(-1)?.seq ?? 0;
    const retry = await handler(redelivery(refs, ['m0']), ctx);
    const announcedRetry = await messages();

    // Assess: the object is whole (one PUT is atomic) and current, so the redelivery only announces it.
    expect(failedIds(first)).toEqual(['m0']);
    expect(announcedFirst.map((m) => m.imageKey)).toEqual([refs[1]?.key]);
    expect(failedIds(retry)).toEqual([]);
    expect(putsSince(mark)).toEqual([]);
    expect(announcedRetry.map((m) => [m.type, m.imageKey])).toEqual([['feature.ready', lost.key]]);
    await expectWholeFeature(lost);
  });

  it('fails the records of a features-queue send that keeps failing; the redelivery announces each image once', async () => {
    // Prepare
    const refs = await putImages(4);
    proxy.addRule({ match: (c) => c.sqsAction === 'SendMessageBatch', action: 'error-500' });

    // Act
    const first = await handler(s3PutEvent(refs, emu.bucket), ctx);
    const announcedFirst = await messages();
    proxy.clearRules();
    const mark = proxy.calls.at(-1)?.seq ?? 0;
    const retry = await handler(redelivery(refs, ['m0', 'm1', 'm2', 'm3']), ctx);
    const announcedRetry = await messages();

    // Assess
    expect(failedIds(first)).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(announcedFirst).toEqual([]);
    for (const ref of refs) await expectWholeFeature(ref);
    expect(failedIds(retry)).toEqual([]);
    expect(putsSince(mark)).toEqual([]);
    expect(announcedRetry.map((m) => m.imageKey).sort()).toEqual(refs.map((r) => r.key).sort());
  });

  it('when the emulator goes down mid-batch, every record is either done or reported, and the retry finishes the rest once', async () => {
    // Prepare: everything after the first 20 calls of the batch is refused (connection reset).
    const refs = await putImages(6);
    const from = (proxy.calls.at(-1)?.seq ?? 0) + 20;
    proxy.addRule({ match: (c) => c.seq > from, action: 'reset' });

    // Act
    const first = await handler(s3PutEvent(refs, emu.bucket), ctx);
    proxy.clearRules();
    const announcedFirst = await messages();
    const failed = failedIds(first);
    const retry = await handler(redelivery(refs, failed), ctx);
    const announcedRetry = await messages();

    // Assess: the outage hit; nothing reported done is missing; the union is every image exactly once.
    expect(failed.length).toBeGreaterThan(0);
    const done = refs.filter((r) => !failed.includes(r.messageId ?? ''));
    expect(announcedFirst.map((m) => m.imageKey).sort()).toEqual(done.map((r) => r.key).sort());
    for (const ref of done) await expectWholeFeature(ref);
    expect(failedIds(retry)).toEqual([]);
    const all = [...announcedFirst, ...announcedRetry].map((m) => m.imageKey).sort();
    expect(all).toEqual(refs.map((r) => r.key).sort());
    for (const ref of refs) {
      await expectWholeFeature(ref);
      expect(proxy.putCount(featureOf(ref.key)), ref.key).toBe(1);
    }
  });
});
