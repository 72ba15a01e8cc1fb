import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import h5wasm from 'h5wasm/node';
import { WeightsError } from '../errors.ts';
import { type Log, silentLog } from '../util/log.ts';
import { KERAS_VGG16_NOTOP_FILE } from './download.ts';
import { VGG16_CONV_LAYERS } from './vgg16.ts';
import {
  type NamedWeight,
  saveWeights,
  validateWeights,
  WEIGHTS_ID_LENGTH,
  weightsSha256,
} from './weights.ts';

/** What the Keras file says about itself (root attributes). */
export interface KerasH5Info {
  /** Root attribute `layer_names`, in order (includes weightless layers like `block1_pool`). */
  layerNames: string[];
  /** Root attribute `backend`, e.g. `tensorflow`, if present. */
  backend?: string;
  /** Root attribute `keras_version`, if present. */
  kerasVersion?: string;
}

const HDF5_SIGNATURE = Uint8Array.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

type H5Group = InstanceType<typeof h5wasm.Group>;
type H5Dataset = InstanceType<typeof h5wasm.Dataset>;

/** h5py stores `bytes` attributes as fixed-length strings; strip the NUL/space padding. */
function clean(s: string): string {
  return s.replace(/[\0 ]+$/u, '');
}

function stringList(group: H5Group, attr: string): string[] | undefined {
  const a = group.attrs[attr];
  if (a === undefined) return undefined;
  const v = a.value;
  if (typeof v === 'string') return [clean(v)];
  if (Array.isArray(v)) return v.map((x) => clean(String(x)));
  // Layers without weights get an empty (numeric) array attribute from h5py.
  if (ArrayBuffer.isView(v) && (v as unknown as { length: number }).length === 0) return [];
  if (v instanceof Uint8Array) return [clean(new TextDecoder().decode(v))];
  return undefined;
}

function stringAttr(group: H5Group, attr: string): string | undefined {
  const list = stringList(group, attr);
  return list !== undefined && list.length === 1 ? list[0] : undefined;
}

async function checkSignature(file: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new WeightsError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      cause: err,
    });
  }
  try {
    const head = new Uint8Array(8);
    const { bytesRead } = await handle.read(head, 0, 8, 0);
    if (bytesRead < 8 || !head.every((b, i) => b === HDF5_SIGNATURE[i])) {
      throw new WeightsError(`${file} is not an HDF5 file (expected Keras' ${KERAS_VGG16_NOTOP_FILE})`);
    }
  } finally {
    await handle.close();
  }
}

interface PlannedWeight {
  name: string;
  layer: string;
  role: 'kernel' | 'bias';
  dataset: H5Dataset;
  path: string;
}

/**
 * Reads the VGG16 weights from a Keras HDF5 weights file
 * (`vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`, or a full `model.save()` file, whose
 * weights sit under `model_weights/`).
 *
 * Keras layout: root attribute `layer_names`; per layer a group with attribute `weight_names`
 * listing its datasets in order (kernel, then bias), e.g. `block1_conv1/kernel:0` (Keras 2) or
 * `block1_conv1_W_1:0` (Keras 1 era); each lives at `<layer>/<weight name>`. Kernels are
 * `[3, 3, in, out]`, which is tfjs' conv2d layout, so values are copied as they are.
 * Every layer, name and shape is checked against the graph before any value is read; a
 * WeightsError names the offending layer.
 */
export async function readKerasVgg16Weights(
  file: string,
  log: Log = silentLog,
): Promise<{ weights: NamedWeight[]; info: KerasH5Info }> {
  const path = resolve(file);
  await checkSignature(path);
  await h5wasm.ready;
  let f: InstanceType<typeof h5wasm.File>;
  try {
    f = new h5wasm.File(path, 'r');
  } catch (err) {
    throw new WeightsError(`cannot open ${path} as HDF5`, { cause: err });
  }
  try {
    // A full-model file keeps the weights in a `model_weights` group with the same layout.
    let root: H5Group = f;
    if (root.attrs.layer_names === undefined) {
      const mw = f.get('model_weights');
      if (mw instanceof h5wasm.Group) root = mw;
    }
    const layerNames = stringList(root, 'layer_names');
    if (layerNames === undefined) {
      throw new WeightsError(`${path} has no 'layer_names' attribute: not a Keras weights file`);
    }
    const info: KerasH5Info = {
      layerNames,
      ...(stringAttr(f, 'backend') !== undefined ? { backend: stringAttr(f, 'backend') } : {}),
      ...(stringAttr(f, 'keras_version') !== undefined
        ? { kerasVersion: stringAttr(f, 'keras_version') }
        : {}),
    };
    log.debug('keras weights file', { file: path, ...info, layers: layerNames.length });

    const missing = VGG16_CONV_LAYERS.map((l) => l.name).filter((n) => !layerNames.includes(n));
    if (missing.length > 0) {
      throw new WeightsError(
        `${path} lacks VGG16 layer${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (is it the VGG16 weights file?)`,
      );
    }

    // Pass 1: structure and shapes only (cheap), so a bad file fails before 59 MB are read.
    const plan: PlannedWeight[] = [];
    for (const layer of VGG16_CONV_LAYERS) {
      const group = root.get(layer.name);
      if (!(group instanceof h5wasm.Group)) {
        throw new WeightsError(`layer ${layer.name} is listed in ${path} but has no group`);
      }
      const names = stringList(group, 'weight_names');
      if (names === undefined || names.length !== 2) {
        throw new WeightsError(
          `layer ${layer.name}: expected 2 weights (kernel, bias) in 'weight_names', found ${names === undefined ? 'none' : `[${names.join(', ')}]`}`,
        );
      }
      const expected: Array<{ role: 'kernel' | 'bias'; shape: number[] }> = [
        { role: 'kernel', shape: [3, 3, layer.inChannels, layer.filters] },
        { role: 'bias', shape: [layer.filters] },
      ];
      names.forEach((weightName, i) => {
        const exp = expected[i];
        if (exp === undefined) return;
        const dsPath = `${layer.name}/${weightName}`;
        const ds = root.get(dsPath);
        if (!(ds instanceof h5wasm.Dataset)) {
          throw new WeightsError(
            `layer ${layer.name}: weight '${weightName}' is listed but there is no dataset ${dsPath}`,
          );
        }
        const shape = ds.shape ?? [];
        if (shape.length !== exp.shape.length || shape.some((d, j) => d !== exp.shape[j])) {
          throw new WeightsError(
            `layer ${layer.name}: ${exp.role} '${weightName}' has shape [${shape}], VGG16 needs [${exp.shape}]`,
          );
        }
        const dtype = String(ds.dtype);
        if (!/^[<|]?[fd]$/.test(dtype)) {
          throw new WeightsError(
            `layer ${layer.name}: ${exp.role} '${weightName}' has dtype ${dtype}, expected float32`,
          );
        }
        plan.push({
          name: `${layer.name}/${exp.role}`,
          layer: layer.name,
          role: exp.role,
          dataset: ds,
          path: dsPath,
        });
      });
    }

    // Pass 2: the values.
    const weights: NamedWeight[] = plan.map((p) => {
      const v = p.dataset.value;
      let data: Float32Array;
      if (v instanceof Float32Array) data = v;
      else if (v instanceof Float64Array) data = Float32Array.from(v);
      else throw new WeightsError(`layer ${p.layer}: ${p.role} at ${p.path} could not be read as floats`);
      return { name: p.name, shape: [...(p.dataset.shape ?? [])], data };
    });
    return { weights: validateWeights(weights, log), info };
  } finally {
    f.close();
  }
}

/** Default output folder of an import: `./.tlearn/base-models/vgg16-<weightsId>/`. */
export function defaultBaseModelDir(weightsId: string, cwd: string = process.cwd()): string {
  return join(cwd, '.tlearn', 'base-models', `vgg16-${weightsId}`);
}

/** Options of `importKerasH5`. */
export interface ImportKerasOptions {
  /** Output directory or `s3://bucket/prefix/`. @default defaultBaseModelDir(weightsId) */
  out?: string;
  /** Needed when `out` is an s3:// URI. */
  s3?: S3Client;
  log?: Log;
}

/** Result of `importKerasH5`. */
export interface ImportResult {
  /** `spec.weights` of the imported weights (first 16 hex chars of `sha256`). */
  weightsId: string;
  sha256: string;
  /** Where model.json was written. */
  modelJson: string;
  /** The directory (or s3:// prefix) to use as BASE_MODEL_URI. */
  out: string;
  info: KerasH5Info;
}

/**
 * Converts the Keras VGG16 weights file into a tfjs layers model directory (model.json + shards)
 * that `loadExtractor({ weights: { kind: 'uri', uri: out } })` loads.
 *
 * @example const { weightsId, out } = await importKerasH5('vgg16_…_notop.h5', { log });
 */
export async function importKerasH5(file: string, opts: ImportKerasOptions = {}): Promise<ImportResult> {
  const log = opts.log ?? silentLog;
  const { weights, info } = await readKerasVgg16Weights(file, log);
  const sha256 = weightsSha256(weights);
  const weightsId = sha256.slice(0, WEIGHTS_ID_LENGTH);
  const out = opts.out ?? defaultBaseModelDir(weightsId);
  const saved = await saveWeights(out, weights, { weightsId, log, ...(opts.s3 ? { s3: opts.s3 } : {}) });
  return { weightsId, sha256, modelJson: saved.modelJson, out, info };
}
