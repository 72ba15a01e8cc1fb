import { extname } from 'node:path';

const TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};

/**
 * Content type of an image from its extension (the IMAGE_EXTENSIONS of lib/storage/keys.ts),
 * or undefined for anything else. Upload does not decode; the extractor decides finally.
 */
export function imageContentType(fileName: string): string | undefined {
  return TYPES[extname(fileName).toLowerCase()];
}
