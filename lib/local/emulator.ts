/**
 * The local S3 + SQS endpoint: fauxqs 1.9 (in-memory, wire-compatible with the AWS SDK) bound to
 * loopback only, with a disk mirror so the bucket survives restarts.
 *
 * Why not `startFauxqs()`: it always listens on 0.0.0.0, which would publish an unauthenticated
 * S3 endpoint to the local network. We build the same app with `buildApp()` and listen on
 * 127.0.0.1 ourselves. fauxqs exports its store classes only as types, so they are loaded from
 * the package's own files (pinned `~1.9.2` in package.json); a hook on the S3 store's spy gives
 * every write and delete synchronously, with the stored object at hand.
 */

import { join } from 'node:path';
import { buildApp } from 'fauxqs';
import { ConfigError, describeError, TlearnError } from '../errors.ts';
import { LOCAL_CREDENTIALS } from '../storage/clients.ts';
import { normalizeEtag } from '../storage/s3.ts';
import { isAllowedUploadHeader, UPLOAD_CORS } from '../storage/upload-cors.ts';
import type { Log } from '../util/log.ts';
import { createDiskMirror, type DiskMirror } from './disk-mirror.ts';
import { guardEmulator } from './emulator-guard.ts';
import { LOCAL_ACCOUNT_ID } from './lambda-context.ts';
import { isLoopbackOrigin } from './loopback.ts';
import { indexS3Listing, type ListableS3Store, type S3ListingIndex } from './s3-listing.ts';

/** A stored object as the emulator reports it on a write. */
export interface EmulatedObject {
  key: string;
  body: Uint8Array;
  /** ETag without quotes. */
  etag: string;
  size: number;
  contentType: string;
  metadata: Record<string, string>;
  lastModified: Date;
}

/** A change to a bucket, reported synchronously when the emulator applies it. */
export type ObjectEvent =
  | { type: 'created'; bucket: string; object: EmulatedObject }
  | { type: 'removed'; bucket: string; key: string };

/** A running emulator. */
export interface LocalEmulator {
  /** `http://127.0.0.1:PORT`: the S3 and SQS endpoint (AWS_ENDPOINT_URL). */
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  /** Objects restored from the data dir at startup (they raised no events). */
  readonly restoredObjects: number;
  /** Creates a bucket (no-op if it exists). */
  createBucket(name: string): void;
  /** Creates a queue (no-op if it exists) and returns its URL and ARN. */
  createQueue(name: string, attributes?: Record<string, string>): { queueUrl: string; queueArn: string };
  /** Subscribes to object writes and deletes; returns an unsubscribe function. */
  onObjectEvent(listener: (event: ObjectEvent) => void): () => void;
  /** Resolves when the disk mirror has caught up with every write so far. */
  flush(): Promise<void>;
  /** Closes the server (open connections too) and flushes the mirror. */
  stop(): Promise<void>;
}

/** Options of {@link startLocalEmulator}. */
export interface LocalEmulatorOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one. @default 4566 */
  port?: number;
  region: string;
  /** Buckets to create. */
  buckets?: readonly string[];
  /** Mirror buckets to `{dataDir}/s3/` and restore from there; in-memory only when absent. */
  dataDir?: string;
  /**
   * Access key id → secret of the credentials presigned PUTs are signed with (checked as S3 does).
   * @default the local stack's fixed credentials (lib/storage/clients.ts)
   */
  presignSecrets?: Readonly<Record<string, string>>;
  log: Log;
}

/** A port could not be bound. */
export class PortInUseError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PortInUse', message, 500, options);
  }
}

// Shapes of fauxqs' internal stores that we use (see the module comment).
interface FauxS3Object {
  key: string;
  body: Buffer;
  contentType: string;
  contentLength: number;
  etag: string;
  lastModified: Date;
  metadata: Record<string, string>;
}
interface SpyLike {
  addMessage(message: { service: string; status: string; bucket?: string; key?: string }): void;
}
interface FauxS3Store extends ListableS3Store<FauxS3Object> {
  spy?: SpyLike;
  createBucket(name: string): void;
  putObject(
    bucket: string,
    key: string,
    body: Buffer,
    contentType?: string,
    metadata?: Record<string, string>,
  ): FauxS3Object;
  headObject(bucket: string, key: string): FauxS3Object;
}
interface FauxSqsStore {
  host: string;
  region?: string;
  createQueue(name: string, url: string, arn: string, attributes?: Record<string, string>): unknown;
  getQueueByName(name: string): { url: string; arn: string } | undefined;
}
interface FauxSnsStore {
  region?: string;
}
interface FauxStoreModules {
  S3Store: new () => FauxS3Store;
  SqsStore: new () => FauxSqsStore;
  SnsStore: new () => FauxSnsStore;
}

async function loadFauxqsStores(): Promise<FauxStoreModules> {
  const entry = import.meta.resolve('fauxqs');
  try {
    const [s3, sqs, sns] = await Promise.all([
      import(new URL('./s3/s3Store.js', entry).href),
      import(new URL('./sqs/sqsStore.js', entry).href),
      import(new URL('./sns/snsStore.js', entry).href),
    ]);
    const mods = { S3Store: s3.S3Store, SqsStore: sqs.SqsStore, SnsStore: sns.SnsStore };
    if (Object.values(mods).some((c) => typeof c !== 'function')) throw new Error('store classes not found');
    return mods as FauxStoreModules;
  } catch (err) {
    throw new ConfigError(
      `cannot load fauxqs' stores from ${entry}: the local stack needs fauxqs ~1.9 (npm ci)`,
      { cause: err },
    );
  }
}

/**
 * Starts the S3 + SQS emulator on 127.0.0.1. With `dataDir`, objects saved there by an earlier
 * run are restored first, straight into the store, before the port opens: they keep their ETag
 * and Last-Modified and raise no events (their features already exist).
 *
 * @example
 * const emu = await startLocalEmulator({ port: 0, region: 'us-east-1', buckets: ['b'], log });
 * emu.onObjectEvent((e) => console.log(e.type));
 */
export async function startLocalEmulator(opts: LocalEmulatorOptions): Promise<LocalEmulator> {
  const { region, log } = opts;
  const { s3Store, listing, sqsStore, snsStore } = createStores(await loadFauxqsStores(), region);
  const events = watchObjectWrites(s3Store, listing, log);
  const { listeners } = events;

  let mirror: DiskMirror | undefined;
  let restoredObjects = 0;
  if (opts.dataDir !== undefined) {
    ({ mirror, restoredObjects } = await restoreFromDisk(opts.dataDir, s3Store, events, log));
  }
  for (const b of opts.buckets ?? []) s3Store.createBucket(b);

  const app = buildApp({
    logger: false,
    defaultRegion: region,
    stores: { s3Store, sqsStore, snsStore } as unknown as NonNullable<
      Parameters<typeof buildApp>[0]
    >['stores'],
  });
  const wanted = opts.port ?? 4566;
  let boundPort = wanted;
  guardEmulator(
    app,
    () => boundPort,
    opts.presignSecrets ?? { [LOCAL_CREDENTIALS.accessKeyId]: LOCAL_CREDENTIALS.secretAccessKey },
  );
  enforceConditionalPuts(app, s3Store);
  if (mirror) answerWhenOnDisk(app, mirror);
  allowBrowserUploads(app);
  const port = await listenEmulator(app, wanted);
  boundPort = port;
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped = false;

  return {
    endpoint,
    port,
    region,
    restoredObjects,
    createBucket(name) {
      s3Store.createBucket(name);
    },
    createQueue(name, attributes) {
      const existing = sqsStore.getQueueByName(name);
      if (existing) return { queueUrl: existing.url, queueArn: existing.arn };
      const queueUrl = `${endpoint}/${LOCAL_ACCOUNT_ID}/${name}`;
      const queueArn = `arn:aws:sqs:${region}:${LOCAL_ACCOUNT_ID}:${name}`;
      sqsStore.createQueue(name, queueUrl, queueArn, attributes);
      return { queueUrl, queueArn };
    },
    onObjectEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async flush() {
      await mirror?.flush();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.close();
      await mirror?.flush();
    },
  };
}

/** fauxqs' S3, SQS and SNS stores for `region`, the S3 one with an indexed listing. */
function createStores(
  { S3Store, SqsStore, SnsStore }: FauxStoreModules,
  region: string,
): { s3Store: FauxS3Store; listing: S3ListingIndex; sqsStore: FauxSqsStore; snsStore: FauxSnsStore } {
  const s3Store = new S3Store();
  // fauxqs sorts the whole bucket for every listing page; ours is indexed (lib/local/s3-listing.ts).
  const listing = indexS3Listing(s3Store);
  const sqsStore = new SqsStore();
  const snsStore = new SnsStore();
  // Empty host: queue URLs take the request's host (http://127.0.0.1:PORT/000000000000/name).
  sqsStore.host = '';
  sqsStore.region = region;
  snsStore.region = region;
  return { s3Store, listing, sqsStore, snsStore };
}

/** The listeners of a store's object events; while `muted` (a restore from disk) none is called. */
interface ObjectEvents {
  listeners: Set<(event: ObjectEvent) => void>;
  muted: boolean;
}

/**
 * Hooks the S3 store's spy: every change invalidates the listing index, and each write or delete
 * is reported to the listeners (a listener that throws is logged, the others still run).
 */
function watchObjectWrites(s3Store: FauxS3Store, listing: S3ListingIndex, log: Log): ObjectEvents {
  const events: ObjectEvents = { listeners: new Set(), muted: false };
  const emit = (event: ObjectEvent): void => {
    for (const listener of events.listeners) {
      try {
        listener(event);
      } catch (err) {
        log.error('object event listener failed', { error: describeError(err) });
      }
    }
  };
  // fauxqs calls the spy synchronously inside each store operation, after the change is applied.
  s3Store.spy = {
    addMessage(m) {
      listing.invalidate();
      if (events.muted || m.service !== 's3' || m.bucket === undefined || m.key === undefined) return;
      if (m.status === 'uploaded') {
        let stored: FauxS3Object;
        try {
          stored = s3Store.headObject(m.bucket, m.key);
        } catch {
          return; // replaced or deleted in between: the later event tells the rest
        }
        emit({ type: 'created', bucket: m.bucket, object: snapshotOf(stored) });
      } else if (m.status === 'deleted') {
        emit({ type: 'removed', bucket: m.bucket, key: m.key });
      }
    },
  };
  return events;
}

/** A stored object as reported to listeners (ETag unquoted, metadata copied). */
function snapshotOf(o: FauxS3Object): EmulatedObject {
  return {
    key: o.key,
    body: o.body,
    etag: normalizeEtag(o.etag),
    size: o.contentLength,
    contentType: o.contentType,
    metadata: { ...o.metadata },
    lastModified: o.lastModified,
  };
}

/**
 * Opens the disk mirror under `dataDir`, puts the objects it holds back into the store with
 * events muted (they keep their ETag and Last-Modified), then mirrors every later change.
 */
async function restoreFromDisk(
  dataDir: string,
  s3Store: FauxS3Store,
  events: ObjectEvents,
  log: Log,
): Promise<{ mirror: DiskMirror; restoredObjects: number }> {
  const mirror = await createDiskMirror({
    root: join(dataDir, 's3'),
    tmpDir: join(dataDir, 'tmp', 's3'),
    log,
  });
  let restoredObjects = 0;
  events.muted = true;
  try {
    for await (const { bucket, object } of mirror.readAll()) {
      s3Store.createBucket(bucket);
      const stored = s3Store.putObject(
        bucket,
        object.key,
        Buffer.from(object.body),
        object.contentType,
        object.metadata,
      );
      // Keep the identity the object had: features reference the image's ETag.
      stored.etag = `"${object.etag}"`;
      stored.lastModified = object.lastModified;
      restoredObjects++;
    }
  } finally {
    events.muted = false;
  }
  events.listeners.add((event) => {
    if (event.type === 'created') mirror.write(event.bucket, event.object);
    else mirror.remove(event.bucket, event.key);
  });
  return { mirror, restoredObjects };
}

/**
 * Listens on 127.0.0.1:`wanted` (0 picks a free port) and returns the port bound; a taken port
 * closes the app and becomes PortInUseError naming --aws-port.
 */
async function listenEmulator(app: FauxApp, wanted: number): Promise<number> {
  try {
    await app.listen({ port: wanted, host: '127.0.0.1' });
  } catch (err) {
    await app.close().catch(() => {});
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new PortInUseError(
        `port ${wanted} on 127.0.0.1 is in use (another 'tlearn local' or LocalStack?); pick another with --aws-port`,
        { cause: err },
      );
    }
    throw err;
  }
  const address = app.server.address();
  return typeof address === 'object' && address !== null ? address.port : wanted;
}

type FauxApp = ReturnType<typeof buildApp>;

/**
 * An S3 write is answered once the disk mirror has it: a PUT, copy or delete that got its 200 survives
 * a kill -9 of the stack (docs/ARCHITECTURE.md "Recovery at start"). The mirror writes behind the
 * store, so the answer waits for the writes queued so far (a few ms). SQS calls (JSON protocol,
 * `x-amz-target`) are not held: queues live in memory.
 */
function answerWhenOnDisk(app: FauxApp, mirror: DiskMirror): void {
  app.addHook('onSend', async (request, _reply, payload) => {
    if (
      request.method === 'GET' ||
      request.method === 'HEAD' ||
      request.headers['x-amz-target'] !== undefined
    )
      return payload;
    await mirror.settled();
    return payload;
  });
}

function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

/**
 * S3 conditional writes (`If-Match: etag`, `If-None-Match: *` on PutObject), which fauxqs 1.9
 * ignores on PUT. Promotion relies on them so an older model never overwrites a newer pointer.
 * Like S3: a failed condition is 412 PreconditionFailed; a second conditional write to a key while
 * one is in flight is 409 ConditionalRequestConflict (the caller re-reads and decides again). The
 * check and the in-flight mark happen in one synchronous step, so two requests cannot both pass.
 */
function enforceConditionalPuts(app: FauxApp, store: FauxS3Store): void {
  const inflight = new Set<string>();
  const marked = new WeakSet<object>();
  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'PUT') return;
    const ifMatch = request.headers['if-match'];
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifMatch === undefined && ifNoneMatch === undefined) return;
    const [path = '', query = ''] = request.url.split('?');
    if (/(^|&)(uploadId|partNumber)=/.test(query)) return; // multipart parts: not conditional in S3 either
    const m = /^\/([^/]+)\/(.+)$/.exec(path);
    if (!m) return;
    let bucket: string;
    let key: string;
    try {
      bucket = decodeURIComponent(m[1] ?? '');
      key = decodeURIComponent(m[2] ?? '');
    } catch {
      return; // fauxqs answers the malformed key itself
    }
    const id = `${bucket}\u0000${key}`;
    if (inflight.has(id)) {
      return reply
        .code(409)
        .type('application/xml')
        .send(s3ErrorXml('ConditionalRequestConflict', 'A conflicting conditional operation is in progress'));
    }
    let current: FauxS3Object | undefined;
    try {
      current = store.headObject(bucket, key);
    } catch {
      current = undefined;
    }
    const failed =
      (ifNoneMatch !== undefined && ifNoneMatch.trim() === '*' && current !== undefined) ||
      (ifMatch !== undefined &&
        (current === undefined || normalizeEtag(current.etag) !== normalizeEtag(String(ifMatch))));
    if (failed) {
      return reply
        .code(412)
        .type('application/xml')
        .send(
          s3ErrorXml('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'),
        );
    }
    inflight.add(id);
    marked.add(request);
    (request as unknown as { tlearnConditionalId?: string }).tlearnConditionalId = id;
  });
  app.addHook('onResponse', async (request) => {
    if (!marked.has(request)) return;
    const id = (request as unknown as { tlearnConditionalId?: string }).tlearnConditionalId;
    if (id !== undefined) inflight.delete(id);
  });
}

/**
 * The bucket CORS rule of lib/storage/upload-cors.ts, as S3 applies it: a preflight for an allowed
 * method and headers gets 200 with the allow headers, anything else 403; actual requests from the
 * origin get `Access-Control-Allow-Origin` and the exposed headers. The origin is any loopback page
 * (the deployed rule names the API's origin). fauxqs 1.9 has no CORS at all.
 */
function allowBrowserUploads(app: FauxApp): void {
  const allowedOrigin = (origin: unknown): origin is string =>
    // Pages on this machine (the local console at http://127.0.0.1:3000): the local stand-in for the API's origin.
    typeof origin === 'string' && isLoopbackOrigin(origin);
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'OPTIONS') return;
    const origin = request.headers.origin;
    const method = String(request.headers['access-control-request-method'] ?? '').toUpperCase();
    const headers = String(request.headers['access-control-request-headers'] ?? '')
      .split(',')
      .map((h) => h.trim())
      .filter((h) => h !== '');
    const ok =
      allowedOrigin(origin) &&
      (UPLOAD_CORS.allowedMethods as readonly string[]).includes(method) &&
      headers.every(isAllowedUploadHeader);
    if (!ok) {
      return reply
        .code(403)
        .type('application/xml')
        .send(s3ErrorXml('AccessForbidden', 'CORSResponse: This CORS request is not allowed.'));
    }
    return reply
      .code(200)
      .headers({
        'access-control-allow-origin': origin,
        'access-control-allow-methods': UPLOAD_CORS.allowedMethods.join(', '),
        'access-control-allow-headers': headers.join(', '),
        'access-control-expose-headers': UPLOAD_CORS.exposedHeaders.join(', '),
        'access-control-max-age': String(UPLOAD_CORS.maxAgeSeconds),
        vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
      })
      .send('');
  });
  app.addHook('onSend', async (request, reply, payload) => {
    const origin = request.headers.origin;
    if ((request.method === 'PUT' || request.method === 'GET') && allowedOrigin(origin)) {
      reply.header('access-control-allow-origin', origin);
      reply.header('access-control-expose-headers', UPLOAD_CORS.exposedHeaders.join(', '));
      reply.header('vary', 'Origin');
    }
    return payload;
  });
}
