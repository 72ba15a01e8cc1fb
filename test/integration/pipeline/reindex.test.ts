import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { imageJobsFromMessages } from '../../../lib/pipeline/ingest.ts';
import { InvalidTokenError, type ReindexDeps, reindexDataset } from '../../../lib/pipeline/reindex.ts';
import { putObject } from '../../../lib/storage/s3.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { drainQueue } from './support.ts';

describe('reindex (emulated S3 + SQS)', () => {
  let emu: Emulator;
  let queueUrl: string;
  let deps: ReindexDeps;

  beforeAll(async () => {
    emu = await startEmulator();
    queueUrl = emu.createQueue('ingest').queueUrl;
    deps = {
      s3: emu.clients.s3,
      sqs: emu.clients.sqs,
      bucket: emu.bucket,
      region: emu.region,
      ingestQueueUrl: queueUrl,
      log: silentLog,
    };
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
  });

  it('sends, page by page, the images without a current feature as S3 events the extractor takes', async () => {
    // 25 images in 3 labels plus one Kaggle-style file; every third has a current feature.
    const keys: string[] = [];
    for (let i = 0; i < 25; i++) keys.push(`datasets/pets/${['cat', 'dog', 'my bird'][i % 3]}/${i}.png`);
    keys.push('datasets/pets/cat.99.jpg', 'datasets/pets/notes.txt');
    for (const k of keys) await putObject(emu.clients.s3, emu.bucket, k, `pixels of ${k}`);
    await sleep(1_100);
    const withFeature = keys.filter((_, i) => i % 3 === 0 && i < 25);
    for (const k of withFeature)
      await putObject(emu.clients.s3, emu.bucket, `${k.replace('datasets/', 'features/')}.npy`, 'npy');
    await putObject(emu.clients.s3, emu.bucket, 'features/pets/cat/cat.99.jpg.error.json', '{}');

    const pages = [];
    let token: string | undefined;
    do {
      const page = await reindexDataset('pets', { token, maxImages: 7 }, deps);
      pages.push(page);
      token = page.nextToken ?? undefined;
    } while (token);
    const sent = imageJobsFromMessages(
      (await drainQueue(emu.clients.sqs, queueUrl)).map((b, i) => ({
        id: `m${i}`,
        body: JSON.stringify(b),
        receiveCount: 1,
      })),
      emu.bucket,
      silentLog,
    );

    expect(pages.length).toBe(4);
    expect(pages.reduce((n, p) => n + p.scanned, 0)).toBe(27);
    expect(pages.reduce((n, p) => n + p.skipped, 0)).toBe(1);
    expect(pages.reduce((n, p) => n + p.current, 0)).toBe(withFeature.length + 1);
    const expected = keys.filter((k) => !withFeature.includes(k) && k.endsWith('.png')).sort();
    expect(pages.reduce((n, p) => n + p.enqueued, 0)).toBe(expected.length);
    expect(sent.jobs.map((j) => j.key).sort()).toEqual(expected);
  });

  it('sends every image with all, and refuses a token of another dataset', async () => {
    for (let i = 0; i < 4; i++) {
      const k = `datasets/pets/cat/${i}.png`;
      await putObject(emu.clients.s3, emu.bucket, k, 'x');
      await putObject(emu.clients.s3, emu.bucket, `${k.replace('datasets/', 'features/')}.npy`, 'npy');
    }

    const page = await reindexDataset('pets', { all: true }, deps);

    expect(page).toMatchObject({ scanned: 4, enqueued: 4, current: 0, nextToken: null });
    const other = Buffer.from('datasets/birds/x.png').toString('base64url');
    await expect(reindexDataset('pets', { token: other }, deps)).rejects.toThrow(InvalidTokenError);
  });
});
