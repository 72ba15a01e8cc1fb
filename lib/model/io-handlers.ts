import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type * as tf from '@tensorflow/tfjs';
import { ValidationError, WeightsError } from '../errors.ts';
import { importTfjs, type Tfjs } from './tfjs/import-tfjs.ts';

/** Where a tfjs layers model lives: a model.json on disk or in S3. */
export type ModelLocation = { kind: 'file'; path: string } | { kind: 's3'; bucket: string; key: string };

const MODEL_JSON = 'model.json';

/** Shard size of saved weights: tfjs-converter's default, and a size S3 reads in parallel well. */
export const SHARD_BYTES = 4 * 1024 * 1024;

/**
 * Resolves a model URI to the location of its model.json.
 * Accepts `s3://bucket/prefix/model.json`, `s3://bucket/prefix/` (model.json appended),
 * `file:///abs/model.json`, a path to model.json or a directory (model.json appended).
 */
export function parseModelUri(uri: string): ModelLocation {
  if (uri.trim() === '') throw new ValidationError('base model URI is empty');
  if (uri.startsWith('s3://')) {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    let key = slash < 0 ? '' : rest.slice(slash + 1);
    if (bucket === '')
      throw new ValidationError(`no bucket in '${uri}' (expected s3://bucket/prefix/model.json)`);
    if (!key.endsWith('.json'))
      key = key === '' || key.endsWith('/') ? `${key}${MODEL_JSON}` : `${key}/${MODEL_JSON}`;
    return { kind: 's3', bucket, key };
  }
  let path: string;
  if (uri.startsWith('file://')) path = fileURLToPath(uri);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new ValidationError(`unsupported base model URI '${uri}': use a directory, file://… or s3://…`);
  } else path = resolve(uri);
  if (!path.endsWith('.json')) path = join(path, MODEL_JSON);
  return { kind: 'file', path };
}

interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology?: object;
  weightsManifest?: tf.io.WeightsManifestConfig;
  userDefinedMetadata?: tf.io.ModelArtifacts['userDefinedMetadata'];
}

/** Splits one weights blob into shards and the manifest that lists them. */
function shard(
  artifacts: tf.io.ModelArtifacts,
  tfjs: Tfjs,
): { json: ModelJson; shards: Array<[string, Uint8Array]> } {
  if (artifacts.weightData === undefined || artifacts.weightSpecs === undefined) {
    throw new WeightsError('nothing to save: the model artifacts have no weights');
  }
  const parts = Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData];
  const blob = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    blob.set(new Uint8Array(p), at);
    at += p.byteLength;
  }
  const count = Math.max(1, Math.ceil(blob.byteLength / SHARD_BYTES));
  const shards: Array<[string, Uint8Array]> = [];
  for (let i = 0; i < count; i++) {
    shards.push([
      `group1-shard${i + 1}of${count}.bin`,
      blob.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES),
    ]);
  }
  const json: ModelJson = {
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tfjs.version_layers}`,
    convertedBy: artifacts.convertedBy ?? null,
    modelTopology: artifacts.modelTopology as object,
    weightsManifest: [{ paths: shards.map(([name]) => name), weights: artifacts.weightSpecs }],
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
  };
  return { json, shards };
}

function parseModelJson(text: string, where: string): ModelJson {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new WeightsError(`${where} is not JSON`, { cause: err });
  }
  if (json === null || typeof json !== 'object' || !Array.isArray((json as ModelJson).weightsManifest)) {
    throw new WeightsError(`${where} is not a tfjs model.json (no weightsManifest)`);
  }
  return json as ModelJson;
}

/** Shard paths are relative names next to model.json; refuse anything that climbs out. */
function shardPaths(json: ModelJson, where: string): string[] {
  const paths = (json.weightsManifest ?? []).flatMap((g) => g.paths);
  for (const p of paths) {
    if (
      typeof p !== 'string' ||
      p === '' ||
      isAbsolute(p) ||
      normalize(p).startsWith('..') ||
      p.includes('://')
    ) {
      throw new WeightsError(`${where} lists a weight shard outside its folder: '${String(p)}'`);
    }
  }
  return paths;
}

function toArtifacts(json: ModelJson, buffers: Uint8Array[]): tf.io.ModelArtifacts {
  const blob = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
  let at = 0;
  for (const b of buffers) {
    blob.set(b, at);
    at += b.byteLength;
  }
  return {
    ...(json.format !== undefined ? { format: json.format } : {}),
    ...(json.generatedBy !== undefined ? { generatedBy: json.generatedBy } : {}),
    convertedBy: json.convertedBy ?? null,
    ...(json.modelTopology !== undefined ? { modelTopology: json.modelTopology } : {}),
    weightSpecs: (json.weightsManifest ?? []).flatMap((g) => g.weights),
    weightData: blob.buffer,
    ...(json.userDefinedMetadata ? { userDefinedMetadata: json.userDefinedMetadata } : {}),
  };
}

function info(artifacts: tf.io.ModelArtifacts, tfjs: Tfjs): tf.io.SaveResult {
  return { modelArtifactsInfo: tfjs.io.getModelArtifactsInfoForJSON(artifacts) };
}

/**
 * A tfjs IOHandler for a model.json and its shards on the local file system (tfjs-node's
 * `file://` handler is not available without tfjs-node). Saving writes the shards first and
 * model.json last, atomically (temp file + rename), so a reader never sees a model.json whose
 * shards are missing.
 */
export function fileIOHandler(modelJsonPath: string): tf.io.IOHandler {
  const dir = dirname(modelJsonPath);
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(modelJsonPath, 'utf8');
      } catch (err) {
        throw new WeightsError(
          `cannot read ${modelJsonPath}: ${(err as NodeJS.ErrnoException).code ?? err}`,
          {
            cause: err,
          },
        );
      }
      const json = parseModelJson(text, modelJsonPath);
      const buffers: Uint8Array[] = [];
      for (const p of shardPaths(json, modelJsonPath)) {
        const file = join(dir, p);
        try {
          buffers.push(await readFile(file));
        } catch (err) {
          throw new WeightsError(`weight shard ${file} of ${modelJsonPath} cannot be read`, { cause: err });
        }
      }
      return toArtifacts(json, buffers);
    },
    async save(artifacts) {
      // tfjs for saving only (its version and save summary): loading reads plain JSON and bytes.
      const tfjs = await importTfjs();
      const { json, shards } = shard(artifacts, tfjs);
      await mkdir(dir, { recursive: true });
      for (const [name, bytes] of shards) await writeFile(join(dir, name), bytes);
      const tmp = `${modelJsonPath}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(json));
      await rename(tmp, modelJsonPath);
      return info(artifacts, tfjs);
    },
  };
}

function s3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

async function getBytes(s3: S3Client, bucket: string, key: string, what: string): Promise<Uint8Array> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (res.Body === undefined) throw new Error('empty body');
    return await res.Body.transformToByteArray();
  } catch (err) {
    const name = (err as { name?: string }).name;
    const why =
      name === 'NoSuchKey' || name === 'NotFound' ? 'does not exist' : `cannot be read (${String(err)})`;
    throw new WeightsError(`${what} ${s3Uri(bucket, key)} ${why}`, { cause: err });
  }
}

/** Reads shards a few at a time: parallel enough to fill the pipe, bounded for Lambda memory. */
const S3_CONCURRENCY = 4;

/**
 * A tfjs IOHandler reading (and writing) a model.json and its shards in S3 with GetObject /
 * PutObject through the given client (so tests hand in an emulator-backed one).
 */
export function s3IOHandler(s3: S3Client, location: { bucket: string; key: string }): tf.io.IOHandler {
  const { bucket, key } = location;
  const prefix = key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : '';
  return {
    async load() {
      const where = s3Uri(bucket, key);
      const json = parseModelJson(new TextDecoder().decode(await getBytes(s3, bucket, key, 'model')), where);
      const paths = shardPaths(json, where);
      const buffers: Uint8Array[] = new Array(paths.length);
      let next = 0;
      const worker = async () => {
        while (next < paths.length) {
          const i = next++;
          const p = paths[i];
          if (p === undefined) break;
          buffers[i] = await getBytes(s3, bucket, `${prefix}${p}`, 'weight shard');
        }
      };
      await Promise.all(Array.from({ length: Math.min(S3_CONCURRENCY, paths.length) }, worker));
      return toArtifacts(json, buffers);
    },
    async save(artifacts) {
      // tfjs for saving only (its version and save summary): loading reads plain JSON and bytes.
      const tfjs = await importTfjs();
      const { json, shards } = shard(artifacts, tfjs);
      for (const [name, bytes] of shards) {
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: `${prefix}${name}`,
            Body: bytes,
            ContentType: 'application/octet-stream',
          }),
        );
      }
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify(json),
          ContentType: 'application/json',
        }),
      );
      return info(artifacts, tfjs);
    },
  };
}
