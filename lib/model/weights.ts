import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type * as tf from '@tensorflow/tfjs';
import { ValidationError, WeightsError } from '../errors.ts';
import { type Log, silentLog } from '../util/log.ts';
import { fileIOHandler, parseModelUri, s3IOHandler } from './io-handlers.ts';
import type { WeightsSource } from './types.ts';
import { vgg16WeightShapes } from './vgg16.ts';

/** One weight tensor of the graph, as plain data. */
export interface NamedWeight {
  /** `<layer>/kernel` or `<layer>/bias`, e.g. `block1_conv1/kernel`. */
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Weights ready to put into the graph, with their identity. */
export interface LoadedWeights {
  /** All 26 tensors, validated, in canonical order (see `vgg16WeightShapes`). */
  weights: NamedWeight[];
  /** `spec.weights`: first 16 hex chars of `sha256`, or `random-<seed>`. */
  weightsId: string;
  /** Full sha256 (hex) of the weight bytes in canonical order. Empty for random weights made in process. */
  sha256: string;
  /** Where they came from (for logs). */
  source: string;
}

/** Hex characters of the sha256 kept as the weights id. */
export const WEIGHTS_ID_LENGTH = 16;

/** Key of our entry in a saved model.json's `userDefinedMetadata`. */
export const METADATA_KEY = 'tlearn';

/** What `saveWeights` writes into `userDefinedMetadata.tlearn`. */
export interface WeightsMetadata {
  weightsId: string;
  sha256: string;
  model: 'vgg16';
}

/** Largest seed of seeded random weights (what a 32-bit PRNG state holds). */
export const MAX_RANDOM_SEED = 0xffff_ffff;

/** Whether two tensor shapes are equal, axis by axis (`null`: a free axis, equal only to `null`). */
export function sameShape(a: readonly (number | null)[], b: readonly (number | null)[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Checks a set of named weights against the graph and returns them in canonical order.
 * Every conv layer needs its kernel and bias with exactly the graph's shape; the error names the
 * layer. Extra weights (e.g. a Keras top `fc1`) are ignored with a warning.
 */
export function validateWeights(weights: Iterable<NamedWeight>, log: Log = silentLog): NamedWeight[] {
  const byName = new Map<string, NamedWeight>();
  for (const w of weights) byName.set(w.name, w);
  const ordered: NamedWeight[] = [];
  for (const expected of vgg16WeightShapes()) {
    const w = byName.get(expected.name);
    if (w === undefined) {
      throw new WeightsError(
        `layer ${expected.layer} has no ${expected.role} (expected weight '${expected.name}' of shape [${expected.shape}])`,
      );
    }
    if (!sameShape(w.shape, expected.shape)) {
      throw new WeightsError(
        `layer ${expected.layer}: ${expected.role} has shape [${w.shape}], VGG16 needs [${expected.shape}]`,
      );
    }
    const size = expected.shape.reduce((a, b) => a * b, 1);
    if (w.data.length !== size) {
      throw new WeightsError(
        `layer ${expected.layer}: ${expected.role} has ${w.data.length} values, shape [${expected.shape}] needs ${size}`,
      );
    }
    ordered.push({ name: expected.name, shape: [...expected.shape], data: w.data });
    byName.delete(expected.name);
  }
  if (byName.size > 0)
    log.warn('ignoring weights that are not part of the VGG16 base', { names: [...byName.keys()] });
  return ordered;
}

/**
 * sha256 (hex) of the weights: their float32 little-endian bytes concatenated in canonical order
 * (each conv layer's kernel then bias, block1_conv1 first). This is the order of Keras
 * `model.get_weights()`, so in Python the same digest is
 * `sha256(b''.join(w.astype('<f4').tobytes() for w in VGG16(include_top=False).get_weights()))`.
 */
export function weightsSha256(weights: readonly NamedWeight[]): string {
  const hash = createHash('sha256');
  for (const w of weights) hash.update(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength));
  return hash.digest('hex');
}

/** `spec.weights` of real weights: the first 16 hex chars of `weightsSha256`. */
export function weightsIdOf(weights: readonly NamedWeight[]): string {
  return weightsSha256(weights).slice(0, WEIGHTS_ID_LENGTH);
}

/** `spec.weights` of seeded random weights. */
export function randomWeightsId(seed: number): string {
  return `random-${seed}`;
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_RANDOM_SEED) {
    throw new ValidationError(
      `random weights seed must be a whole number 0..${MAX_RANDOM_SEED} (got ${seed})`,
    );
  }
}

/**
 * Seeded random VGG16 weights: Glorot-uniform kernels (Keras' default initializer, limit
 * sqrt(6 / (fan_in + fan_out)) with fan = 3*3*channels) and zero biases, from one mulberry32
 * stream in canonical order. Same seed → bit-identical weights on every machine; the PRNG state
 * is private, so tfjs' global random state never matters.
 * Features computed with them are meaningless; they exist for tests and offline demos.
 */
export function randomWeights(seed: number): NamedWeight[] {
  checkSeed(seed);
  let state = seed >>> 0;
  return vgg16WeightShapes().map((w) => {
    const size = w.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (w.role === 'kernel') {
      const [kh = 3, kw = 3, cin = 1, cout = 1] = w.shape;
      const scale = (2 * Math.sqrt(6 / (kh * kw * cin + kh * kw * cout))) / 4294967296;
      const limit = Math.sqrt(6 / (kh * kw * cin + kh * kw * cout));
      // mulberry32, inlined: this loop runs 14.7 million times.
      for (let i = 0; i < size; i++) {
        state = (state + 0x6d2b79f5) | 0;
        let t = Math.imul(state ^ (state >>> 15), state | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        data[i] = ((t ^ (t >>> 14)) >>> 0) * scale - limit;
      }
    }
    return { name: w.name, shape: [...w.shape], data };
  });
}

function warnRandom(log: Log, weightsId: string): void {
  log.warn(
    `!!! RANDOM WEIGHTS (${weightsId}): the VGG16 base has seeded random weights, so its features ` +
      'are MEANINGLESS for real use. Only for tests and offline demos; import real weights with ' +
      '`tlearn base-model import FILE.h5` or `tlearn base-model fetch`. !!!',
    { weights: weightsId },
  );
}

const BYTES_PER: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

function concatWeightData(data: tf.io.WeightData): Uint8Array {
  const parts = Array.isArray(data) ? data : [data];
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), offset);
    offset += p.byteLength;
  }
  return out;
}

/** Turns tfjs model artifacts into named float32 weights (copies, so they are 4-byte aligned). */
export function decodeArtifactWeights(artifacts: tf.io.ModelArtifacts, source: string): NamedWeight[] {
  if (artifacts.format !== undefined && artifacts.format !== 'layers-model') {
    throw new WeightsError(`${source} is a tfjs '${artifacts.format}', not a layers model`);
  }
  const specs = artifacts.weightSpecs;
  if (specs === undefined || artifacts.weightData === undefined) {
    throw new WeightsError(`${source} has no weights (weightsManifest missing or empty)`);
  }
  const bytes = concatWeightData(artifacts.weightData);
  const out: NamedWeight[] = [];
  let offset = 0;
  for (const spec of specs) {
    if (spec.quantization !== undefined) {
      throw new WeightsError(
        `${source}: weight '${spec.name}' is quantized; save the model without quantization`,
      );
    }
    const per = BYTES_PER[spec.dtype];
    if (per === undefined)
      throw new WeightsError(`${source}: weight '${spec.name}' has unsupported dtype ${spec.dtype}`);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const end = offset + size * per;
    if (end > bytes.byteLength) {
      throw new WeightsError(
        `${source}: weight shards hold ${bytes.byteLength} bytes but the manifest needs more at '${spec.name}' (truncated shard?)`,
      );
    }
    if (spec.dtype === 'float32') {
      const copy = bytes.slice(offset, end);
      out.push({ name: spec.name, shape: [...spec.shape], data: new Float32Array(copy.buffer) });
    }
    offset = end;
  }
  if (offset !== bytes.byteLength) {
    throw new WeightsError(
      `${source}: weight shards hold ${bytes.byteLength} bytes, the manifest describes ${offset}`,
    );
  }
  return out;
}

/**
 * Model artifacts (topology + one weights blob) for weights in canonical order. The topology is
 * tfjs' own, so this loads tfjs (lib/model/tfjs/vgg16-graph.ts): only saving weights needs it.
 */
export async function encodeArtifacts(
  weights: readonly NamedWeight[],
  metadata: WeightsMetadata,
): Promise<tf.io.ModelArtifacts> {
  const { vgg16BaseTopology, TFJS_GENERATED_BY } = await import('./tfjs/vgg16-graph.ts');
  const total = weights.reduce((n, w) => n + w.data.byteLength, 0);
  const data = new Uint8Array(total);
  let offset = 0;
  for (const w of weights) {
    data.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), offset);
    offset += w.data.byteLength;
  }
  return {
    format: 'layers-model',
    generatedBy: TFJS_GENERATED_BY,
    convertedBy: 'tlearn',
    modelTopology: vgg16BaseTopology(),
    weightSpecs: weights.map((w) => ({ name: w.name, shape: [...w.shape], dtype: 'float32' as const })),
    weightData: data.buffer,
    userDefinedMetadata: { [METADATA_KEY]: { ...metadata } },
  };
}

function readMetadata(artifacts: tf.io.ModelArtifacts): Partial<WeightsMetadata> | undefined {
  const meta = (artifacts.userDefinedMetadata as Record<string, unknown> | undefined)?.[METADATA_KEY];
  if (meta === null || typeof meta !== 'object') return undefined;
  return meta as Partial<WeightsMetadata>;
}

/** Options of `loadWeights` and `saveWeights`. */
export interface WeightsIoOptions {
  /** Needed for `s3://` URIs. */
  s3?: S3Client;
  log?: Log;
}

function handlerFor(uri: string, s3: S3Client | undefined): { handler: tf.io.IOHandler; where: string } {
  const target = parseModelUri(uri);
  if (target.kind === 's3') {
    if (s3 === undefined) throw new ValidationError(`an S3 client is needed to use ${uri}`);
    return { handler: s3IOHandler(s3, target), where: `s3://${target.bucket}/${target.key}` };
  }
  return { handler: fileIOHandler(target.path), where: target.path };
}

/**
 * Loads VGG16 weights from a tfjs layers model (`{kind:'uri'}`: a directory, a path to
 * model.json, `file://…/model.json` or `s3://bucket/prefix/model.json`) or makes seeded random
 * ones (`{kind:'random'}`, with a loud warning).
 *
 * Identity: the weight bytes are always rehashed (sha256 of 59 MB takes well under a second,
 * next to reading them) rather than trusted from model.json. When model.json carries
 * `userDefinedMetadata.tlearn.weightsId` it must agree: a sha prefix must match the digest, and
 * `random-<seed>` must match the digest of `randomWeights(seed)`; otherwise the shards were
 * changed and a WeightsError says so. The random label is thus kept by a save/load round trip,
 * so random features never pass for real ones.
 */
export async function loadWeights(
  source: WeightsSource,
  opts: WeightsIoOptions = {},
): Promise<LoadedWeights> {
  const log = opts.log ?? silentLog;
  if (source.kind === 'random') {
    const weightsId = randomWeightsId(source.seed);
    const weights = randomWeights(source.seed);
    warnRandom(log, weightsId);
    return { weights, weightsId, sha256: '', source: `random:${source.seed}` };
  }
  const { handler, where } = handlerFor(source.uri, opts.s3);
  if (handler.load === undefined) throw new WeightsError(`cannot load from ${where}`);
  const started = Date.now();
  const artifacts = await handler.load();
  const weights = validateWeightsFrom(artifacts, where, log);
  const sha256 = weightsSha256(weights);
  const digestId = sha256.slice(0, WEIGHTS_ID_LENGTH);
  const claimed = readMetadata(artifacts)?.weightsId;
  let weightsId = digestId;
  if (typeof claimed === 'string') {
    const seed = /^random-(\d+)$/.exec(claimed)?.[1];
    if (seed !== undefined) {
      if (Number(seed) > MAX_RANDOM_SEED || weightsSha256(randomWeights(Number(seed))) !== sha256) {
        throw new WeightsError(`${where} says it holds ${claimed} but its weights differ from that seed's`);
      }
      weightsId = claimed;
      warnRandom(log, weightsId);
    } else if (claimed !== digestId) {
      throw new WeightsError(
        `${where} says its weights are ${claimed} but the shards hash to ${digestId} (corrupt or edited shards)`,
      );
    }
  }
  log.info('base model weights loaded', { from: where, weights: weightsId, ms: Date.now() - started });
  return { weights, weightsId, sha256, source: where };
}

function validateWeightsFrom(artifacts: tf.io.ModelArtifacts, where: string, log: Log): NamedWeight[] {
  try {
    return validateWeights(decodeArtifactWeights(artifacts, where), log);
  } catch (err) {
    if (err instanceof WeightsError && !err.message.startsWith(where)) {
      throw new WeightsError(`${where}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** Result of `saveWeights`. */
export interface SavedWeights {
  weightsId: string;
  sha256: string;
  /** Where model.json was written (path or s3:// URI). */
  modelJson: string;
}

/**
 * Writes weights as a tfjs layers model (model.json + 4 MiB `group1-shardNofM.bin` shards) to a
 * directory or `s3://bucket/prefix/`. The weights id goes into `userDefinedMetadata.tlearn`.
 * Pass `weightsId: 'random-<seed>'` for seeded random weights (checked against that seed);
 * otherwise it is the sha prefix.
 */
export async function saveWeights(
  target: string,
  weights: readonly NamedWeight[],
  opts: WeightsIoOptions & { weightsId?: string } = {},
): Promise<SavedWeights> {
  const ordered = validateWeights(weights, opts.log);
  const sha256 = weightsSha256(ordered);
  const weightsId = opts.weightsId ?? sha256.slice(0, WEIGHTS_ID_LENGTH);
  const seed = /^random-(\d{1,10})$/.exec(weightsId)?.[1];
  const matches =
    seed === undefined
      ? weightsId === sha256.slice(0, WEIGHTS_ID_LENGTH)
      : Number(seed) <= MAX_RANDOM_SEED && weightsSha256(randomWeights(Number(seed))) === sha256;
  if (!matches) {
    throw new ValidationError(`weights id ${weightsId} does not match the weights (${sha256.slice(0, 16)})`);
  }
  const { handler, where } = handlerFor(target, opts.s3);
  if (handler.save === undefined) throw new WeightsError(`cannot save to ${where}`);
  const result = await handler.save(await encodeArtifacts(ordered, { weightsId, sha256, model: 'vgg16' }));
  if (result.errors !== undefined && result.errors.length > 0) {
    throw new WeightsError(`saving to ${where} failed: ${result.errors.join('; ')}`);
  }
  (opts.log ?? silentLog).info('base model saved', { to: where, weights: weightsId });
  return { weightsId, sha256, modelJson: where };
}
