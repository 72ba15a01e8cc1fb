/**
 * Image format detection from magic bytes. sharp can name only the formats it decodes; users
 * upload PDFs, HEIC photos and HTML error pages too, and the error should say what they sent.
 */

/** Formats the pipeline accepts: jpeg, png, webp, gif (first frame), tiff; docs/ARCHITECTURE.md "S3 layout". */
export const SUPPORTED_IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff'] as const;
export type SupportedImageFormat = (typeof SUPPORTED_IMAGE_FORMATS)[number];

/** What `sniffImageFormat` can name. `unknown` = binary it does not recognise. */
export type SniffedFormat =
  | SupportedImageFormat
  | 'svg'
  | 'heic'
  | 'avif'
  | 'jxl'
  | 'jp2'
  | 'bmp'
  | 'ico'
  | 'psd'
  | 'pdf'
  | 'html'
  | 'xml'
  | 'json'
  | 'zip'
  | 'gzip'
  | 'mp4'
  | 'text'
  | 'unknown';

/** Whether a format name is one the pipeline accepts. */
export function isSupportedFormat(format: string): format is SupportedImageFormat {
  return (SUPPORTED_IMAGE_FORMATS as readonly string[]).includes(format);
}

const startsWith = (buf: Uint8Array, bytes: readonly number[], at = 0): boolean =>
  buf.length >= at + bytes.length && bytes.every((b, i) => buf[at + i] === b);
const ascii = (buf: Uint8Array, from: number, to: number): string => {
  const part = buf.subarray(from, to); // clamps to the buffer, so short inputs are fine
  return Buffer.from(part.buffer, part.byteOffset, part.length).toString('latin1');
};

/**
 * Names the format of an encoded file from its first bytes (never throws, reads ≤ 1 KiB).
 * @example sniffImageFormat(await readFile('x.heic')) // 'heic'
 */
export function sniffImageFormat(buf: Uint8Array): SniffedFormat {
  if (startsWith(buf, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(buf, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  const head = ascii(buf, 0, 16);
  if (head.startsWith('GIF87a') || head.startsWith('GIF89a')) return 'gif';
  if (head.startsWith('RIFF') && ascii(buf, 8, 12) === 'WEBP') return 'webp';
  // Classic and Big TIFF, both byte orders.
  if (
    startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) ||
    startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a]) ||
    startsWith(buf, [0x49, 0x49, 0x2b, 0x00]) ||
    startsWith(buf, [0x4d, 0x4d, 0x00, 0x2b])
  )
    return 'tiff';
  if (ascii(buf, 4, 8) === 'ftyp') {
    const brand = ascii(buf, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1'].includes(brand)) return 'heic';
    return 'mp4';
  }
  if (startsWith(buf, [0xff, 0x0a]) || startsWith(buf, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return 'jxl';
  if (startsWith(buf, [0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(buf, [0xff, 0x4f, 0xff, 0x51]))
    return 'jp2';
  if (head.startsWith('BM')) return 'bmp';
  if (startsWith(buf, [0, 0, 1, 0])) return 'ico';
  if (head.startsWith('8BPS')) return 'psd';
  if (head.startsWith('%PDF')) return 'pdf';
  if (startsWith(buf, [0x50, 0x4b, 0x03, 0x04])) return 'zip';
  if (startsWith(buf, [0x1f, 0x8b])) return 'gzip';
  return sniffText(buf);
}

function sniffText(buf: Uint8Array): SniffedFormat {
  const sample = buf.subarray(0, 1024);
  if (sample.length === 0) return 'unknown';
  // Text = no NUL and mostly printable; UTF-8 multi-byte sequences count as printable.
  let printable = 0;
  for (const b of sample) {
    if (b === 0) return 'unknown';
    if (b >= 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) printable++;
  }
  if (printable / sample.length < 0.95) return 'unknown';
  const text = Buffer.from(sample)
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase();
  if (/<svg[\s>]/.test(text)) return 'svg';
  if (text.startsWith('<!doctype html') || text.startsWith('<html')) return 'html';
  if (text.startsWith('<?xml') || text.startsWith('<')) return 'xml';
  if (text.startsWith('{') || text.startsWith('[')) return 'json';
  return 'text';
}
