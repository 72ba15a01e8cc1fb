import { describe, expect, it } from 'vitest';
import { isSupportedFormat, sniffImageFormat } from '../../../lib/images/format.ts';
import { makeImage, type TestImageFormat } from '../../helpers/images.ts';

describe('sniffImageFormat', () => {
  it.each<TestImageFormat>(['jpeg', 'png', 'webp', 'gif', 'tiff'])('recognises %s', async (format) => {
    const img = await makeImage(format, { width: 4, height: 4, seed: 2 });
    expect(sniffImageFormat(img)).toBe(format);
    expect(isSupportedFormat(sniffImageFormat(img))).toBe(true);
  });

  it.each<[string, Uint8Array, string]>([
    ['an iPhone photo', Buffer.from('\0\0\0\x18ftypheic\0\0\0\0', 'latin1'), 'heic'],
    ['an AVIF', Buffer.from('\0\0\0\x1cftypavif\0\0\0\0', 'latin1'), 'avif'],
    ['a video', Buffer.from('\0\0\0\x20ftypisom\0\0\0\0', 'latin1'), 'mp4'],
    ['a PDF', Buffer.from('%PDF-1.4\n'), 'pdf'],
    ['an SVG with a BOM and a prolog', Buffer.from('\uFEFF<?xml version="1.0"?>\n<svg width="1"/>'), 'svg'],
    ['an HTML error page', Buffer.from('<!DOCTYPE html><html><body>403</body></html>'), 'html'],
    ['a JSON body', Buffer.from('{"image": "…"}'), 'json'],
    ['plain text', Buffer.from('cat,dog\n1,2\n'), 'text'],
    ['a zip', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0]), 'zip'],
    ['a BMP', Buffer.from('BM\x36\0\0\0', 'latin1'), 'bmp'],
    ['random binary', Buffer.from([0, 1, 2, 3, 0xff, 0xfe]), 'unknown'],
    ['nothing', new Uint8Array(0), 'unknown'],
  ])('names %s', (_what, bytes, format) => {
    expect(sniffImageFormat(bytes)).toBe(format);
    expect(isSupportedFormat(format)).toBe(false);
  });
});
