import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageDecodeError } from '../../../lib/errors.ts';
import { decodeToRgb, imageInfo, preprocessImage, rgbToCaffe } from '../../../lib/images/preprocess.ts';
import {
  makeImage,
  makeMultiFrameImage,
  pngDeclaringSize,
  type TestImageFormat,
  truncateImage,
} from '../../helpers/images.ts';

/** The BGR-minus-mean triple Keras computes (in float32) for one RGB pixel. */
function caffe(r: number, g: number, b: number): [number, number, number] {
  return [
    Math.fround(b - Math.fround(103.939)),
    Math.fround(g - Math.fround(116.779)),
    Math.fround(r - Math.fround(123.68)),
  ];
}

async function expectDecodeError(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageDecodeError);
  expect(err).toMatchObject({ code, status: 422 });
  expect((err as Error).message).toMatch(message);
}

describe('preprocessImage', () => {
  it('turns a solid colour into the exact BGR-minus-mean values at the requested size', async () => {
    // prepare
    const png = await makeImage('png', { width: 12, height: 9, color: [10, 200, 77] });

    // act
    const x = await preprocessImage(png, { size: [4, 5] });

    // assess
    expect(x).toBeInstanceOf(Float32Array);
    expect(x.length).toBe(4 * 5 * 3);
    const want = caffe(10, 200, 77);
    for (let i = 0; i < x.length; i += 3) expect([x[i], x[i + 1], x[i + 2]]).toEqual(want);
  });

  it('puts blue first and red last (BGR) for a red|blue image', async () => {
    // prepare: 2x1, left pixel red, right pixel blue
    const raw = Buffer.from([255, 0, 0, 0, 0, 255]);
    const png = await sharp(raw, { raw: { width: 2, height: 1, channels: 3 } })
      .png()
      .toBuffer();

    // act
    const x = await preprocessImage(png, { size: [1, 2] });

    // assess
    expect(Array.from(x)).toEqual([...caffe(255, 0, 0), ...caffe(0, 0, 255)]);
    expect(x[2]).toBeCloseTo(255 - 123.68, 4); // red lands in the last channel
    expect(x[3]).toBeCloseTo(255 - 103.939, 4); // blue lands in the first channel
  });

  it('applies the EXIF orientation so a rotated JPEG comes out upright', async () => {
    // prepare: stored 16 wide x 8 high, left half red, right half blue, orientation 6 (rotate 90° CW)
    const raw = Buffer.alloc(16 * 8 * 3);
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 16; x++) raw.set(x < 8 ? [255, 0, 0] : [0, 0, 255], (y * 16 + x) * 3);
    const jpeg = await sharp(raw, { raw: { width: 16, height: 8, channels: 3 } })
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
      .toBuffer();
    expect((await imageInfo(jpeg)).orientation).toBe(6);

    // act
    const rgb = await decodeToRgb(jpeg);

    // assess: upright is 8 wide x 16 high, red on top (the stored left), blue at the bottom
    expect([rgb.width, rgb.height]).toEqual([8, 16]);
    const px = (x: number, y: number) => Array.from(rgb.data.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3));
    const [r0, , b0] = px(4, 2);
    const [r1, , b1] = px(4, 13);
    expect(r0).toBeGreaterThan(200);
    expect(b0).toBeLessThan(50);
    expect(r1).toBeLessThan(50);
    expect(b1).toBeGreaterThan(200);
  });

  it('flattens transparency onto black', async () => {
    // prepare
    const transparent = await makeImage('png', { width: 4, height: 4, color: [200, 100, 50, 0] });
    const half = await makeImage('png', { width: 4, height: 4, color: [200, 100, 50, 128] });

    // act
    const x0 = await preprocessImage(transparent, { size: [4, 4] });
    const rgbHalf = await decodeToRgb(half);

    // assess
    expect(Array.from(x0.subarray(0, 3))).toEqual(caffe(0, 0, 0));
    expect(Array.from(rgbHalf.data.subarray(0, 3))).toEqual([100, 50, 25]);
  });

  it('replicates a grayscale image into three equal channels', async () => {
    // prepare
    const grey = await makeImage('png', { width: 4, height: 4, color: [90, 90, 90], channels: 1 });
    expect((await sharp(grey).metadata()).channels).toBe(1);

    // act
    const rgb = await decodeToRgb(grey, { size: [2, 2] });

    // assess
    expect(Array.from(rgb.data)).toEqual(new Array(2 * 2 * 3).fill(90));
  });

  it('converts 16-bit images to 8 bits', async () => {
    // prepare: one pixel at 16-bit (65535, 32896, 0)
    const px = Buffer.alloc(6);
    px.writeUInt16LE(65535, 0);
    px.writeUInt16LE(32896, 2);
    px.writeUInt16LE(0, 4);
    const png16 = await sharp(new Uint16Array(px.buffer, px.byteOffset, 3), {
      raw: { width: 1, height: 1, channels: 3 },
    })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');

    // act
    const rgb = await decodeToRgb(png16);

    // assess
    expect(Array.from(rgb.data)).toEqual([255, 128, 0]);
  });

  it('converts a CMYK JPEG to sRGB', async () => {
    // prepare
    const cmyk = await sharp(await makeImage('png', { width: 4, height: 4, color: [200, 30, 30] }))
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');

    // act
    const rgb = await decodeToRgb(cmyk);

    // assess: three channels, still clearly red (the ICC round trip is not exact)
    expect(rgb.data.length).toBe(4 * 4 * 3);
    expect(rgb.data[0]).toBeGreaterThan(150);
    expect(rgb.data[1]).toBeLessThan(80);
    expect(rgb.data[2]).toBeLessThan(80);
  });

  it.each<[TestImageFormat, number]>([
    ['jpeg', 3],
    ['png', 0],
    ['webp', 6],
    ['gif', 0],
    ['tiff', 0],
  ])('decodes %s (within %i levels of the source colour)', async (format, tolerance) => {
    // prepare
    const img = await makeImage(format, { width: 16, height: 16, color: [40, 120, 220] });

    // act
    const rgb = await decodeToRgb(img, { size: [8, 8] });

    // assess
    expect(rgb.format).toBe(format);
    for (let i = 0; i < rgb.data.length; i += 3) {
      expect(Math.abs((rgb.data[i] ?? 0) - 40)).toBeLessThanOrEqual(tolerance);
      expect(Math.abs((rgb.data[i + 1] ?? 0) - 120)).toBeLessThanOrEqual(tolerance);
      expect(Math.abs((rgb.data[i + 2] ?? 0) - 220)).toBeLessThanOrEqual(tolerance);
    }
  });

  it.each(['gif', 'tiff', 'webp'] as const)(
    'uses only the first frame of a multi-frame %s',
    async (format) => {
      // prepare: red frame, then blue frame
      const img = await makeMultiFrameImage(format, [
        [255, 0, 0],
        [0, 0, 255],
      ]);
      expect((await imageInfo(img)).pages).toBe(2);

      // act
      const rgb = await decodeToRgb(img);

      // assess
      expect([rgb.width, rgb.height]).toEqual([8, 8]);
      expect(Array.from(rgb.data.subarray(0, 3))).toEqual([255, 0, 0]);
      expect(Array.from(rgb.data.subarray(-3))).toEqual([255, 0, 0]);
    },
  );

  it('resizes without keeping the aspect ratio, with either kernel', async () => {
    // prepare: 40x10 image, left half black, right half white
    const raw = Buffer.alloc(40 * 10 * 3);
    for (let y = 0; y < 10; y++)
      for (let x = 20; x < 40; x++) raw.fill(255, (y * 40 + x) * 3, (y * 40 + x) * 3 + 3);
    const png = await sharp(raw, { raw: { width: 40, height: 10, channels: 3 } })
      .png()
      .toBuffer();

    // act
    const nearest = await decodeToRgb(png, { size: [8, 8], resize: 'nearest' });
    const bilinear = await decodeToRgb(png, { size: [8, 8], resize: 'bilinear' });

    // assess: whole image squeezed (not cropped): left columns black, right columns white
    for (const rgb of [nearest, bilinear]) {
      expect([rgb.width, rgb.height]).toEqual([8, 8]);
      expect(rgb.data[0]).toBe(0);
      expect(rgb.data[7 * 3]).toBe(255);
    }
    // nearest only copies source values; bilinear blends at the edge
    expect(new Set(nearest.data)).toEqual(new Set([0, 255]));
    expect([...bilinear.data].some((v) => v > 0 && v < 255)).toBe(true);
  });
});

describe('rgbToCaffe', () => {
  it('subtracts the float32 ImageNet means from swapped channels', () => {
    const x = rgbToCaffe(new Uint8Array([1, 2, 3, 255, 128, 0]));
    expect(Array.from(x)).toEqual([...caffe(1, 2, 3), ...caffe(255, 128, 0)]);
  });
});

describe('image errors', () => {
  it('rejects empty input', async () => {
    await expectDecodeError(preprocessImage(new Uint8Array(0), { size: [32, 32] }), 'EmptyImage', /empty/);
  });

  it.each<[string, Uint8Array | Promise<Uint8Array>, RegExp]>([
    ['text', Buffer.from('just some words, not pixels\n'), /'text'/],
    [
      'svg',
      Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'),
      /'svg'/,
    ],
    ['pdf', Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n', 'latin1'), /'pdf'/],
    [
      'avif',
      sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } })
        .avif()
        .toBuffer(),
      /'avif'/,
    ],
    ['bmp', Buffer.from([0x42, 0x4d, 0x46, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0]), /'bmp'/],
    ['random binary', Buffer.from([0x00, 0x13, 0x37, 0x00, 0xfe, 0x01, 0x02, 0x03]), /not a decodable image/],
  ])('rejects %s as an unsupported format, naming it', async (_name, input, message) => {
    await expectDecodeError(
      preprocessImage(await input, { size: [32, 32] }),
      'UnsupportedImageFormat',
      message,
    );
  });

  it.each(['jpeg', 'png', 'webp', 'gif', 'tiff'] as const)(
    'rejects a truncated %s instead of decoding it grey',
    async (format) => {
      // prepare: noise does not compress, so half the file is half the pixels
      const full = await makeImage(format, { width: 96, height: 64, seed: 11 });

      // act + assess
      await expectDecodeError(
        preprocessImage(truncateImage(full, 0.5), { size: [32, 32] }),
        'CorruptImage',
        new RegExp(`${format} image is truncated or corrupt`),
      );
    },
  );

  it('rejects a tiny file that declares 50,000 x 50,000 pixels before decoding it', async () => {
    const bomb = pngDeclaringSize(50_000, 50_000);
    expect(bomb.length).toBeLessThan(200);
    await expectDecodeError(preprocessImage(bomb, { size: [32, 32] }), 'ImageTooLarge', /50000x50000/);
    await expectDecodeError(imageInfo(bomb), 'ImageTooLarge', /over the limit of 40\.0 megapixels/);
  });

  it('applies a custom pixel limit', async () => {
    const img = await makeImage('png', { width: 20, height: 20, color: [1, 2, 3] });
    await expectDecodeError(
      preprocessImage(img, { size: [32, 32], limitInputPixels: 399 }),
      'ImageTooLarge',
      /20x20/,
    );
    await expect(preprocessImage(img, { size: [4, 4], limitInputPixels: 400 })).resolves.toHaveLength(48);
  });
});
