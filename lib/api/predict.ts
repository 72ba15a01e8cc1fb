/**
 * `POST /datasets/{d}/predictions`: one image in (raw bytes, base64 in JSON, or an S3 key of the
 * same dataset), the promoted model's class probabilities out.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import { type Observation, startObservation } from '../capture/observe.ts';
import { ImageDecodeError, NotFoundError, ValidationError } from '../errors.ts';
import { formatMegabytes, MAX_IMAGE_BYTES } from '../images/limits.ts';
import { type ScoredImage, scoreImageBytes } from '../serving/score.ts';
import { DATASETS_PREFIX, datasetPrefix, parseImageKey } from '../storage/keys.ts';
import { getObject, ObjectTooLargeError } from '../storage/s3.ts';
import { parseThresholdParam } from '../training/thresholds.ts';
import { ForbiddenError } from './errors.ts';
import {
  datasetParam,
  decodeBase64,
  formatIssues,
  mediaType,
  parseJsonBody,
  readBodyBytes,
  requireMediaType,
} from './http.ts';
import type { PredictionResponse } from './schemas.ts';
import type { RouteContext } from './types.ts';

/** Media types the prediction body may have. */
export const PREDICTION_MEDIA_TYPES = ['image/*', 'application/octet-stream', 'application/json'] as const;

// Response shapes are zod schemas in lib/api/schemas.ts (the OpenAPI document is generated from them).
export type { PredictionResponse, Score } from './schemas.ts';

/** JSON body: exactly one of `image` (base64, optionally a `data:` URL) or `key`. */
export const PredictionJsonBody = z
  .object({
    image: z.string().min(1, "'image' is empty").optional(),
    key: z.string().min(1, "'key' is empty").max(1024, "'key' is longer than 1024 characters").optional(),
  })
  .strict()
  .refine((b) => (b.image === undefined) !== (b.key === undefined), {
    message: "send exactly one of 'image' (base64-encoded image) or 'key' (an image key datasets/{d}/…)",
  });

type ImageInput = { kind: 'bytes'; bytes: Uint8Array } | { kind: 'key'; key: string };

const DATA_URL_RE = /^data:[^,]{0,100};base64,/;

/** `top` query parameter: a whole number ≥ 1 (its upper bound needs the model's classes). */
export function parseTop(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1) {
    throw new ValidationError(
      `query parameter top must be a whole number from 1 to the number of classes (got '${raw.slice(0, 40)}')`,
      { code: 'InvalidTop' },
    );
  }
  return Number(raw);
}

/**
 * An image key sent in a JSON body, checked to name an image of this dataset: anything else is a
 * 400 (not an image key) or a 403 (another dataset's image: the API reads only the caller's dataset).
 */
export function checkImageKey(key: string, dataset: string): string {
  const own = datasetPrefix(dataset);
  if (!key.startsWith(DATASETS_PREFIX)) {
    throw new ValidationError(`'key' must name an image under ${own} (got '${key.slice(0, 200)}')`, {
      code: 'InvalidImageKey',
    });
  }
  const parsed = parseImageKey(key);
  if (parsed.ok && parsed.image.dataset !== dataset) {
    throw new ForbiddenError(
      `'key' names an image of dataset '${parsed.image.dataset}'; a prediction for '${dataset}' may only read images under ${own}`,
      { code: 'KeyOutsideDataset' },
    );
  }
  if (!parsed.ok) {
    if (!key.startsWith(own)) {
      throw new ForbiddenError(
        `'key' is not under ${own}; a prediction for '${dataset}' may only read images of its own dataset`,
        { code: 'KeyOutsideDataset' },
      );
    }
    throw new ValidationError(`'key' is not a usable image key: ${parsed.detail}`, {
      code: 'InvalidImageKey',
    });
  }
  return key;
}

function readInput(event: APIGatewayProxyEvent, dataset: string, maxBytes: number): ImageInput {
  const type = requireMediaType(mediaType(event), PREDICTION_MEDIA_TYPES);
  const bytes = readBodyBytes(event, maxBytes);
  if (bytes.length === 0) {
    throw new ValidationError(
      'request body is empty; send an image (Content-Type: image/*) or JSON { "image": "<base64>" } or { "key": "datasets/…" }',
      { code: 'EmptyBody' },
    );
  }
  if (type !== 'application/json') return { kind: 'bytes', bytes };
  const json = parseJsonBody(bytes);
  const parsed = PredictionJsonBody.safeParse(json);
  if (!parsed.success) {
    throw new ValidationError(`request body is invalid: ${formatIssues(parsed.error)}`, {
      code: 'InvalidBody',
    });
  }
  const { image, key } = parsed.data;
  if (key !== undefined) return { kind: 'key', key: checkImageKey(key, dataset) };
  const base64 = (image ?? '').replace(DATA_URL_RE, '');
  return { kind: 'bytes', bytes: decodeBase64(base64, maxBytes, "'image'") };
}

async function readKey(ctx: RouteContext, key: string): Promise<Uint8Array> {
  try {
    // Bounded like every image read (docs/ARCHITECTURE.md "Size gates and dead letters").
    return (await getObject(ctx.s3, ctx.config.bucket, key, { maxBytes: MAX_IMAGE_BYTES })).body;
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new NotFoundError(`image '${key}' does not exist`, { code: 'ImageNotFound' });
    }
    if (err instanceof ObjectTooLargeError) {
      throw new ImageDecodeError(
        'ImageTooLarge',
        `image '${key}' is over the limit of ${formatMegabytes(MAX_IMAGE_BYTES)} for a stored image`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** `capture` query parameter: `true` keeps this prediction for review whatever the policy. */
export function parseCaptureParam(raw: string | undefined): boolean {
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new ValidationError(`query parameter capture must be true or false (got '${raw.slice(0, 40)}')`, {
    code: 'InvalidCapture',
  });
}

/**
 * Answers one prediction request. Validation comes first (cheap, no model needed), then the model
 * (404/409 before any image work), then decode → forward pass (queued) → head.
 */
export async function predictRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<PredictionResponse> {
  const started = performance.now();
  const dataset = datasetParam(event);
  const top = parseTop(event.queryStringParameters?.top);
  const thresholdChoice = parseThresholdParam(event.queryStringParameters?.threshold);
  const requested = parseCaptureParam(event.queryStringParameters?.capture);
  const input = readInput(event, dataset, ctx.config.maxBodyBytes);
  // Read (usually from the cache) while the image is scored, so observing adds only its writes.
  const settings = ctx.settings.get(dataset);
  settings.catch(() => undefined);

  const { extractor, queue } = await ctx.inference();
  const model = await ctx.cache.get(dataset, extractor.specId);
  const k = model.head.classes.length;
  if (top !== undefined && top > k) {
    throw new ValidationError(
      `query parameter top must be from 1 to ${k} (the model of '${dataset}' has ${k} classes; got ${top})`,
      { code: 'InvalidTop' },
    );
  }

  let fetchMs: number | undefined;
  let bytes: Uint8Array;
  if (input.kind === 'key') {
    const t = performance.now();
    bytes = await readKey(ctx, input.key);
    fetchMs = performance.now() - t;
  } else {
    bytes = input.bytes;
  }

  // A capture that does not depend on the score stores its image during the forward pass: started
  // once the image is decoded (the decode shares this thread; the engine's pass does not).
  let observation: Observation | undefined;
  const observe = (): Observation =>
    (observation ??= startObservation({ s3: ctx.s3, bucket: ctx.config.bucket, log: ctx.log }, settings, {
      dataset,
      bytes,
      requested,
      at: ctx.now(),
    }));
  let scored: ScoredImage;
  try {
    scored = await scoreImageBytes(bytes, {
      extractor,
      extract: (pixels) => {
        observe();
        return queue.extract(pixels);
      },
      model,
      limitInputPixels: ctx.config.limitInputPixels,
      threshold: thresholdChoice,
    });
  } catch (err) {
    await observation?.abandon();
    throw err;
  }
  const { scores, outcome } = scored;
  const observeStarted = performance.now();
  const observed = await observe().finish({
    modelVersion: model.version,
    spec: model.spec,
    label: outcome.label,
    confidence: scored.confidence,
    abstained: outcome.abstained,
    scores,
  });
  const observeMs = performance.now() - observeStarted;
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    dataset,
    model: {
      version: model.version,
      trainedAt: model.trainedAt,
      spec: model.spec,
      randomWeights: model.randomWeights,
    },
    label: outcome.label,
    confidence: scored.confidence,
    abstained: outcome.abstained,
    ...(thresholdChoice.kind !== 'none' ? { threshold: outcome.threshold } : {}),
    scores: scores.slice(0, top ?? k),
    ...observed,
    timingsMs: {
      ...(fetchMs !== undefined ? { fetch: round(fetchMs) } : {}),
      decode: round(scored.timingsMs.decode),
      forward: round(scored.timingsMs.forward),
      head: round(scored.timingsMs.head),
      observe: round(observeMs),
      total: round(performance.now() - started),
    },
  };
}
