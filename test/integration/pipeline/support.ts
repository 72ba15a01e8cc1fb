/**
 * Shared by the pipeline and state machine integration tests: sample events from `events/`
 * (cloned and adjusted per test), a fake Lambda context, queue draining, and the environment the
 * handlers read at import.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { ENV } from '../../../lib/config.ts';
import { featureMetadata } from '../../../lib/features/metadata.ts';
import { encodeNpy } from '../../../lib/features/npy.ts';
import { featureDims, parseSpec } from '../../../lib/model/spec.ts';
import { featureKey, parseImageKey } from '../../../lib/storage/keys.ts';
import { putObject } from '../../../lib/storage/s3.ts';
import type { Emulator } from '../../helpers/emulator.ts';

const EVENTS_DIR = join(import.meta.dirname, '../../../events');

/** A fresh deep copy of a sample event (tests may mutate it). */
export function loadEvent<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(join(EVENTS_DIR, name), 'utf8')) as T;
}

/** URL-encodes a key the way S3 notifications do (form encoding: spaces as `+`). */
export function encodeS3EventKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

/** One image object for `s3PutEvent`. */
export interface PutRef {
  key: string;
  etag: string;
  size: number;
  messageId?: string;
  receiveCount?: number;
  bucket?: string;
}

/**
 * `events/s3-put-in-sqs.json` with one SQS record per object, each body an ObjectCreated:Put
 * notification for that key/ETag/size (key encoded like S3 does).
 */
export function s3PutEvent(refs: readonly PutRef[], bucket: string): SQSEvent {
  const sample = loadEvent<SQSEvent>('s3-put-in-sqs.json');
  const template = sample.Records[0];
  if (!template) throw new Error('sample event has no record');
  return {
    Records: refs.map((ref, i) => {
      const record = structuredClone(template);
      const body = JSON.parse(record.body);
      const s3 = body.Records[0].s3;
      s3.bucket.name = ref.bucket ?? bucket;
      s3.bucket.arn = `arn:aws:s3:::${ref.bucket ?? bucket}`;
      s3.object.key = encodeS3EventKey(ref.key);
      s3.object.eTag = ref.etag;
      s3.object.size = ref.size;
      record.body = JSON.stringify(body);
      record.messageId = ref.messageId ?? `msg-${i}`;
      record.attributes.ApproximateReceiveCount = String(ref.receiveCount ?? 1);
      return record;
    }),
  };
}

/** An SQS event whose records carry the given raw bodies (ids `raw-0`, `raw-1`, …). */
export function sqsEventWithBodies(sampleName: string, bodies: readonly string[]): SQSEvent {
  const sample = loadEvent<SQSEvent>(sampleName);
  const template = sample.Records[0];
  if (!template) throw new Error('sample event has no record');
  return {
    Records: bodies.map((body, i) => ({ ...structuredClone(template), body, messageId: `raw-${i}` })),
  };
}

/** A Lambda context good enough for middy and Powertools. */
export function fakeContext(functionName: string): Context {
  return {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '2048',
    awsRequestId: `req-${Math.random().toString(36).slice(2, 10)}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/01/01/[$LATEST]0123456789abcdef',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Receives (and deletes nothing: tests reset the emulator) every message now on a queue. */
export async function drainQueue(sqs: SQSClient, queueUrl: string): Promise<unknown[]> {
  const bodies: unknown[] = [];
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    const msgs = out.Messages ?? [];
    if (msgs.length === 0) return bodies;
    for (const m of msgs) bodies.push(JSON.parse(m.Body ?? 'null'));
  }
}

/**
 * Sets the variables every handler reads at import (bucket, region, loopback endpoint, seeded
 * random 32x32 VGG16) plus `extra`; Powertools' metrics and logs are silenced. Returns a restore
 * function for afterAll.
 */
export function setHandlerEnv(emu: Emulator, extra: Record<string, string> = {}): () => void {
  const vars: Record<string, string> = {
    [ENV.BUCKET]: emu.bucket,
    [ENV.REGION]: emu.region,
    [ENV.ENDPOINT]: emu.endpoint,
    [ENV.WEIGHTS]: 'random:1',
    [ENV.INPUT_SIZE]: '32',
    [ENV.POOLING]: 'flatten',
    [ENV.AWS_TIMEOUT_MS]: '5000',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    ...extra,
  };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** Spec of the seeded random 32x32 extractor the handler env configures (flatten → 512 values). */
export const TEST_SPEC = 'vgg16/random-1/32x32/flatten/caffe/bilinear';

/**
 * Writes an image (placeholder bytes) and, as the extractor would, its feature `.npy` with
 * metadata; `vector` defaults to a label-dependent cluster so a head can separate labels.
 * Returns the image's ETag.
 */
export async function putImageWithFeature(
  emu: Pick<Emulator, 'clients' | 'bucket'>,
  imageKey: string,
  opts: { spec?: string; vector?: Float32Array; sourceEtag?: string; seed?: number } = {},
): Promise<string> {
  const parsed = parseImageKey(imageKey);
  if (!parsed.ok) throw new Error(`bad test key ${imageKey}`);
  const spec = opts.spec ?? TEST_SPEC;
  const { etag } = await putObject(
    emu.clients.s3,
    emu.bucket,
    imageKey,
    `image ${imageKey} ${opts.seed ?? 0}`,
  );
  const d = featureDims(parseSpec(spec));
  const vector = opts.vector ?? clusterVector(parsed.image.label, d, opts.seed ?? 0);
  await putObject(emu.clients.s3, emu.bucket, featureKey(parsed.image), encodeNpy(vector), {
    metadata: featureMetadata(opts.sourceEtag ?? etag, spec, parsed.image.label),
  });
  return etag;
}

/** A d-vector near a label-specific centre (deterministic per label and seed). */
export function clusterVector(label: string, d: number, seed: number): Float32Array {
  let h = 2166136261;
  for (const ch of label) h = Math.imul(h ^ (ch.codePointAt(0) ?? 0), 16777619);
  const v = new Float32Array(d);
  let s = (h ^ Math.imul(seed + 1, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < d; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const noise = (s / 2 ** 32 - 0.5) * 0.5;
    v[i] = ((h >>> (i % 24)) & 1 ? 1 : -1) + noise;
  }
  return v;
}
