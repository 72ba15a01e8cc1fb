import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCALE_SPEC, scaleImageKey, seedScaleDataset } from '../../../bench/lib/scale-seed.ts';
import { FEATURE_META } from '../../../lib/features/metadata.ts';
import { decodeNpy } from '../../../lib/features/npy.ts';
import { type LocalEmulator, startLocalEmulator } from '../../../lib/local/emulator.ts';
import { scanDataset } from '../../../lib/pipeline/readiness.ts';
import { loadFeatures } from '../../../lib/pipeline/train-job.ts';
import { type AwsClients, createAwsClients } from '../../../lib/storage/clients.ts';
import { getObject } from '../../../lib/storage/s3.ts';
import { MEASURED_DENSITY } from '../../../lib/training/capacity.ts';
import { silentLog } from '../../../lib/util/log.ts';

const BUCKET = 'scale-test';

describe('scale benchmark seeding (local emulator restored from the seeded data dir)', () => {
  let dataDir: string;
  let emu: LocalEmulator;
  let clients: AwsClients;
  let seeded: Awaited<ReturnType<typeof seedScaleDataset>>;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tlearn-scale-seed-'));
    seeded = await seedScaleDataset(dataDir, BUCKET, { dataset: 'big', n: 30, labels: 3 });
    emu = await startLocalEmulator({
      port: 0,
      region: 'us-east-1',
      buckets: [BUCKET],
      dataDir,
      log: silentLog,
    });
    clients = createAwsClients({
      bucket: BUCKET,
      region: 'us-east-1',
      endpoint: emu.endpoint,
      awsTimeoutMs: 5000,
    });
  });
  afterAll(async () => {
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.sfn.destroy();
    await emu?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('restores N images and N features that readiness counts as ready', async () => {
    expect(seeded).toMatchObject({ images: 30, features: 30 });
    expect(emu.restoredObjects).toBe(60);

    const scan = await scanDataset(clients.s3, BUCKET, 'big');

    expect(scan.entries).toHaveLength(30);
    expect(scan.entries.every((e) => e.status === 'ready')).toBe(true);
    expect(new Set(scan.entries.map((e) => e.image.label))).toEqual(
      new Set(['label-0', 'label-1', 'label-2']),
    );
  });

  it('writes features with the extractor metadata and the measured sparsity', async () => {
    const scan = await scanDataset(clients.s3, BUCKET, 'big');
    const entry = scan.entries.find((e) => e.image.key === scaleImageKey('big', 3, 4));
    if (!entry) throw new Error('image 4 not listed');
    const obj = await getObject(clients.s3, BUCKET, entry.featureKey);

    expect(obj.metadata[FEATURE_META.sourceEtag]).toBe(entry.etag);
    expect(obj.metadata[FEATURE_META.spec]).toBe(SCALE_SPEC);
    expect(decodeNpy(obj.body).data).toHaveLength(8192);

    const loaded = await loadFeatures(clients.s3, BUCKET, scan.entries, { concurrency: 4, log: silentLog });
    const density = loaded.X.nnz / (loaded.X.n * loaded.X.d);
    expect(loaded.X.n).toBe(30);
    expect(Math.abs(density - MEASURED_DENSITY.flatten)).toBeLessThan(0.01);
  });
});
