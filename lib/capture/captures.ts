/**
 * Captured production predictions: `captures/{d}/{yyyy-mm-dd}/{time}-{rand}.{ext}` (the image as
 * sent, stored while it is scored) and `{id}.json` (the prediction, naming its image), then reviewed: labelled (the image is copied into
 * `datasets/{d}/{label}/`, an ordinary upload that retrains) or discarded.
 *
 * The listing alone answers "what is left to review, most uncertain first": the capture id starts
 * with its time and the top-two margin (`20261207T101500Z-0042-k3j9x1`, margin 0.0042), and a
 * reviewed capture's document is renamed `{id}.reviewed.json` (its image deleted), so no document
 * is read to order or filter a page. See docs/ARCHITECTURE.md "Closing the loop".
 */
import { randomBytes } from 'node:crypto';
import { CopyObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { sniffImageFormat } from '../images/format.ts';
import { capturesPrefix, imageKey, isValidLabel } from '../storage/keys.ts';
import {
  deleteObject,
  getJson,
  getObjectIfExists,
  isConditionFailed,
  listObjects,
  putObject,
} from '../storage/s3.ts';
import type { CapturePolicy } from './settings.ts';

/** `20261207T101500Z-0042-k3j9x1`: time, margin × 10,000 (4 digits), random. */
export const CAPTURE_ID_RE = /^(\d{8}T\d{6}Z)-(\d{4})-([a-z0-9]{6})$/;

const EXTENSIONS: Record<string, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', gif: 'gif', tiff: 'tif' };

/** The prediction stored with a captured image. */
export const CaptureDocument = z.object({
  id: z.string().regex(CAPTURE_ID_RE),
  dataset: z.string(),
  imageKey: z.string(),
  capturedAt: z.string(),
  /** Why it was kept: asked for (`?capture=true`), sampled, or below the confidence threshold. */
  reason: z.enum(['requested', 'sample', 'low-confidence']),
  model: z.object({ version: z.string(), spec: z.string() }),
  label: z.string().nullable(),
  confidence: z.number(),
  /** Top probability minus the second (1 for a one-class answer): small = uncertain. */
  margin: z.number(),
  abstained: z.boolean(),
  scores: z.array(z.object({ label: z.string(), probability: z.number() })),
  review: z
    .object({
      outcome: z.enum(['labelled', 'discarded']),
      label: z.string().optional(),
      datasetKey: z.string().optional(),
      at: z.string(),
    })
    .optional(),
});
export type CaptureDocument = z.infer<typeof CaptureDocument>;

/** The prediction a capture records (what the prediction route answered). */
export interface CapturedPrediction {
  modelVersion: string;
  spec: string;
  label: string | null;
  confidence: number;
  abstained: boolean;
  scores: ReadonlyArray<{ label: string; probability: number }>;
}

/** Top-1 minus top-2 probability of ranked scores (1 when there is one score). */
export function marginOf(scores: ReadonlyArray<{ probability: number }>): number {
  const [a, b] = scores;
  return Math.max(0, Math.min(1, (a?.probability ?? 0) - (b?.probability ?? 0)));
}

/** How a prediction came to be captured before its score was known. */
export interface CaptureDraw {
  /** `?capture=true` on the request. */
  requested: boolean;
  /** Drawn by the policy's sample rate. */
  sampled: boolean;
}

/**
 * What can be decided before the image is scored: asked for, or drawn by the sample rate (so the
 * image can be stored while the forward pass runs). `random` is injectable for tests.
 */
export function drawCapture(
  policy: CapturePolicy,
  requested: boolean,
  random: () => number = Math.random,
): CaptureDraw {
  return { requested, sampled: !requested && policy.sample > 0 && random() < policy.sample };
}

/**
 * Whether a prediction is captured, and why: asked for, else below the policy's confidence
 * threshold, else drawn by the sample rate.
 */
export function captureReason(
  policy: CapturePolicy,
  draw: CaptureDraw,
  confidence: number,
): CaptureDocument['reason'] | undefined {
  if (draw.requested) return 'requested';
  if (policy.belowConfidence !== null && confidence < policy.belowConfidence) return 'low-confidence';
  if (draw.sampled) return 'sample';
  return undefined;
}

function stamp(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

function randomPart(): string {
  return randomBytes(6)
    .toString('base64')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '0')
    .slice(0, 6);
}

/** A new capture id for a time and margin (`rand`: the id's random part, new when omitted). */
export function newCaptureId(at: Date, margin: number, rand: string = randomPart()): string {
  const m = String(Math.min(9999, Math.floor(margin * 10_000))).padStart(4, '0');
  return `${stamp(at)}-${m}-${rand}`;
}

/** The day folder of a capture id: `20261207T…` → `2026-12-07`. */
function dayOf(id: string): string {
  return `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}`;
}

function documentKey(dataset: string, id: string, reviewed = false): string {
  return `${capturesPrefix(dataset)}${dayOf(id)}/${id}${reviewed ? '.reviewed.json' : '.json'}`;
}

/** A captured image already stored, waiting for its document. */
export interface StoredCaptureImage {
  dataset: string;
  key: string;
  at: Date;
  /** The random part its capture id will share. */
  rand: string;
}

/**
 * Stores a captured image as `captures/{d}/{day}/{time}-{rand}.{ext}`. Its name holds no margin
 * (the capture id's second part), so it can be written while the image is still being scored;
 * the document that follows names it (`imageKey`).
 */
export async function writeCaptureImage(
  s3: S3Client,
  bucket: string,
  input: { dataset: string; bytes: Uint8Array; at: Date },
): Promise<StoredCaptureImage> {
  const format = sniffImageFormat(input.bytes);
  const ext = EXTENSIONS[format] ?? 'bin';
  const rand = randomPart();
  const t = stamp(input.at);
  const day = `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}`;
  const key = `${capturesPrefix(input.dataset)}${day}/${t}-${rand}.${ext}`;
  await putObject(s3, bucket, key, input.bytes, {
    contentType: `image/${format === 'tiff' ? 'tiff' : format}`,
  });
  return { dataset: input.dataset, key, at: input.at, rand };
}

/**
 * Stores a capture's document once its image is stored (the document is what the review lists,
 * so a capture is never listed without its image).
 */
export async function writeCaptureDocument(
  s3: S3Client,
  bucket: string,
  image: StoredCaptureImage,
  input: { prediction: CapturedPrediction; reason: CaptureDocument['reason'] },
): Promise<CaptureDocument> {
  const margin = marginOf(input.prediction.scores);
  const id = newCaptureId(image.at, margin, image.rand);
  const doc: CaptureDocument = {
    id,
    dataset: image.dataset,
    imageKey: image.key,
    capturedAt: image.at.toISOString(),
    reason: input.reason,
    model: { version: input.prediction.modelVersion, spec: input.prediction.spec },
    label: input.prediction.label,
    confidence: input.prediction.confidence,
    margin,
    abstained: input.prediction.abstained,
    scores: input.prediction.scores.slice(0, 10).map((s) => ({ label: s.label, probability: s.probability })),
  };
  await putObject(s3, bucket, documentKey(image.dataset, id), `${JSON.stringify(doc)}\n`, {
    contentType: 'application/json',
    ifNoneMatch: '*',
  });
  return doc;
}

/** One capture in a review listing. */
export interface CaptureEntry {
  id: string;
  capturedAt: string;
  margin: number;
}

function entryOf(key: string): (CaptureEntry & { reviewed: boolean }) | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const reviewed = name.endsWith('.reviewed.json');
  if (!reviewed && !name.endsWith('.json')) return undefined;
  const id = name.slice(0, name.length - (reviewed ? '.reviewed.json'.length : '.json'.length));
  const m = CAPTURE_ID_RE.exec(id);
  if (!m) return undefined;
  const t = m[1] ?? '';
  const capturedAt = `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`;
  return { id, capturedAt, margin: Number(m[2]) / 10_000, reviewed };
}

/** Review order: most uncertain first (smallest margin, then newest), or newest first. */
export type CaptureOrder = 'uncertain' | 'recent';

function compareEntries(order: CaptureOrder): (a: CaptureEntry, b: CaptureEntry) => number {
  const newest = (a: CaptureEntry, b: CaptureEntry) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  return order === 'recent' ? newest : (a, b) => a.margin - b.margin || newest(a, b);
}

/** A page of captures to review, with their documents. */
export interface CapturePage {
  captures: CaptureDocument[];
  /** Pass as `token` for the next page; absent on the last. */
  nextToken?: string;
  /** Captures still to review (all pages). */
  pending: number;
  /** Captures already reviewed and still stored. */
  reviewed: number;
}

const Token = z.object({ o: z.enum(['uncertain', 'recent']), after: z.string().regex(CAPTURE_ID_RE) });

function encodeToken(order: CaptureOrder, after: string): string {
  return Buffer.from(JSON.stringify({ o: order, after })).toString('base64url');
}

function decodeToken(token: string, order: CaptureOrder): string {
  try {
    const parsed = Token.parse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')));
    if (parsed.o !== order) throw new Error('order differs');
    return parsed.after;
  } catch (err) {
    throw new ValidationError(`'token' is not a token of a captures page in ${order} order`, {
      code: 'InvalidToken',
      cause: err,
    });
  }
}

/**
 * Lists the captures left to review, one page in `order`, from the listing alone; reads only the
 * documents of the page. Reviewed captures are counted, never listed.
 */
export async function listCaptures(
  s3: S3Client,
  bucket: string,
  dataset: string,
  opts: { order: CaptureOrder; limit: number; token?: string | undefined },
): Promise<CapturePage> {
  const pending: CaptureEntry[] = [];
  let reviewed = 0;
  for await (const o of listObjects(s3, bucket, capturesPrefix(dataset))) {
    const e = entryOf(o.key);
    if (!e) continue;
    if (e.reviewed) reviewed += 1;
    else pending.push(e);
  }
  const cmp = compareEntries(opts.order);
  pending.sort(cmp);
  let start = 0;
  if (opts.token !== undefined) {
    const afterId = decodeToken(opts.token, opts.order);
    const after = entryOf(`${afterId}.json`);
    start = after ? pending.findIndex((e) => cmp(e, after) > 0) : 0;
    if (start < 0) start = pending.length;
  }
  const page = pending.slice(start, start + opts.limit);
  const captures = await Promise.all(
    page.map((e) => getJson(s3, bucket, documentKey(dataset, e.id), CaptureDocument)),
  );
  const last = page[page.length - 1];
  return {
    captures,
    ...(last && start + page.length < pending.length ? { nextToken: encodeToken(opts.order, last.id) } : {}),
    pending: pending.length,
    reviewed,
  };
}

function checkId(id: string): string {
  if (!CAPTURE_ID_RE.test(id)) {
    throw new ValidationError(
      `'${id.slice(0, 80)}' is not a capture id (like 20261207T101500Z-0042-k3j9x1)`,
      {
        code: 'InvalidCaptureId',
      },
    );
  }
  return id;
}

async function readForReview(
  s3: S3Client,
  bucket: string,
  dataset: string,
  id: string,
): Promise<{ doc: CaptureDocument; etag: string }> {
  checkId(id);
  const obj = await getObjectIfExists(s3, bucket, documentKey(dataset, id));
  if (obj === undefined) {
    const done = await getObjectIfExists(s3, bucket, documentKey(dataset, id, true));
    if (done !== undefined) {
      throw new ConflictError(`capture ${id} was already reviewed`, { code: 'CaptureAlreadyReviewed' });
    }
    throw new NotFoundError(`capture ${id} of dataset '${dataset}' does not exist (or has expired)`, {
      code: 'CaptureNotFound',
    });
  }
  const doc = CaptureDocument.parse(JSON.parse(Buffer.from(obj.body).toString('utf8')));
  return { doc, etag: obj.etag };
}

/**
 * Marks a capture reviewed: writes `{id}.reviewed.json` (only once: `If-None-Match`, so a second
 * review of the same capture is a 409 however the two race), then removes the pending document.
 * The image stays until the captures expire, so a review can be undone.
 */
async function finishReview(
  s3: S3Client,
  bucket: string,
  doc: CaptureDocument,
  review: NonNullable<CaptureDocument['review']>,
): Promise<CaptureDocument> {
  const done: CaptureDocument = { ...doc, review };
  try {
    await putObject(s3, bucket, documentKey(doc.dataset, doc.id, true), `${JSON.stringify(done)}\n`, {
      contentType: 'application/json',
      ifNoneMatch: '*',
    });
  } catch (err) {
    if (isConditionFailed(err)) {
      throw new ConflictError(`capture ${doc.id} was already reviewed`, { code: 'CaptureAlreadyReviewed' });
    }
    throw err;
  }
  await deleteObject(s3, bucket, documentKey(doc.dataset, doc.id));
  return done;
}

/**
 * Labels a capture: its image is copied to `datasets/{d}/{label}/capture-{id}.{ext}` (an ordinary
 * upload: features, then the single-flight retrain), then the capture is marked reviewed. A label
 * that is not one of `classes` is refused unless `createClass` says the caller means a new class.
 */
export async function labelCapture(
  s3: S3Client,
  bucket: string,
  input: {
    dataset: string;
    id: string;
    label: string;
    classes: readonly string[];
    createClass: boolean;
    at: Date;
  },
): Promise<CaptureDocument> {
  checkReviewLabel(input);
  const { doc } = await readForReview(s3, bucket, input.dataset, input.id);
  const ext = doc.imageKey.slice(doc.imageKey.lastIndexOf('.'));
  const target = imageKey(input.dataset, input.label, `capture-${doc.id}${ext}`);
  await s3.send(
    new CopyObjectCommand({
      Bucket: bucket,
      Key: target,
      CopySource: `${bucket}/${encodeURIComponent(doc.imageKey).replace(/%2F/g, '/')}`,
    }),
  );
  return finishReview(s3, bucket, doc, {
    outcome: 'labelled',
    label: input.label,
    datasetKey: target,
    at: input.at.toISOString(),
  });
}

/** Discards a capture: it leaves the review queue; image and document stay until they expire. */
export async function discardCapture(
  s3: S3Client,
  bucket: string,
  input: { dataset: string; id: string; at: Date },
): Promise<CaptureDocument> {
  const { doc } = await readForReview(s3, bucket, input.dataset, input.id);
  return finishReview(s3, bucket, doc, { outcome: 'discarded', at: input.at.toISOString() });
}

/**
 * Undoes a review: a labelled capture's copy in `datasets/` is deleted (an ordinary delete: its
 * feature goes and the dataset retrains), and the capture is back in the review queue.
 */
export async function undoReview(
  s3: S3Client,
  bucket: string,
  input: { dataset: string; id: string },
): Promise<CaptureDocument> {
  checkId(input.id);
  const key = documentKey(input.dataset, input.id, true);
  const obj = await getObjectIfExists(s3, bucket, key);
  if (obj === undefined) {
    throw new NotFoundError(`capture ${input.id} of dataset '${input.dataset}' has no review to undo`, {
      code: 'CaptureNotReviewed',
    });
  }
  const done = CaptureDocument.parse(JSON.parse(Buffer.from(obj.body).toString('utf8')));
  if (done.review?.datasetKey !== undefined) await deleteObject(s3, bucket, done.review.datasetKey);
  const { review: _review, ...pending } = done;
  await putObject(s3, bucket, documentKey(input.dataset, input.id), `${JSON.stringify(pending)}\n`, {
    contentType: 'application/json',
  });
  await deleteObject(s3, bucket, key);
  return pending;
}

/**
 * The label a reviewer gives an image (a capture, or a pool image in lib/capture/suggestions.ts):
 * a valid label, and a class of the model unless `createClass` starts a new one.
 */
export function checkReviewLabel(input: {
  label: string;
  classes: readonly string[];
  createClass: boolean;
}): void {
  if (!isValidLabel(input.label)) {
    throw new ValidationError(
      `label '${input.label.slice(0, 80)}' is not valid (1-100 chars, no '/', not '.' or '..')`,
      {
        code: 'InvalidLabel',
      },
    );
  }
  if (!input.classes.includes(input.label) && !input.createClass) {
    throw new ValidationError(
      `'${input.label.slice(0, 80)}' is not a class of the model (${input.classes.join(', ')}); send "createClass": true to start a new class`,
      { code: 'UnknownLabel' },
    );
  }
}
