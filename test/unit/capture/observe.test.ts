import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { startObservation } from '../../../lib/capture/observe.ts';
import { type DatasetSettings, DEFAULT_SETTINGS } from '../../../lib/capture/settings.ts';
import type { Log } from '../../../lib/util/log.ts';

/** A fake S3 whose calls take `ms` each and are logged with their start and end (in call order). */
function slowS3(ms: number, fail: (key: string) => boolean = () => false) {
  const calls: { op: string; key: string; started: number; ended?: number }[] = [];
  let clock = 0;
  const s3 = {
    async send(command: unknown) {
      const input = (command as { input: { Key: string } }).input;
      const op =
        command instanceof PutObjectCommand
          ? 'put'
          : command instanceof DeleteObjectCommand
            ? 'delete'
            : 'other';
      const call: (typeof calls)[number] = { op, key: input.Key, started: clock++ };
      calls.push(call);
      await new Promise((r) => setTimeout(r, ms));
      call.ended = clock++;
      if (fail(input.Key)) throw new Error(`503 on ${input.Key}`);
      return { ETag: '"e"' };
    },
  } as unknown as S3Client;
  return { s3, calls };
}

const quiet: Log & { warnings: string[] } = {
  warnings: [],
  debug() {},
  info() {},
  warn(message) {
    quiet.warnings.push(message);
  },
  error() {},
};

const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0]);
const prediction = (confidence: number) => ({
  modelVersion: '20261207T000000Z-abc123',
  spec: 'spec',
  label: 'cat',
  confidence,
  abstained: false,
  scores: [
    { label: 'cat', probability: confidence },
    { label: 'dog', probability: 1 - confidence },
  ],
});
const settings = (capture: Partial<DatasetSettings['capture']>): Promise<DatasetSettings> =>
  Promise.resolve({ ...DEFAULT_SETTINGS, capture: { ...DEFAULT_SETTINGS.capture, ...capture } });
const at = new Date('2026-12-07T10:15:00Z');

describe('observing a prediction (lib/capture/observe.ts): capture off the critical path', () => {
  it('stores a sampled capture’s image while the image is scored, then the document beside the record', async () => {
    // Prepare: every prediction sampled; each S3 call takes 20 ms.
    const { s3, calls } = slowS3(20);
    const obs = startObservation({ s3, bucket: 'b', log: quiet }, settings({ sample: 1 }), {
      dataset: 'pets',
      bytes: JPEG,
      requested: false,
      at,
    });

    // Act: "scoring" takes 30 ms; then the answer is known.
    await new Promise((r) => setTimeout(r, 30));
    const out = await obs.finish(prediction(0.9));

    // Assess: the image was written before the score was known, the record and the document
    // together after it: one round trip after scoring, as without capture.
    const [image, ...after] = calls;
    expect(image).toMatchObject({ op: 'put', started: 0 });
    expect(image?.key).toMatch(/^captures\/pets\/2026-12-07\/20261207T101500Z-[a-z0-9]{6}\.jpg$/);
    expect(after.map((c) => c.op)).toEqual(['put', 'put']);
    const doc = after.find((c) => c.key.endsWith('.json'));
    const record = after.find((c) => c.key.startsWith('monitoring/'));
    expect(doc && record && doc.started < (record.ended ?? 0) && record.started < (doc.ended ?? 0)).toBe(
      true,
    );
    expect(out.captureId).toMatch(/^20261207T101500Z-8000-[a-z0-9]{6}$/);
    expect(doc?.key).toBe(`captures/pets/2026-12-07/${out.captureId}.json`);
    // The document names its image: the same random part, no margin in the image's name.
    expect(image?.key).toContain(out.captureId?.slice(-6));
  });

  it('writes a low-confidence capture’s image only once the score says so, the document after it', async () => {
    const { s3, calls } = slowS3(5);
    const obs = startObservation({ s3, bucket: 'b', log: quiet }, settings({ belowConfidence: 0.6 }), {
      dataset: 'pets',
      bytes: JPEG,
      requested: false,
      at,
    });
    await new Promise((r) => setTimeout(r, 15));
    expect(calls).toHaveLength(0);

    const out = await obs.finish(prediction(0.55));

    const image = calls.find((c) => c.key.endsWith('.jpg'));
    const doc = calls.find((c) => c.key.endsWith('.json'));
    expect(out.captureId).toBeDefined();
    expect(doc?.started).toBeGreaterThan(image?.ended ?? Number.POSITIVE_INFINITY);
  });

  it('writes only the record when nothing is captured, and nothing with monitoring off', async () => {
    const off = slowS3(1);
    const plain = await startObservation({ s3: off.s3, bucket: 'b', log: quiet }, settings({}), {
      dataset: 'pets',
      bytes: JPEG,
      requested: false,
      at,
    }).finish(prediction(0.9));
    expect(plain).toEqual({});
    expect(off.calls.map((c) => c.key.split('/')[0])).toEqual(['monitoring']);

    const silent = slowS3(1);
    await startObservation(
      { s3: silent.s3, bucket: 'b', log: quiet },
      Promise.resolve({ ...DEFAULT_SETTINGS, monitoring: false }),
      { dataset: 'pets', bytes: JPEG, requested: false, at },
    ).finish(prediction(0.9));
    expect(silent.calls).toEqual([]);
  });

  it('never fails the prediction: a capture write that fails is logged, the answer has no capture id', async () => {
    const { s3 } = slowS3(1, (key) => key.startsWith('captures/'));
    quiet.warnings.length = 0;

    const out = await startObservation({ s3, bucket: 'b', log: quiet }, settings({}), {
      dataset: 'pets',
      bytes: JPEG,
      requested: true,
      at,
    }).finish(prediction(0.9));

    expect(out).toEqual({});
    expect(quiet.warnings).toContain('prediction not captured');
  });

  it('deletes an image stored ahead when the image cannot be scored', async () => {
    const { s3, calls } = slowS3(1);
    const obs = startObservation({ s3, bucket: 'b', log: quiet }, settings({}), {
      dataset: 'pets',
      bytes: JPEG,
      requested: true,
      at,
    });

    await obs.abandon();

    expect(calls.map((c) => c.op)).toEqual(['put', 'delete']);
    expect(calls[1]?.key).toBe(calls[0]?.key);
  });
});
