import { describe, expect, it } from 'vitest';
import { indexS3Listing, type ListableS3Store } from '../../../lib/local/s3-listing.ts';
import { mulberry32 } from '../../../lib/util/random.ts';

type Obj = { key: string };

/** A store with S3's listing semantics computed the slow, obvious way (the reference). */
function referenceList(
  keys: string[],
  o: { prefix?: string; delimiter?: string; maxKeys?: number; startAfter?: string },
) {
  const prefix = o.prefix ?? '';
  const after = o.startAfter ?? '';
  const items: { key?: string; common?: string }[] = [];
  const seen = new Set<string>();
  for (const key of [...keys].sort()) {
    if (!key.startsWith(prefix) || (after && key <= after)) continue;
    const at = o.delimiter ? key.indexOf(o.delimiter, prefix.length) : -1;
    if (o.delimiter && at >= 0) {
      const common = key.slice(0, at + o.delimiter.length);
      if (seen.has(common) || (after && common <= after)) continue;
      seen.add(common);
      items.push({ common });
    } else items.push({ key });
  }
  const page = items.slice(0, o.maxKeys ?? 1000);
  return {
    keys: page.flatMap((i) => (i.key ? [i.key] : [])),
    commonPrefixes: page.flatMap((i) => (i.common ? [i.common] : [])),
    isTruncated: items.length > page.length,
  };
}

function storeOf(keys: string[]): ListableS3Store<Obj> {
  const objects = new Map(keys.map((k) => [k, { key: k }]));
  return {
    buckets: new Map([['b', objects]]),
    listObjects: () => {
      throw new Error('NoSuchBucket');
    },
  };
}

/** Pages through a listing the way a client does (marker = last key or common prefix). */
function listAll(
  store: ListableS3Store<Obj>,
  prefix: string,
  delimiter: string | undefined,
  maxKeys: number,
) {
  const out: string[] = [];
  let startAfter = '';
  for (;;) {
    const page = store.listObjects('b', { prefix, maxKeys, startAfter, ...(delimiter ? { delimiter } : {}) });
    const names = [...page.objects.map((o) => o.key), ...page.commonPrefixes].sort();
    out.push(...names);
    if (!page.isTruncated) return out;
    startAfter = names[names.length - 1] ?? startAfter;
  }
}

describe('the indexed S3 listing of the local emulator', () => {
  const random = mulberry32(7);
  const parts = ['a', 'B', 'b', 'a-b', 'a_b', 'A', 'z', 'é', '日本', ' x', 'cat.1.jpg'];
  const pick = () => parts[Math.floor(random() * parts.length)] as string;
  const keys = [
    ...new Set(
      Array.from({ length: 600 }, () => `datasets/${pick()}/${pick()}${Math.floor(random() * 50)}.png`),
    ),
  ];

  it('answers every page like S3 (code-unit order, prefix, delimiter, marker, max keys)', () => {
    const store = storeOf(keys);
    indexS3Listing(store);
    for (const prefix of ['', 'datasets/', 'datasets/a', 'datasets/B/', 'nothing/']) {
      for (const delimiter of [undefined, '/']) {
        for (const startAfter of ['', 'datasets/a', 'datasets/a-b/', 'datasets/é/x']) {
          for (const maxKeys of [1, 7, 1000]) {
            const got = store.listObjects('b', {
              prefix,
              maxKeys,
              startAfter,
              ...(delimiter ? { delimiter } : {}),
            });
            const want = referenceList(keys, {
              prefix,
              maxKeys,
              startAfter,
              ...(delimiter ? { delimiter } : {}),
            });
            expect({
              keys: got.objects.map((o) => o.key),
              commonPrefixes: got.commonPrefixes,
              isTruncated: got.isTruncated,
            }).toEqual(want);
          }
        }
      }
    }
  });

  it('pages through mixed-case and punctuated keys returning each exactly once', () => {
    const store = storeOf(keys);
    indexS3Listing(store);

    const all = listAll(store, 'datasets/', undefined, 13);

    expect(all).toEqual([...keys].sort());
  });

  it('sees writes and deletes after invalidate()', () => {
    const store = storeOf(['k/1', 'k/2']);
    const index = indexS3Listing(store);
    const before = store.listObjects('b', { prefix: 'k/' }).objects.map((o) => o.key);
    const objects = store.buckets.get('b');
    objects?.set('k/0', { key: 'k/0' });
    objects?.delete('k/2');
    index.invalidate();

    const after = store.listObjects('b', { prefix: 'k/' }).objects.map((o) => o.key);

    expect(before).toEqual(['k/1', 'k/2']);
    expect(after).toEqual(['k/0', 'k/1']);
  });

  it('leaves an unknown bucket to the store (NoSuchBucket)', () => {
    const store = storeOf([]);
    indexS3Listing(store);
    expect(() => store.listObjects('nope')).toThrow('NoSuchBucket');
  });
});
