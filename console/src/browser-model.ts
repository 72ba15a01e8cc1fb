/**
 * Runs a model's one-file ONNX export in the browser: onnxruntime-web's wasm backend,
 * single-threaded (no cross-origin isolation needed). This module is NOT part of the page: build.ts
 * bundles it with onnxruntime-web into `ort/browser-model.mjs`, which the page imports only when
 * the user asks ("Run in this browser"), so the first page load stays small. The ~15 MB .wasm
 * comes from the stack itself (`GET /console/ort/{file}`, a redirect to a copy in the bucket),
 * never from a CDN.
 */
import * as ort from 'onnxruntime-web/wasm';
import { readOnnxMetadata } from '../../lib/export/onnx-metadata.ts';

/** A loaded export: its classes (output order), its input size and a forward pass. */
export interface BrowserModel {
  classes: string[];
  /** [height, width] the input must already have. */
  size: [number, number];
  /** One image: HWC RGB 0-255 float32 of length h*w*3 → probabilities in `classes` order. */
  run(rgb: Float32Array): Promise<Float32Array>;
}

/**
 * Loads `model.onnx` bytes with the wasm at `wasmUrl`; the classes come from its
 * `tlearn.classes` metadata and the input size from its `tlearn.input` contract.
 */
export async function loadBrowserModel(bytes: Uint8Array, wasmUrl: string): Promise<BrowserModel> {
  ort.env.wasm.wasmPaths = { wasm: wasmUrl };
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const meta = readOnnxMetadata(bytes);
  const classes = JSON.parse(meta['tlearn.classes'] ?? '[]') as string[];
  // The input contract (lib/export/onnx-model.ts inputContract) names the tensors and the size.
  const input = JSON.parse(meta['tlearn.input'] ?? '{}') as {
    name?: string;
    shape?: unknown[];
    output?: { name?: string };
  };
  const h = Number(input.shape?.[1]);
  const w = Number(input.shape?.[2]);
  const inputName = input.name;
  const outputName = input.output?.name;
  if (classes.length === 0 || !(h > 0 && w > 0) || !inputName || !outputName) {
    throw new Error('this file is not a tlearn export (no tlearn.classes / tlearn.input metadata)');
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  return {
    classes,
    size: [h, w],
    async run(rgb) {
      if (rgb.length !== h * w * 3) throw new Error(`input must hold ${h}x${w}x3 values, got ${rgb.length}`);
      const feeds = { [inputName]: new ort.Tensor('float32', rgb, [1, h, w, 3]) };
      const out = await session.run(feeds);
      const p = out[outputName];
      if (p === undefined) throw new Error(`the model has no '${outputName}' output`);
      const data = Float32Array.from(p.data as Float32Array);
      p.dispose();
      return data;
    },
  };
}

/**
 * An image file → HWC RGB 0-255 float32 at [h, w], as the export's contract asks: EXIF-rotated
 * (createImageBitmap's `from-image`), aspect not kept, alpha flattened onto black, resized by the
 * browser's canvas with smoothing (bilinear-like; not the same filter as the server's libvips
 * resize, so values may differ slightly).
 */
export async function imageToRgb(file: Blob, [h, w]: [number, number]): Promise<Float32Array> {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const canvas = new OffscreenCanvas(w, h);
  const g = canvas.getContext('2d');
  if (g === null) throw new Error('this browser has no 2D canvas');
  g.fillStyle = '#000';
  g.fillRect(0, 0, w, h);
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = 'high';
  g.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  const rgba = g.getImageData(0, 0, w, h).data;
  const rgb = new Float32Array(w * h * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i] ?? 0;
    rgb[j + 1] = rgba[i + 1] ?? 0;
    rgb[j + 2] = rgba[i + 2] ?? 0;
  }
  return rgb;
}
