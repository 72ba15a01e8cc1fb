import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../lib/config.ts';
import { InsufficientDataError } from '../../lib/errors.ts';
import { FeatureMessage } from '../../lib/features/messages.ts';
import { FeatureErrorRecord, metadataLabel } from '../../lib/features/metadata.ts';
import { decodeNpy } from '../../lib/features/npy.ts';
import { checkReadiness } from '../../lib/pipeline/readiness.ts';
import { runTrainingJob } from '../../lib/pipeline/train-job.ts';
import { featureErrorKey, featureKey, parseImageKey } from '../../lib/storage/keys.ts';
import { getJson, getObject, headObject, listAllObjects, putObject } from '../../lib/storage/s3.ts';
import { silentLog } from '../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../helpers/emulator.ts';
import { makeImage } from '../helpers/images.ts';
import {
  drainQueue,
  fakeContext,
  type PutRef,
  s3PutEvent,
  setHandlerEnv,
} from '../integration/pipeline/support.ts';

type Handler = (event: SQSEvent, ctx: ReturnType<typeof fakeContext>) => Promise<SQSBatchResponse>;

type Expected = { kind: 'extracted'; label: string } | { kind: 'failed'; code: string } | { kind: 'skipped' };

/** A file name that makes `datasets/keys/dog/{name}` exactly `bytes` long in UTF-8. */
function keyOfLength(bytes: number): string {
  const prefix = 'datasets/keys/dog/';
  const ext = '.png';
  return `${prefix}${'l'.repeat(bytes - prefix.length - ext.length)}${ext}`;
}

/** What users really upload: odd names, OS litter, empty files, deep folders, a lonely label. */
const KEYS: [string, Expected][] = [
  ['datasets/keys/cat/with space.png', { kind: 'extracted', label: 'cat' }],
  ['datasets/keys/cat/plus+sign.png', { kind: 'extracted', label: 'cat' }],
  ['datasets/keys/cat/ünïcødé 猫.png', { kind: 'extracted', label: 'cat' }],
  ['datasets/keys/cat/a/b/c/deep.png', { kind: 'extracted', label: 'cat' }],
  ['datasets/keys/cat/100% #1 ?&=.png', { kind: 'extracted', label: 'cat' }],
  ['datasets/keys/dog.kaggle-1.png', { kind: 'extracted', label: 'dog' }],
  ['datasets/keys/dog/ÉTÉ.JPEG', { kind: 'extracted', label: 'dog' }],
  [keyOfLength(1013), { kind: 'extracted', label: 'dog' }],
  ['datasets/keys/chats été/1.png', { kind: 'extracted', label: 'chats été' }],
  ['datasets/keys/chats été/2.png', { kind: 'extracted', label: 'chats été' }],
  ['datasets/keys/solo/only one.png', { kind: 'extracted', label: 'solo' }],
  ['datasets/keys/cat/empty.jpg', { kind: 'failed', code: 'EmptyImage' }],
  ['datasets/keys/dog/not-really.png', { kind: 'failed', code: 'UnsupportedImageFormat' }],
  [keyOfLength(1014), { kind: 'skipped' }],
  ['datasets/keys/.DS_Store', { kind: 'skipped' }],
  ['datasets/keys/cat/.DS_Store', { kind: 'skipped' }],
  ['datasets/keys/cat/._with space.png', { kind: 'skipped' }],
  ['datasets/keys/cat/', { kind: 'skipped' }],
  ['datasets/keys/cat/notes.txt', { kind: 'skipped' }],
  ['datasets/keys/Thumbs.db', { kind: 'skipped' }],
  ['datasets/keys/cat//double-slash.png', { kind: 'skipped' }],
  [`datasets/keys/${'x'.repeat(101)}/1.png`, { kind: 'skipped' }],
  ['datasets/Keys/cat/1.png', { kind: 'skipped' }],
];

describe('odd S3 keys through extract-features, check-readiness and train-head (emulator, real extractor)', () => {
  let emu: Emulator;
  let queueUrl: string;
  let restoreEnv: () => void;
  let handler: Handler;
  let result: SQSBatchResponse;
  let refs: PutRef[];
  const ctx = fakeContext('extract-features');

  beforeAll(async () => {
    // Prepare: every key above, in one SQS batch as S3 would announce them.
    emu = await startEmulator();
    queueUrl = emu.createQueue('features').queueUrl;
    restoreEnv = setHandlerEnv(emu, { [ENV.FEATURES_QUEUE_URL]: queueUrl, [ENV.EXTRACT_BATCH_SIZE]: '4' });
    vi.resetModules();
    handler = (await import('../../functions/extract-features/handler.ts')).handler as unknown as Handler;
    refs = [];
    for (const [i, [key, expected]] of KEYS.entries()) {
      const isImage = expected.kind === 'extracted' || (expected.kind === 'skipped' && /\.png$/.test(key));
      const body =
        expected.kind === 'failed' && expected.code === 'EmptyImage'
          ? Buffer.alloc(0)
          : expected.kind === 'failed'
            ? Buffer.from('<html>an error page saved as png</html>')
            : isImage
              ? await makeImage('png', {
                  width: 16,
                  height: 16,
                  seed: 100 + i,
                  noise: 30,
                  color: [30 * (i % 8), 120, 200],
                })
              : key.endsWith('/')
                ? Buffer.alloc(0)
                : Buffer.from('junk');
      const { etag } = await putObject(emu.clients.s3, emu.bucket, key, body);
      refs.push({ key, etag, size: body.length, messageId: `m${i}` });
    }

    // Act
    result = await handler(s3PutEvent(refs, emu.bucket), ctx);
  });

  afterAll(async () => {
    restoreEnv?.();
    await emu?.stop();
  });

  it('finishes the batch without failing a record', () => {
    expect(result.batchItemFailures).toEqual([]);
  });

  it('writes a whole feature for every usable key, kept verbatim (spaces, +, unicode, %, ?, #, nested, 1013 bytes)', async () => {
    for (const [key, expected] of KEYS) {
      if (expected.kind !== 'extracted') continue;
      const parsed = parseImageKey(key);
      if (!parsed.ok) throw new Error(`${key} should parse`);
      const obj = await getObject(emu.clients.s3, emu.bucket, featureKey(parsed.image));
      const npy = decodeNpy(obj.body);
      expect(npy.shape, key).toEqual([512]);
      expect(npy.data.every(Number.isFinite), key).toBe(true);
      expect(metadataLabel(obj.metadata), key).toBe(expected.label);
      expect(obj.metadata['source-etag'], key).toBe(refs.find((r) => r.key === key)?.etag);
    }
  });

  it('records an unusable image with its reason instead of failing the batch', async () => {
    for (const [key, expected] of KEYS) {
      if (expected.kind !== 'failed') continue;
      const parsed = parseImageKey(key);
      if (!parsed.ok) throw new Error(`${key} should parse`);
      const record = await getJson(
        emu.clients.s3,
        emu.bucket,
        featureErrorKey(parsed.image),
        FeatureErrorRecord,
      );
      expect(record, key).toMatchObject({ imageKey: key, code: expected.code });
      expect(record.reason.length).toBeGreaterThan(10);
      expect(await headObject(emu.clients.s3, emu.bucket, featureKey(parsed.image))).toBeUndefined();
    }
  });

  it('skips the rest without writing anything, and announces exactly the usable ones', async () => {
    const written = (await listAllObjects(emu.clients.s3, emu.bucket, 'features/')).map((o) => o.key);
    const usable = KEYS.filter(([, e]) => e.kind !== 'skipped');
    expect(written).toHaveLength(usable.length);
    const messages = (await drainQueue(emu.clients.sqs, queueUrl)).map((m) => FeatureMessage.parse(m));
    expect(messages.map((m) => m.imageKey).sort()).toEqual(usable.map(([k]) => k).sort());
    for (const m of messages) {
      const expected = KEYS.find(([k]) => k === m.imageKey)?.[1];
      expect(m.type).toBe(expected?.kind === 'failed' ? 'feature.failed' : 'feature.ready');
    }
  });

  it('check-readiness counts none of them as pending: failed ones as failed, skipped ones as skipped', async () => {
    // Act
    const report = await checkReadiness(emu.clients.s3, emu.bucket, 'keys');

    // Assess: `datasets/Keys/…` belongs to no valid dataset, so it is not under `keys` at all.
    const inDataset = KEYS.filter(([k]) => k.startsWith('datasets/keys/'));
    expect(report.pending).toBe(0);
    expect(report.ready).toBe(inDataset.filter(([, e]) => e.kind === 'extracted').length);
    expect(report.failed).toBe(inDataset.filter(([, e]) => e.kind === 'failed').length);
    expect(report.skipped).toBe(inDataset.filter(([, e]) => e.kind === 'skipped').length);
    expect(report.labels).toMatchObject({
      cat: { ready: 5, failed: 1, pending: 0 },
      dog: { ready: 3, failed: 1, pending: 0 },
      'chats été': { ready: 2, pending: 0 },
      solo: { ready: 1, pending: 0 },
    });
  });

  it('train-head refuses a label with one image by name, writes no model, then trains on the rest once it is gone', async () => {
    // Prepare
    const input = { dataset: 'keys', trigger: 'manual' as const, requestedAt: '2026-11-28T12:00:00.000Z' };
    const deps = {
      s3: emu.clients.s3,
      bucket: emu.bucket,
      training: { featureConcurrency: 4, refitOnAll: false, C: 1, maxIter: 50 },
      log: silentLog,
    };

    // Act
    const refused = await runTrainingJob(input, deps).then(
      () => undefined,
      (e: unknown) => e,
    );
    const modelsAfterRefusal = await listAllObjects(emu.clients.s3, emu.bucket, 'models/keys/');
    await emu.clients.s3.send(
      new DeleteObjectCommand({ Bucket: emu.bucket, Key: 'datasets/keys/solo/only one.png' }),
    );
    const trained = await runTrainingJob(input, deps);

    // Assess
    expect(refused).toBeInstanceOf(InsufficientDataError);
    expect((refused as Error).message).toMatch(/'solo' \(1\)/);
    expect(modelsAfterRefusal).toEqual([]);
    expect(trained.classes).toEqual(['cat', 'chats été', 'dog']);
    expect(trained.nTrain + trained.nTest).toBe(10);
    const files = (await listAllObjects(emu.clients.s3, emu.bucket, `models/keys/${trained.version}/`)).map(
      (o) => o.key,
    );
    expect(files.sort()).toEqual(
      ['model.json', 'quality.json', 'report.html', 'report.json'].map(
        (f) => `models/keys/${trained.version}/${f}`,
      ),
    );
  });
});
