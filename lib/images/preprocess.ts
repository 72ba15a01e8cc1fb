/**
 * Image decoding and VGG16 "caffe" preprocessing, shared by the extractor Lambda, the API and the
 * CLI so that a feature computed anywhere is computed the same way.
 *
 * Choices (they are part of the feature spec's `preprocessing: caffe` + `resize` fields):
 * - Decode with sharp/libvips; only jpeg, png, webp, gif and tiff are accepted; for animated or
 *   multi-page files the first frame/page is used.
 * - `failOn: 'error'`: truncated or corrupt pixel data is an error (the default `'warning'` would also
 *   reject the many real-world JPEGs with harmless warnings such as extraneous bytes; `'none'`
 *   would silently decode a truncated file with a grey bottom).
 * - EXIF orientation is applied (a phone photo comes out upright, like a browser shows it).
 * - Alpha is flattened onto black (Keras `load_img` converts RGBA with PIL's `convert('RGB')`, which
 *   drops alpha and keeps the stored colour; with premultiplied/transparent-black pixels, the usual
 *   case, that is black too).
 * - Converted to 8-bit sRGB with 3 channels: grey is replicated, CMYK goes through an ICC transform,
 *   16-bit is scaled to 8-bit.
 * - Resized to exactly the network input with `fit: 'fill'` (aspect not kept, like Keras
 *   `load_img(target_size=…)`), with the named kernel (see `SHARP_KERNEL`), no JPEG shrink-on-load
 *   shortcut (`fastShrinkOnLoad: false`) so results do not depend on the source's DCT scaling.
 * - Keras `vgg16.preprocess_input` ("caffe" mode): RGB → BGR, subtract the ImageNet means
 *   [103.939, 116.779, 123.68] in float32 (as NumPy/TF do), no scaling.
 */
import sharp from 'sharp';
import { ImageDecodeError } from '../errors.ts';
import type { ResizeKernel } from '../model/spec.ts';
import {
  isSupportedFormat,
  SUPPORTED_IMAGE_FORMATS,
  type SupportedImageFormat,
  sniffImageFormat,
} from './format.ts';

// Every image is decoded once: libvips' operation cache (up to 50 MB by default) would only hold
// memory in the processes that decode (the local stack: docs/BENCHMARKS.md, "The local stack").
sharp.cache(false);

/** Decoded-pixel limit (width × height) of every input: 40 megapixels (docs/ARCHITECTURE.md "HTTP API"). */
export const DEFAULT_LIMIT_INPUT_PIXELS = 40_000_000;

/**
 * ImageNet channel means in BGR order, rounded to float32 once: Keras subtracts a Python float
 * from a float32 array, which NumPy and TF do in float32, so `fround(v - fround(mean))` matches it.
 */
export const CAFFE_MEAN_BGR: readonly [number, number, number] = [
  Math.fround(103.939),
  Math.fround(116.779),
  Math.fround(123.68),
];

/**
 * sharp kernel used for each spec kernel name. 'bilinear' → sharp's `linear`: libvips' reduce with
 * a triangle filter whose support widens with the reduction factor (antialiased, like PIL's
 * `Image.BILINEAR` that Keras uses for `interpolation='bilinear'`), after an exact box pre-shrink
 * for large factors. 'nearest' → sharp's `nearest` (Keras' default interpolation).
 */
export const SHARP_KERNEL: Record<ResizeKernel, keyof sharp.KernelEnum> = {
  bilinear: 'linear',
  nearest: 'nearest',
};

export interface DecodeOptions {
  /** Output [height, width] (same order as a spec's `input`); omit to keep the decoded size. */
  size?: readonly [number, number];
  /** @default 'bilinear' */
  resize?: ResizeKernel;
  /** @default DEFAULT_LIMIT_INPUT_PIXELS */
  limitInputPixels?: number;
}

/** 8-bit RGB pixels, row-major HWC. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  /** Format of the encoded input. */
  format: SupportedImageFormat;
}

/** What an encoded image declares, after validation (no pixels decoded). */
export interface ImageInfo {
  format: SupportedImageFormat;
  /** Width as stored (before EXIF orientation). */
  width: number;
  /** Height of the first page/frame as stored. */
  height: number;
  /** Pages/frames in the file (only the first is used). */
  pages: number;
  hasAlpha: boolean;
  /** EXIF orientation 1-8, if present. */
  orientation: number | undefined;
}

const accepted = SUPPORTED_IMAGE_FORMATS.join(', ');

function openImage(input: Uint8Array, limitInputPixels: number | false): sharp.Sharp {
  // pages/page: first frame of a GIF/WebP animation or first page of a TIFF.
  return sharp(input, { failOn: 'error', limitInputPixels, pages: 1, page: 0 });
}

/** Maps a libvips/sharp error to the ImageDecodeError kind a user can act on. */
function toDecodeError(err: unknown, format: string): ImageDecodeError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(msg))
    return new ImageDecodeError('ImageTooLarge', `${format} image exceeds the pixel limit: ${msg}`, {
      cause: err,
    });
  // A file whose magic bytes say jpeg/png/… but that libvips cannot even open is broken, not foreign
  // (a TIFF cut before its directory, a JPEG of a few bytes).
  if (/unsupported image format/i.test(msg) && !isSupportedFormat(format))
    return new ImageDecodeError('UnsupportedImageFormat', `not a decodable image (accepted: ${accepted})`, {
      cause: err,
    });
  return new ImageDecodeError(
    'CorruptImage',
    `${format} image is truncated or corrupt and cannot be decoded (${msg.split('\n')[0]})`,
    { cause: err },
  );
}

async function validate(
  input: Uint8Array,
  limitInputPixels: number,
): Promise<{ image: sharp.Sharp; info: ImageInfo }> {
  if (input.length === 0) throw new ImageDecodeError('EmptyImage', 'image is empty (0 bytes)');
  const sniffed = sniffImageFormat(input);
  if (sniffed !== 'unknown' && !isSupportedFormat(sniffed)) {
    throw new ImageDecodeError(
      'UnsupportedImageFormat',
      `image format '${sniffed}' is not supported (accepted: ${accepted})`,
    );
  }
  let meta: sharp.Metadata;
  try {
    // Header only, without sharp's own limit, so the size check below can name the dimensions.
    meta = await openImage(input, false).metadata();
  } catch (err) {
    throw toDecodeError(err, sniffed);
  }
  // sharp may recognise formats the sniffer does not (ppm, fits, raw vips…): still not accepted.
  const format = meta.format === 'jpg' ? 'jpeg' : meta.format;
  if (!isSupportedFormat(format)) {
    throw new ImageDecodeError(
      'UnsupportedImageFormat',
      `image format '${format}' is not supported (accepted: ${accepted})`,
    );
  }
  const width = meta.width;
  const height = meta.pageHeight ?? meta.height;
  if (!width || !height)
    throw new ImageDecodeError('CorruptImage', `${format} image declares no width/height`);
  // Checked here, from the header, so a tiny file declaring a huge size never allocates anything.
  if (width * height > limitInputPixels) {
    throw new ImageDecodeError(
      'ImageTooLarge',
      `${format} image is ${width}x${height} = ${((width * height) / 1e6).toFixed(1)} megapixels, over the limit of ${(limitInputPixels / 1e6).toFixed(1)} megapixels`,
    );
  }
  return {
    image: openImage(input, limitInputPixels),
    info: {
      format,
      width,
      height,
      pages: meta.pages ?? 1,
      hasAlpha: meta.hasAlpha ?? false,
      orientation: meta.orientation,
    },
  };
}

/**
 * Reads an encoded image's header and checks it is one the pipeline takes (format, size).
 * Throws ImageDecodeError (`EmptyImage`, `UnsupportedImageFormat`, `CorruptImage`, `ImageTooLarge`).
 */
export async function imageInfo(
  input: Uint8Array,
  opts: { limitInputPixels?: number } = {},
): Promise<ImageInfo> {
  return (await validate(input, opts.limitInputPixels ?? DEFAULT_LIMIT_INPUT_PIXELS)).info;
}

/**
 * Decodes an image to upright 8-bit sRGB, alpha flattened onto black, optionally resized to
 * exactly `size` ([height, width], aspect not kept). See the module comment for every choice.
 * Throws ImageDecodeError for anything that cannot be used.
 *
 * @example const { data, width, height } = await decodeToRgb(buf, { size: [150, 150] });
 */
export async function decodeToRgb(input: Uint8Array, opts: DecodeOptions = {}): Promise<RgbImage> {
  const { image, info } = await validate(input, opts.limitInputPixels ?? DEFAULT_LIMIT_INPUT_PIXELS);
  let pipeline = image
    .rotate() // EXIF orientation
    .flatten({ background: { r: 0, g: 0, b: 0 } })
    .toColourspace('srgb');
  if (opts.size) {
    const [h, w] = opts.size;
    pipeline = pipeline.resize(w, h, {
      fit: 'fill',
      kernel: SHARP_KERNEL[opts.resize ?? 'bilinear'],
      fastShrinkOnLoad: false,
    });
  }
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    out = await pipeline.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw toDecodeError(err, info.format);
  }
  if (out.info.channels !== 3) {
    // Not expected after toColourspace('srgb') + removeAlpha; guard so a libvips change cannot
    // silently feed the network misaligned channels.
    throw new ImageDecodeError(
      'CorruptImage',
      `${info.format} image decoded to ${out.info.channels} channels instead of 3`,
    );
  }
  return {
    data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length),
    width: out.info.width,
    height: out.info.height,
    format: info.format,
  };
}

/**
 * Keras `vgg16.preprocess_input` ("caffe"): interleaved RGB bytes → BGR float32 minus the
 * ImageNet means. Length is preserved (h*w*3).
 */
export function rgbToCaffe(rgb: Uint8Array): Float32Array {
  const out = new Float32Array(rgb.length);
  const [mb, mg, mr] = CAFFE_MEAN_BGR;
  for (let i = 0; i + 2 < rgb.length; i += 3) {
    out[i] = (rgb[i + 2] ?? 0) - mb;
    out[i + 1] = (rgb[i + 1] ?? 0) - mg;
    out[i + 2] = (rgb[i] ?? 0) - mr;
  }
  return out;
}

export interface PreprocessOptions {
  /** Network input [height, width] (a spec's `input`). */
  size: readonly [number, number];
  /** @default 'bilinear' */
  resize?: ResizeKernel;
  /** @default DEFAULT_LIMIT_INPUT_PIXELS */
  limitInputPixels?: number;
}

/**
 * Encoded image → the network input: HWC float32 of length h*w*3, BGR, caffe mean-subtracted
 * (what `FeatureExtractor.extractBatch` takes). Throws ImageDecodeError for unusable input.
 *
 * @example const x = await preprocessImage(jpegBytes, { size: spec.input, resize: spec.resize });
 */
export async function preprocessImage(input: Uint8Array, opts: PreprocessOptions): Promise<Float32Array> {
  const rgb = await decodeToRgb(input, opts);
  const [h, w] = opts.size;
  if (rgb.width !== w || rgb.height !== h) {
    throw new ImageDecodeError(
      'CorruptImage',
      `image resized to ${rgb.width}x${rgb.height} instead of ${w}x${h}`,
    );
  }
  return rgbToCaffe(rgb.data);
}
