import type { S3Client } from '@aws-sdk/client-s3';
import { describeError, TlearnError, ValidationError } from '../errors.ts';
import {
  CurrentPointer,
  compareVersions,
  PointerChangedError,
  writeCurrentPointer,
} from '../serving/current-pointer.ts';
import { currentModelKey, MODEL_VERSION_RE, modelFileKey } from '../storage/keys.ts';
import { getObject, type S3Object } from '../storage/s3.ts';
import { parseModelDocument } from '../training/model-document.ts';
import type { Log } from '../util/log.ts';

/**
 * promote-model's domain logic: point `models/{d}/current.json` at a freshly trained version,
 * unless that would be a step back.
 *
 * - Only a complete version is promoted: its `model.json` exists (the trainer writes it last)
 *   and parses as a model of this dataset. A failed or partial training has none.
 * - Only forward: a version older than the current one never replaces it (versions sort by
 *   time), so a slow training cannot undo a newer one that finished first.
 * - Concurrency: the pointer is written with a conditional PUT (`If-Match` the ETag read, or
 *   `If-None-Match: *` when there is none yet), which S3 enforces; a lost race (412/409) is
 *   re-read and decided again. The local emulator (fauxqs) ignores these headers, so locally it
 *   is a read-compare-write whose race window is the few milliseconds between the read and the
 *   write; two promotions of one dataset within that window are not a case the local stack has.
 */

/** Input of a promotion (the state machine's `{dataset, version}`). */
export interface PromoteInput {
  dataset: string;
  version: string;
}

/** Result (the state machine's `$.promotion`). */
export interface PromoteResult {
  promoted: boolean;
  /** The candidate version. */
  version: string;
  /** The version current.json pointed at before (or still points at, when not promoted). */
  previous: string | null;
  /** Why it was not promoted, or that it already was. */
  reason?: string;
}

/** Dependencies of `promoteModel`. */
export interface PromoteDeps {
  s3: S3Client;
  bucket: string;
  log: Log;
  now?: () => Date;
  /** Attempts when the conditional write loses a race. @default 5 */
  maxAttempts?: number;
}

async function readPointer(
  deps: PromoteDeps,
  key: string,
): Promise<{ pointer: CurrentPointer | undefined; etag: string | undefined }> {
  let obj: S3Object;
  try {
    obj = await getObject(deps.s3, deps.bucket, key);
  } catch (err) {
    if (err instanceof TlearnError && err.code === 'NotFound') return { pointer: undefined, etag: undefined };
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(obj.body).toString('utf8'));
  } catch {
    json = undefined;
  }
  const parsed = CurrentPointer.safeParse(json);
  if (!parsed.success) {
    // Nothing can be served from a broken pointer; replacing it (conditionally) repairs it.
    deps.log.warn('current.json is not valid; it will be replaced', { key });
    return { pointer: undefined, etag: obj.etag };
  }
  return { pointer: parsed.data, etag: obj.etag };
}

/**
 * Promotes `version` of `dataset` when it is complete and newer than the current one.
 *
 * @example const r = await promoteModel({ dataset: 'pets', version }, { s3, bucket, log });
 *          if (!r.promoted) log.info(r.reason);
 */
export async function promoteModel(input: PromoteInput, deps: PromoteDeps): Promise<PromoteResult> {
  const { dataset, version } = input;
  if (!MODEL_VERSION_RE.test(version)) {
    throw new ValidationError(`'${version}' is not a model version (like 20260101T000000Z-abc123)`);
  }
  const now = deps.now ?? (() => new Date());

  // 1. The candidate must be complete.
  const modelKey = modelFileKey(dataset, version, 'model.json');
  let modelBody: Uint8Array;
  try {
    modelBody = (await getObject(deps.s3, deps.bucket, modelKey)).body;
  } catch (err) {
    if (err instanceof TlearnError && err.code === 'NotFound') {
      return {
        promoted: false,
        version,
        previous: null,
        reason: `version ${version} has no model.json (failed or incomplete training)`,
      };
    }
    throw err;
  }
  try {
    const doc = parseModelDocument(Buffer.from(modelBody).toString('utf8'));
    if (doc.dataset !== undefined && doc.dataset !== dataset) {
      throw new ValidationError(`model.json belongs to dataset '${doc.dataset}'`);
    }
  } catch (err) {
    return {
      promoted: false,
      version,
      previous: null,
      reason: `version ${version} is not a valid model: ${describeError(err)}`,
    };
  }

  // 2. Forward only, with a conditional write.
  const key = currentModelKey(dataset);
  const attempts = deps.maxAttempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    const { pointer, etag } = await readPointer(deps, key);
    if (pointer && pointer.version === version) {
      // A retried promotion that already succeeded.
      return { promoted: true, version, previous: pointer.previous, reason: 'already current' };
    }
    if (pointer && compareVersions(pointer.version, version) > 0) {
      deps.log.info('not promoting: a newer version is current', {
        dataset,
        version,
        current: pointer.version,
      });
      return {
        promoted: false,
        version,
        previous: pointer.version,
        reason: `a newer version (${pointer.version}) is already promoted`,
      };
    }
    let next: CurrentPointer;
    try {
      next = await writeCurrentPointer(deps.s3, deps.bucket, dataset, {
        version,
        now: now(),
        read: etag === undefined ? undefined : { pointer, etag },
      });
    } catch (err) {
      if (err instanceof PointerChangedError && attempt < attempts) {
        deps.log.info('current.json changed while promoting; reading it again', { dataset, attempt });
        continue;
      }
      throw err;
    }
    deps.log.info('model promoted', { dataset, version, previous: next.previous });
    return { promoted: true, version, previous: next.previous };
  }
}
