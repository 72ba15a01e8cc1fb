/**
 * Shared pieces of the hardening tests: the API over the emulator with a recording log, the
 * independent maths to check a prediction against, and pixel probes on preprocessed images.
 * Event builders and seeding come from the API integration tests' support file.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { expect } from 'vitest';
import { type ApiHandler, createApi } from '../../lib/api/app.ts';
import type { StartExecutionClient } from '../../lib/api/types.ts';
import { CAFFE_MEAN_BGR, preprocessImage } from '../../lib/images/preprocess.ts';
import type { FeatureExtractor } from '../../lib/model/types.ts';
import { createModelCache } from '../../lib/serving/model-cache.ts';
import type { Head } from '../../lib/training/types.ts';
import type { PixelProbe } from '../../scripts/fixtures/make-bad-images.ts';
import { bodyOf, type RecordingLog, referenceProba } from '../integration/api/support.ts';

export {
  bodyOf,
  errorOf,
  makeHead,
  predictBinary,
  predictJson,
  promote,
  type RecordingLog,
  recordingLog,
  referenceProba,
  requestEvent,
  seedModel,
} from '../integration/api/support.ts';

export const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:train-hardening';

/** A prediction response body (the fields the checks read). */
export interface PredictionBody {
  dataset: string;
  model: { version: string; spec: string };
  label: string;
  confidence: number;
  scores: { label: string; probability: number }[];
}

/** Step Functions stand-in: answers StartExecution with an ARN (any earlier execution is over). */
export const okSfn: StartExecutionClient = {
  async send(command) {
    if (command instanceof DescribeExecutionCommand) return { status: 'SUCCEEDED' };
    return {
      executionArn: `arn:aws:states:us-east-1:123456789012:execution:train-hardening:${command.input.name}`,
      startDate: new Date('2026-11-28T12:00:00.000Z'),
      $metadata: {},
    };
  },
};

/** The API over `s3` with the given extractor, checking current.json on every request. */
export function hardenedApi(opts: {
  s3: S3Client;
  bucket: string;
  extractor: FeatureExtractor;
  log: RecordingLog;
  maxBodyBytes?: number;
  refreshSeconds?: number;
}): ApiHandler {
  return createApi({
    s3: opts.s3,
    sfn: okSfn,
    extractor: Promise.resolve(opts.extractor),
    cache: createModelCache({
      s3: opts.s3,
      bucket: opts.bucket,
      refreshSeconds: opts.refreshSeconds ?? 0,
      log: opts.log,
    }),
    config: {
      bucket: opts.bucket,
      stateMachineArn: STATE_MACHINE_ARN,
      maxBodyBytes: opts.maxBodyBytes ?? 6 * 1024 * 1024,
      limitInputPixels: 40_000_000,
      maxBatch: 4,
      corsOrigin: undefined,
    },
    log: opts.log,
  });
}

/** Features of an image computed outside the API (preprocess + forward pass), to check it against. */
export async function featuresOf(extractor: FeatureExtractor, bytes: Uint8Array): Promise<Float32Array> {
  const x = await preprocessImage(bytes, { size: extractor.spec.input, resize: extractor.spec.resize });
  const [f] = await extractor.extractBatch([x]);
  if (!f) throw new Error('the extractor returned no vector');
  return f;
}

/**
 * Asserts a 200 prediction whose probabilities are the head applied to `features` (the float64
 * reference of the API tests), label by label.
 */
export function expectPrediction(
  res: APIGatewayProxyResult,
  head: Head,
  features: Float32Array,
  digits = 5,
): PredictionBody {
  expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
  const body = bodyOf<PredictionBody>(res);
  const reference = referenceProba(head, features);
  const byLabel = new Map(body.scores.map((s) => [s.label, s.probability]));
  expect([...byLabel.keys()].sort()).toEqual([...head.classes].sort());
  head.classes.forEach((label, i) => {
    expect(byLabel.get(label), label).toBeCloseTo(reference[i] ?? Number.NaN, digits);
  });
  return body;
}

/** Asserts an error response: status, JSON `{ error: { code, message } }` with a useful message. */
export function expectError(res: APIGatewayProxyResult, status: number, code: string | RegExp): string {
  expect(res.statusCode, res.body.slice(0, 300)).toBe(status);
  const body = bodyOf<{ error: { code: string; message: string } }>(res);
  expect(body.error.code).toMatch(typeof code === 'string' ? new RegExp(`^${code}$`) : code);
  expect(body.error.message.length).toBeGreaterThan(10);
  return body.error.message;
}

/** Lines logged at error level since `from` (an index into `log.lines`). */
export function errorLines(log: RecordingLog, from = 0): string[] {
  return log.lines
    .slice(from)
    .filter((l) => l.level === 'error')
    .map((l) => `${l.message} ${JSON.stringify(l.extra ?? {}).slice(0, 300)}`);
}

/** The RGB colour at fractional position (fx, fy) of a preprocessed (caffe BGR-minus-mean) image. */
export function rgbAt(x: Float32Array, size: readonly [number, number], fx: number, fy: number): number[] {
  const [h, w] = size;
  const px = Math.min(w - 1, Math.floor(fx * w));
  const py = Math.min(h - 1, Math.floor(fy * h));
  const o = (py * w + px) * 3;
  const [mb, mg, mr] = CAFFE_MEAN_BGR;
  return [(x[o + 2] ?? 0) + mr, (x[o + 1] ?? 0) + mg, (x[o] ?? 0) + mb].map((v) => Math.round(v));
}

/** Asserts the probes of a corpus entry on a preprocessed image. */
export function expectProbes(
  x: Float32Array,
  size: readonly [number, number],
  probes: readonly PixelProbe[],
): void {
  for (const p of probes) {
    const got = rgbAt(x, size, p.x, p.y);
    const where = `pixel at (${p.x}, ${p.y}) is ${got.join(',')}, want ${p.rgb.join(',')} ± ${p.tolerance}`;
    p.rgb.forEach((want, c) => {
      expect(Math.abs((got[c] ?? Number.NaN) - want), where).toBeLessThanOrEqual(p.tolerance);
    });
  }
}
