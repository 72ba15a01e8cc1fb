import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { DATASETS_PREFIX, imageKey, parseImageKey } from '../storage/keys.ts';
import { imageContentType } from './content-type.ts';

/** Why a local file is not uploaded. */
export type UploadSkipReason =
  | 'hidden'
  | 'not-an-image'
  | 'invalid-label'
  | 'zero-byte'
  | 'too-large'
  | 'key-too-long'
  | 'duplicate-key'
  | 'not-a-file';

/** Human wording of each reason, for summaries. */
export const SKIP_REASON_TEXT: Record<UploadSkipReason, string> = {
  hidden: 'hidden files and folders',
  'not-an-image': 'not an image (by extension)',
  'invalid-label': 'no valid label (put it in a label folder or name it like cat.12.jpg)',
  'zero-byte': 'empty (zero bytes)',
  'too-large': 'too large',
  'key-too-long': 'S3 key too long',
  'duplicate-key': 'same S3 key as another file',
  'not-a-file': 'not a regular file (special file or linked folder)',
};

/** 3000 → '3.0 kB', 52_000_000 → '52.0 MB'. */
export function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** A file to upload. */
export interface UploadFile {
  /** Path on disk. */
  path: string;
  /** Path shown to the user (relative to the given root, with the root). */
  display: string;
  key: string;
  label: string;
  size: number;
  contentType: string;
}

/** A file (or hidden folder) left out, with the reason. */
export interface SkippedFile {
  display: string;
  reason: UploadSkipReason;
  detail: string;
}

/** What `scanUploadSources` found. */
export interface ScanResult {
  files: UploadFile[];
  skipped: SkippedFile[];
}

/** Options of `scanUploadSources`. */
export interface ScanOptions {
  /** Files larger than this are skipped. */
  maxBytes: number;
}

/**
 * The S3 key of a file at `rel` (path segments below an upload root) in a dataset, or why it
 * has none. A first folder is the label and deeper folders stay in the file name; a file at the
 * root takes its label from its name (Kaggle `cat.12.jpg` → `cat`) and is stored in the label
 * folder like the rest, so a dataset lists the same whichever way it was uploaded.
 * Names are NFC-normalized: macOS hands out decomposed names, and `café` must be one label.
 */
export function keyForRelativePath(
  dataset: string,
  segments: readonly string[],
): { ok: true; key: string; label: string } | { ok: false; reason: UploadSkipReason; detail: string } {
  const parts = segments.map((s) => s.normalize('NFC'));
  const hidden = parts.find((p) => p.startsWith('.'));
  if (hidden !== undefined) return { ok: false, reason: 'hidden', detail: `hidden '${hidden}'` };
  const parsed = parseImageKey(`${DATASETS_PREFIX}${dataset}/${parts.join('/')}`);
  if (!parsed.ok) {
    const reason: UploadSkipReason =
      parsed.reason === 'not-an-image'
        ? 'not-an-image'
        : parsed.reason === 'hidden-file'
          ? 'hidden'
          : parsed.reason === 'key-too-long'
            ? 'key-too-long'
            : 'invalid-label';
    return { ok: false, reason, detail: parsed.detail };
  }
  const { label, file } = parsed.image;
  const key = imageKey(dataset, label, file);
  // The Kaggle form moves into its label folder: check the longer key still fits.
  const again = parseImageKey(key);
  if (!again.ok) return { ok: false, reason: 'key-too-long', detail: again.detail };
  return { ok: true, key, label };
}

/**
 * Walks upload roots (folders, or single files taken Kaggle style) and sorts every file into
 * "upload to this key" or "skipped, because". Hidden folders (`.git`, `.thumbnails`) are not
 * entered; linked folders are not followed (no cycles). Never throws for one bad file.
 */
export async function scanUploadSources(
  roots: readonly string[],
  dataset: string,
  opts: ScanOptions,
): Promise<ScanResult> {
  const files: UploadFile[] = [];
  const skipped: SkippedFile[] = [];
  const byKey = new Map<string, UploadFile>();

  const consider = async (path: string, display: string, segments: string[], size?: number) => {
    const k = keyForRelativePath(dataset, segments);
    if (!k.ok) {
      skipped.push({ display, reason: k.reason, detail: k.detail });
      return;
    }
    const bytes = size ?? (await stat(path)).size;
    if (bytes === 0) {
      skipped.push({ display, reason: 'zero-byte', detail: 'file is empty' });
      return;
    }
    if (bytes > opts.maxBytes) {
      skipped.push({
        display,
        reason: 'too-large',
        detail: `${formatBytes(bytes)} is over the ${formatBytes(opts.maxBytes)} limit (--max-size)`,
      });
      return;
    }
    const other = byKey.get(k.key);
    if (other) {
      skipped.push({
        display,
        reason: 'duplicate-key',
        detail: `${k.key} is already taken by ${other.display}`,
      });
      return;
    }
    const file: UploadFile = {
      path,
      display,
      key: k.key,
      label: k.label,
      size: bytes,
      contentType: imageContentType(path) ?? 'application/octet-stream',
    };
    byKey.set(k.key, file);
    files.push(file);
  };

  const walk = async (root: string, dir: string): Promise<void> => {
    const entries: Dirent[] = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const segments = relative(root, path).split(sep);
      const display = join(root, ...segments);
      if (entry.isDirectory()) {
        if (entry.name.startsWith('.'))
          skipped.push({
            display: `${display}${sep}`,
            reason: 'hidden',
            detail: `hidden folder '${entry.name}'`,
          });
        else await walk(root, path);
      } else if (entry.isFile()) {
        await consider(path, display, segments);
      } else if (entry.isSymbolicLink()) {
        const st = await stat(path).catch(() => undefined);
        if (st?.isFile()) await consider(path, display, segments, st.size);
        else skipped.push({ display, reason: 'not-a-file', detail: 'a link to a folder or to nothing' });
      } else {
        skipped.push({ display, reason: 'not-a-file', detail: 'not a regular file' });
      }
    }
  };

  for (const root of roots) {
    const st = await stat(root);
    if (st.isDirectory()) await walk(root, root);
    else if (st.isFile()) await consider(root, root, [basename(root)], st.size);
    else skipped.push({ display: root, reason: 'not-a-file', detail: 'not a regular file' });
  }
  return { files, skipped };
}
