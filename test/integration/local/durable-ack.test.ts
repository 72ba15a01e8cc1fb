/**
 * The emulator answers an S3 write only once its disk mirror has it (lib/local/emulator.ts), so an
 * acknowledged upload survives a kill -9 of the local stack (docs/ARCHITECTURE.md "Recovery at start").
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { type LocalEmulator, startLocalEmulator } from '../../../lib/local/emulator.ts';
import { silentLog } from '../../../lib/util/log.ts';

const BUCKET = 'durable';

describe('the emulator with a data dir', () => {
  let tmp: string | undefined;
  let emulator: LocalEmulator | undefined;
  let s3: S3Client | undefined;

  afterEach(async () => {
    s3?.destroy();
    await emulator?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('has every acknowledged PUT on disk, and every acknowledged delete gone, when the answer arrives', async () => {
    // Prepare
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-durable-'));
    emulator = await startLocalEmulator({
      port: 0,
      region: 'us-east-1',
      buckets: [BUCKET],
      dataDir: tmp,
      log: silentLog,
    });
    s3 = new S3Client({
      region: 'us-east-1',
      endpoint: emulator.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const body = Buffer.alloc(4 * 1024 * 1024, 7);
    const onDisk: boolean[] = [];
    const goneFromDisk: boolean[] = [];

    // Act: each check runs the moment the SDK has its answer.
    for (let i = 0; i < 4; i++) {
      const key = `datasets/d/l/img-${i}.png`;
      const file = join(tmp, 's3', BUCKET, 'datasets', 'd', 'l', `img-${i}.png`);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
      onDisk.push(
        await readFile(file).then(
          (b) => b.byteLength === body.byteLength,
          () => false,
        ),
      );
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      goneFromDisk.push(
        await readFile(`${file}.meta.json`).then(
          () => false,
          () => true,
        ),
      );
    }

    // Assess
    expect(onDisk).toEqual([true, true, true, true]);
    expect(goneFromDisk).toEqual([true, true, true, true]);
  });
});
