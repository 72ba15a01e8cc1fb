/**
 * An indexed ListObjects for the local emulator's S3 store.
 *
 * fauxqs 1.9 answers every ListObjects page by filtering and sorting the whole bucket with
 * `localeCompare`: a full listing of n keys costs n/1000 sorts of n keys (quadratic; ~0.3-0.5 s a
 * page at 400,000 objects), and its order is the locale's, not S3's, while the page marker is
 * compared in code-unit order, so a listing of mixed-case or punctuated keys can skip or repeat
 * keys across pages. Here the bucket's keys are sorted once (code-unit order: S3's UTF-8 byte
 * order for every key without characters above U+FFFF) and kept until the next write or delete;
 * a page is a binary search plus the page itself. Results otherwise follow fauxqs' own listing
 * (prefix, delimiter with common prefixes, marker / start-after, max keys).
 */

/** The part of fauxqs' S3 store the index reads and replaces. */
export interface ListableS3Store<O extends { key: string }> {
  buckets: Map<string, Map<string, O>>;
  listObjects(
    bucket: string,
    options?: { prefix?: string; delimiter?: string; maxKeys?: number; startAfter?: string; marker?: string },
  ): { objects: O[]; commonPrefixes: string[]; isTruncated: boolean };
}

/** Handle of an installed index. */
export interface S3ListingIndex {
  /** Call after every write or delete (the store's spy does): the next listing re-sorts. */
  invalidate(): void;
}

/** First index in sorted `keys` whose key is > `after` (strict) or >= `from`. */
function firstIndex(keys: readonly string[], bound: string, strict: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = keys[mid] as string;
    if (k < bound || (strict && k === bound)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Replaces `store.listObjects` with the indexed listing.
 *
 * @example
 * const index = indexS3Listing(s3Store);
 * s3Store.spy = { addMessage() { index.invalidate(); } };
 */
export function indexS3Listing<O extends { key: string }>(store: ListableS3Store<O>): S3ListingIndex {
  const original = store.listObjects.bind(store);
  let version = 0;
  const sorted = new Map<string, { version: number; objects: Map<string, O>; keys: string[] }>();

  store.listObjects = (bucket, options) => {
    const objects = store.buckets.get(bucket);
    if (!objects) return original(bucket, options); // fauxqs' NoSuchBucket
    let entry = sorted.get(bucket);
    if (!entry || entry.version !== version || entry.objects !== objects) {
      entry = { version, objects, keys: [...objects.keys()].sort() };
      sorted.set(bucket, entry);
    }
    const { keys } = entry;
    const prefix = options?.prefix ?? '';
    const delimiter = options?.delimiter || undefined;
    const maxKeys = options?.maxKeys ?? 1000;
    const startAfter = options?.startAfter ?? options?.marker ?? '';

    let i = startAfter > prefix ? firstIndex(keys, startAfter, true) : firstIndex(keys, prefix, false);
    const result: O[] = [];
    const commonPrefixes: string[] = [];
    let lastPrefix: string | undefined;
    let count = 0;
    let isTruncated = false;
    for (; i < keys.length; i++) {
      const key = keys[i] as string;
      if (!key.startsWith(prefix)) break;
      if (delimiter) {
        const at = key.indexOf(delimiter, prefix.length);
        if (at >= 0) {
          const common = key.slice(0, at + delimiter.length);
          // Keys under a common prefix are contiguous in sorted order: each is counted once.
          if (common === lastPrefix || (startAfter && common <= startAfter)) continue;
          if (count >= maxKeys) {
            isTruncated = true;
            break;
          }
          commonPrefixes.push(common);
          lastPrefix = common;
          count++;
          continue;
        }
      }
      if (count >= maxKeys) {
        isTruncated = true;
        break;
      }
      const obj = objects.get(key);
      if (obj) result.push(obj);
      count++;
    }
    return { objects: result, commonPrefixes, isTruncated };
  };

  return {
    invalidate() {
      version++;
    },
  };
}
