import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NotFoundError } from '../../../lib/errors.ts';
import {
  getJson,
  getObject,
  headObject,
  listAllObjects,
  listFolders,
  putJson,
  putObject,
} from '../../../lib/storage/s3.ts';
import { mapWithConcurrency } from '../../../lib/util/concurrency.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';

describe('S3 helpers against the emulator', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu.stop();
  });

  it('writes and reads an object with metadata and an unquoted ETag', async () => {
    const { s3 } = emu.clients;
    const put = await putObject(
      s3,
      emu.bucket,
      'features/pets/cat/a b+é.jpg.npy',
      new Uint8Array([1, 2, 3]),
      {
        metadata: { 'source-etag': 'abc', label: 'cat' },
      },
    );
    const got = await getObject(s3, emu.bucket, 'features/pets/cat/a b+é.jpg.npy');
    expect([...got.body]).toEqual([1, 2, 3]);
    expect(got.etag).toBe(put.etag);
    expect(got.etag).not.toContain('"');
    expect(got.metadata['source-etag']).toBe('abc');
    const head = await headObject(s3, emu.bucket, 'features/pets/cat/a b+é.jpg.npy');
    expect(head?.size).toBe(3);
  });

  it('reports a missing object as NotFoundError and undefined head', async () => {
    await expect(getObject(emu.clients.s3, emu.bucket, 'nope')).rejects.toBeInstanceOf(NotFoundError);
    expect(await headObject(emu.clients.s3, emu.bucket, 'nope')).toBeUndefined();
  });

  it('validates JSON against a schema', async () => {
    await putJson(emu.clients.s3, emu.bucket, 'models/pets/current.json', { version: 'v1' });
    const v = await getJson(
      emu.clients.s3,
      emu.bucket,
      'models/pets/current.json',
      z.object({ version: z.string() }),
    );
    expect(v.version).toBe('v1');
    await expect(
      getJson(emu.clients.s3, emu.bucket, 'models/pets/current.json', z.object({ n: z.number() })),
    ).rejects.toThrow(/does not match its schema/);
  });

  it('lists past one page and lists folders', async () => {
    const { s3 } = emu.clients;
    // Bounded, so a loaded machine does not time out a thousand simultaneous requests.
    await mapWithConcurrency(
      Array.from({ length: 1005 }, (_, i) => i),
      16,
      (i) => putObject(s3, emu.bucket, `datasets/big/${i % 2 ? 'a' : 'b'}/${i}.jpg`, 'x'),
    );
    const all = await listAllObjects(s3, emu.bucket, 'datasets/big/');
    expect(all).toHaveLength(1005);
    expect(await listFolders(s3, emu.bucket, 'datasets/big/')).toEqual(['a', 'b']);
  });
});
