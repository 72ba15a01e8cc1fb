/**
 * Persistence for the in-memory S3 emulator: every object is mirrored to
 * `{root}/{bucket}/{key}` with a sidecar `{root}/{bucket}/{key}.meta.json` (key, ETag,
 * content type, user metadata, size, MD5), so `./.tlearn/s3/` can be browsed like the bucket and
 * a restart restores it.
 *
 * Writes are atomic (temp file in `tmpDir` on the same disk, then rename) and ordered per key, so
 * a crash leaves either the old or the new file, never half of one; a data file whose MD5 does
 * not match its sidecar (a crash between the two renames) is skipped at restore with a warning.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { z } from 'zod';
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';

/** An object as mirrored: body plus what S3 returns with it. */
export interface MirroredObject {
  key: string;
  body: Uint8Array;
  /** ETag without quotes (multipart ETags keep their `-N` suffix). */
  etag: string;
  contentType: string;
  metadata: Record<string, string>;
  lastModified: Date;
}

/** Reads and writes the on-disk copy of the emulator's buckets. */
export interface DiskMirror {
  /** Directory holding one folder per bucket. */
  readonly root: string;
  /** Queues a write of this snapshot of the object (returns at once; `flush()` awaits it). */
  write(bucket: string, object: MirroredObject): void;
  /** Queues the removal of an object. */
  remove(bucket: string, key: string): void;
  /** Resolves when every queued write and removal is on disk. */
  flush(): Promise<void>;
  /** Resolves when the writes and removals queued so far are on disk (later ones are not awaited). */
  settled(): Promise<void>;
  /** Reads back every intact object, bucket by bucket (for restore at startup). */
  readAll(): AsyncGenerator<{ bucket: string; object: MirroredObject }>;
}

const META_SUFFIX = '.meta.json';
/** Linux/macOS allow 255 bytes per path segment; leave room for the sidecar suffix. */
const MAX_SEGMENT_BYTES = 255 - META_SUFFIX.length;

const Meta = z.object({
  key: z.string(),
  etag: z.string(),
  contentType: z.string(),
  metadata: z.record(z.string()),
  lastModified: z.string().datetime(),
  size: z.number().int().nonnegative(),
  md5: z.string().regex(/^[0-9a-f]{32}$/),
});
type Meta = z.infer<typeof Meta>;

/**
 * Maps one key segment to a safe, distinct file name. S3 keys may hold `.`/`..`/empty segments,
 * characters file systems reject, or end in `.meta.json` (which would collide with a sidecar):
 * those are percent-escaped. `%` itself is escaped, so the mapping stays one-to-one. Over-long
 * segments are shortened with a hash (the sidecar keeps the real key, so nothing is lost).
 */
export function encodeKeySegment(segment: string): string {
  if (segment === '') return '%empty';
  if (segment === '.') return '%2E';
  if (segment === '..') return '%2E%2E';
  let out = '';
  for (const ch of segment) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '%' || code < 0x20 || code === 0x7f || '\\:*?"<>|'.includes(ch)) {
      out += `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
    } else {
      out += ch;
    }
  }
  if (out.endsWith(META_SUFFIX)) out = `${out.slice(0, -'.json'.length)}%2Ejson`;
  if (Buffer.byteLength(out, 'utf8') > MAX_SEGMENT_BYTES) {
    const hash = createHash('sha256').update(segment).digest('hex').slice(0, 32);
    out = `${[...out].slice(0, 80).join('')}%H${hash}`;
  }
  return out;
}

/** Relative file path of a key's data file (segments encoded, joined with the OS separator). */
export function keyToRelativePath(key: string): string {
  return key.split('/').map(encodeKeySegment).join(sep);
}

function md5Hex(body: Uint8Array): string {
  return createHash('md5').update(body).digest('hex');
}

/**
 * Opens (creating if needed) a mirror under `root`, using `tmpDir` for in-progress writes; temp
 * files left by a crash are removed here.
 */
export async function createDiskMirror(opts: {
  root: string;
  tmpDir: string;
  log: Log;
}): Promise<DiskMirror> {
  const { root, tmpDir, log } = opts;
  await mkdir(root, { recursive: true });
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });

  /** Last queued operation per object, so operations on one key apply in order. */
  const pending = new Map<string, Promise<void>>();

  const atomicWrite = async (path: string, data: Uint8Array | string): Promise<void> => {
    const tmp = join(tmpDir, randomUUID());
    try {
      await writeFile(tmp, data);
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  };

  const pruneEmptyDirs = async (from: string, stopAt: string): Promise<void> => {
    let dir = from;
    while (dir.startsWith(stopAt + sep)) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty (or gone): stop climbing
      }
      dir = dirname(dir);
    }
  };

  const enqueue = (bucket: string, key: string, op: () => Promise<void>): void => {
    const id = `${bucket}\u0000${key}`;
    const previous = pending.get(id) ?? Promise.resolve();
    const next = previous
      .then(op)
      .catch((err: unknown) => {
        log.warn(`could not mirror s3://${bucket}/${key} to disk; it lives in memory only`, {
          error: describeError(err),
        });
      })
      .finally(() => {
        if (pending.get(id) === next) pending.delete(id);
      });
    pending.set(id, next);
  };

  const dataPath = (bucket: string, key: string): string =>
    join(root, encodeKeySegment(bucket), keyToRelativePath(key));

  return {
    root,
    write(bucket, object) {
      enqueue(bucket, object.key, async () => {
        const path = dataPath(bucket, object.key);
        const meta: Meta = {
          key: object.key,
          etag: object.etag,
          contentType: object.contentType,
          metadata: object.metadata,
          lastModified: object.lastModified.toISOString(),
          size: object.body.byteLength,
          md5: md5Hex(object.body),
        };
        await atomicWrite(path, object.body);
        await atomicWrite(path + META_SUFFIX, `${JSON.stringify(meta, null, 2)}\n`);
      });
    },
    remove(bucket, key) {
      enqueue(bucket, key, async () => {
        const path = dataPath(bucket, key);
        // Sidecar first: a data file without a sidecar is ignored at restore.
        await unlink(path + META_SUFFIX).catch(ignoreMissing);
        await unlink(path).catch(ignoreMissing);
        await pruneEmptyDirs(dirname(path), join(root, encodeKeySegment(bucket)));
      });
    },
    async flush() {
      while (pending.size > 0) await Promise.all([...pending.values()]);
    },
    async settled() {
      await Promise.all([...pending.values()]);
    },
    async *readAll() {
      const buckets = await readdir(root, { withFileTypes: true });
      for (const b of buckets) {
        if (!b.isDirectory()) continue;
        const bucketDir = join(root, b.name);
        const files = (await readdir(bucketDir, { recursive: true })).filter((f) => f.endsWith(META_SUFFIX));
        files.sort();
        for (const rel of files) {
          const metaPath = join(bucketDir, rel);
          const object = await readMirrored(metaPath, log);
          if (object) yield { bucket: b.name, object };
        }
      }
    },
  };
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

async function readMirrored(metaPath: string, log: Log): Promise<MirroredObject | undefined> {
  const where = relative(process.cwd(), metaPath);
  let meta: Meta;
  try {
    meta = Meta.parse(JSON.parse(await readFile(metaPath, 'utf8')));
  } catch (err) {
    log.warn(`skipping ${where}: not a valid sidecar`, { error: describeError(err) });
    return undefined;
  }
  let body: Buffer;
  try {
    body = await readFile(metaPath.slice(0, -META_SUFFIX.length));
  } catch (err) {
    log.warn(`skipping s3 key '${meta.key}': its data file is missing`, { error: describeError(err) });
    return undefined;
  }
  if (body.byteLength !== meta.size || md5Hex(body) !== meta.md5) {
    log.warn(`skipping s3 key '${meta.key}': data file does not match its sidecar (interrupted write)`);
    return undefined;
  }
  return {
    key: meta.key,
    body,
    etag: meta.etag,
    contentType: meta.contentType,
    metadata: meta.metadata,
    lastModified: new Date(meta.lastModified),
  };
}
