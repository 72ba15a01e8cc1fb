import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../lib/cli/args.ts';
import { runUpload } from '../../../lib/cli/commands/upload.ts';
import { EXIT } from '../../../lib/cli/exit-codes.ts';
import { getObject, headObject, listAllObjects, putObject } from '../../../lib/storage/s3.ts';
import type { UploadFile } from '../../../lib/upload/scan.ts';
import { listExisting, uploadFiles } from '../../../lib/upload/upload.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { closedPortUrl, testContext } from './helpers.ts';

/** Bytes that look like a PNG; upload does not decode, so the rest can be anything. */
const png = (seed: number, size = 64) => {
  const b = Buffer.alloc(size, seed);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b);
  return b;
};
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('tlearn upload against the S3 emulator', () => {
  let emu: Emulator;
  let dir: string;
  let src: string;
  let flags: string[];

  beforeAll(async () => {
    emu = await startEmulator();
    flags = ['--s3-endpoint', emu.endpoint, '--bucket', emu.bucket, '--region', emu.region];
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(async () => {
    emu.reset();
    dir = await mkdtemp(join(tmpdir(), 'tlearn-upload-'));
    src = join(dir, 'pets');
    const files: Record<string, Buffer> = {
      'cat/1.png': png(1),
      'cat/.DS_Store': Buffer.from('junk'),
      'cat/empty.png': Buffer.alloc(0),
      'cat/notes.txt': Buffer.from('not an image'),
      // Decomposed (macOS) spelling; the key must use the composed one.
      'cat/cafe\u0301.png': png(2),
      'dog/a b é.png': png(3),
      'dog/nested/deep/2.JPG': png(4),
      'dog/huge.png': png(5, 3000),
      'cat.12.jpg': png(6),
      'noLabel.png': png(7),
      '.git/config': Buffer.from('[core]'),
    };
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(join(src, rel, '..'), { recursive: true });
      await writeFile(join(src, rel), body);
    }
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('uploads labelled images to their keys, skipping what cannot be used, with reasons', async () => {
    const { ctx, stdout } = testContext(dir);

    const code = await runUpload([src, '--dataset', 'pets', '--max-size', '0.002', ...flags], ctx);

    expect(code).toBe(EXIT.OK);
    const keys = (await listAllObjects(emu.clients.s3, emu.bucket, '')).map((o) => o.key).sort();
    expect(keys).toEqual(
      [
        'datasets/pets/cat/1.png',
        'datasets/pets/cat/café.png',
        'datasets/pets/cat/cat.12.jpg',
        'datasets/pets/dog/a b é.png',
        'datasets/pets/dog/nested/deep/2.JPG',
      ].sort(),
    );
    expect(keys).toContain('datasets/pets/cat/caf\u00e9.png');
    const obj = await getObject(emu.clients.s3, emu.bucket, 'datasets/pets/dog/a b é.png');
    expect(Buffer.from(obj.body)).toEqual(png(3));
    expect(obj.contentType).toBe('image/png');
    expect(obj.etag).toBe(md5(png(3)));
    expect(
      (await getObject(emu.clients.s3, emu.bucket, 'datasets/pets/dog/nested/deep/2.JPG')).contentType,
    ).toBe('image/jpeg');
    const out = stdout();
    expect(out).toContain('uploaded 5, unchanged 0, skipped 6, failed 0');
    expect(out).toContain('labels (2): cat 3, dog 2');
    expect(out).toMatch(/hidden files and folders: 2/);
    expect(out).toMatch(/empty \(zero bytes\): 1/);
    expect(out).toMatch(/not an image \(by extension\): 1/);
    expect(out).toMatch(/no valid label.*: 1\n.*noLabel\.png/);
    expect(out).toMatch(/too large: 1\n.*huge\.png: 3\.0 kB is over the 2\.0 kB limit/);
  });

  it('skips unchanged files on a second run and re-uploads a changed one', async () => {
    const first = testContext(dir);
    expect(await runUpload([src, '--dataset', 'pets', ...flags], first.ctx)).toBe(EXIT.OK);
    const before = await headObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/1.png');

    const second = testContext(dir);
    const code2 = await runUpload([src, '--dataset', 'pets', ...flags], second.ctx);

    expect(code2).toBe(EXIT.OK);
    expect(second.stdout()).toContain('uploaded 0, unchanged 6,');
    const after = await headObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/1.png');
    expect(after?.lastModified).toEqual(before?.lastModified);

    await writeFile(join(src, 'cat/1.png'), png(99));
    const dry = testContext(dir);
    expect(await runUpload([src, '--dataset', 'pets', '--dry-run', ...flags], dry.ctx)).toBe(EXIT.OK);
    expect(dry.stdout()).toContain('dry run: would upload 1, unchanged 5,');
    expect((await headObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/1.png'))?.etag).toBe(md5(png(1)));

    const third = testContext(dir);
    expect(await runUpload([src, '--dataset', 'pets', '--concurrency', '2', ...flags], third.ctx)).toBe(
      EXIT.OK,
    );
    expect(third.stdout()).toContain('uploaded 1, unchanged 5,');
    expect((await headObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/1.png'))?.etag).toBe(
      md5(png(99)),
    );
  });

  it('treats an object put by another tool as unchanged when its ETag is the MD5 of the bytes', async () => {
    await putObject(emu.clients.s3, emu.bucket, 'datasets/pets/cat/1.png', png(1));
    const file: UploadFile = {
      path: join(src, 'cat/1.png'),
      display: 'cat/1.png',
      key: 'datasets/pets/cat/1.png',
      label: 'cat',
      size: 64,
      contentType: 'image/png',
    };
    const existing = await listExisting(emu.clients.s3, emu.bucket, 'pets');

    const [outcome] = await uploadFiles(emu.clients.s3, emu.bucket, [file], existing, {
      concurrency: 1,
      dryRun: false,
    });

    expect(outcome?.status).toBe('unchanged');
  });

  it('treats an object whose ETag is not the MD5 as unchanged when its stored md5 matches', async () => {
    // SSE-KMS objects have ETags that are not the MD5; the uploader's md5 metadata still tells.
    const file: UploadFile = {
      path: join(src, 'cat/1.png'),
      display: 'cat/1.png',
      key: 'datasets/pets/cat/1.png',
      label: 'cat',
      size: 64,
      contentType: 'image/png',
    };
    await uploadFiles(emu.clients.s3, emu.bucket, [file], new Map(), { concurrency: 1, dryRun: false });
    const listed = await listExisting(emu.clients.s3, emu.bucket, 'pets');
    const kmsLike = new Map(
      [...listed].map(([k, v]) => [k, { ...v, etag: 'ffffffffffffffffffffffffffffffff' }]),
    );

    const [outcome] = await uploadFiles(emu.clients.s3, emu.bucket, [file], kmsLike, {
      concurrency: 1,
      dryRun: false,
    });

    expect(outcome?.status).toBe('unchanged');
  });

  it('reports a file that fails without stopping the others', async () => {
    const ok: UploadFile = {
      path: join(src, 'cat/1.png'),
      display: 'cat/1.png',
      key: 'datasets/pets/cat/1.png',
      label: 'cat',
      size: 64,
      contentType: 'image/png',
    };
    const gone: UploadFile = {
      ...ok,
      path: join(src, 'cat/vanished.png'),
      key: 'datasets/pets/cat/vanished.png',
    };

    const outcomes = await uploadFiles(emu.clients.s3, emu.bucket, [gone, ok], new Map(), {
      concurrency: 2,
      dryRun: false,
    });

    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'uploaded']);
    expect(outcomes[0]?.status === 'failed' && outcomes[0].message).toMatch(/ENOENT/);
  });

  it('takes Kaggle names from a folder of unlabelled files', async () => {
    const kaggle = join(dir, 'train');
    await mkdir(kaggle);
    await writeFile(join(kaggle, 'cat.1.jpg'), png(10));
    await writeFile(join(kaggle, 'dog.1.jpg'), png(11));
    const { ctx, stdout } = testContext(dir);

    const code = await runUpload([kaggle, '--dataset', 'cats-vs-dogs', ...flags], ctx);

    expect(code).toBe(EXIT.OK);
    const keys = (await listAllObjects(emu.clients.s3, emu.bucket, 'datasets/cats-vs-dogs/')).map(
      (o) => o.key,
    );
    expect(keys.sort()).toEqual([
      'datasets/cats-vs-dogs/cat/cat.1.jpg',
      'datasets/cats-vs-dogs/dog/dog.1.jpg',
    ]);
    expect(stdout()).toContain('labels (2): cat 1, dog 1');
  });

  it('exits 1 when nothing can be uploaded', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await writeFile(join(empty, '.DS_Store'), 'x');
    const { ctx, stderr } = testContext(dir);

    const code = await runUpload([empty, '--dataset', 'pets', ...flags], ctx);

    expect(code).toBe(EXIT.FAILURE);
    expect(stderr()).toMatch(/nothing to upload[\s\S]*hidden files and folders: 1/);
  });

  it('rejects an invalid dataset name with the naming rule', async () => {
    const { ctx } = testContext(dir);

    await expect(runUpload([src, '--dataset', 'Pets_1', ...flags], ctx)).rejects.toThrow(UsageError);
    await expect(runUpload([src, '--dataset', 'Pets_1', ...flags], ctx)).rejects.toThrow(
      /'Pets_1' is not a valid dataset name: use 1-63 lower-case letters, digits and '-'/,
    );
  });

  it('exits 4 naming the target and its source when S3 cannot be reached', async () => {
    const closed = await closedPortUrl();
    const { ctx, stderr } = testContext(dir, { AWS_ENDPOINT_URL: closed, TLEARN_BUCKET: 'b' });

    const code = await runUpload([src, '--dataset', 'pets', '--timeout', '2'], ctx);

    expect(code).toBe(EXIT.UNAVAILABLE);
    expect(stderr()).toContain(
      `tlearn upload: using s3://b at ${closed}, the local stack (bucket from TLEARN_BUCKET; endpoint from AWS_ENDPOINT_URL; start it with \`npm start\`): connection refused`,
    );
  });
});
