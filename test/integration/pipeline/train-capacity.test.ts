import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadTrainingConfig } from '../../../lib/config.ts';
import { runTrainingJob, type TrainJobDeps } from '../../../lib/pipeline/train-job.ts';
import {
  fitWorkBytes,
  MEASURED_DENSITY,
  TRAINER_BASE_BYTES,
  TRAINER_BYTES_PER_IMAGE,
  TRAINER_MEMORY_SHARE,
  TrainingTooLargeError,
  trainerImageLimit,
} from '../../../lib/training/capacity.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { putImageWithFeature, TEST_SPEC } from './support.ts';

const INPUT = { dataset: 'pets', trigger: 'auto' as const, requestedAt: '2026-01-01T00:00:05.000Z' };
const MB = 2 ** 20;

describe('trainer memory limit (emulated S3, synthetic features)', () => {
  let emu: Emulator;
  let featureGets = 0;

  function deps(memoryBytes: number, extra: Partial<TrainJobDeps> = {}): TrainJobDeps {
    return {
      s3: emu.clients.s3,
      bucket: emu.bucket,
      training: { featureConcurrency: 4, refitOnAll: false, C: 1, maxIter: 50, memoryBytes },
      log: silentLog,
      shortId: () => 'abc12345',
      ...extra,
    };
  }

  async function dataset(perLabel: number): Promise<void> {
    for (const label of ['cat', 'dog'])
      for (let i = 0; i < perLabel; i++)
        await putImageWithFeature(emu, `datasets/pets/${label}/${i}.png`, { spec: TEST_SPEC, seed: i });
  }

  beforeAll(async () => {
    emu = await startEmulator();
    emu.clients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        if (context.commandName === 'GetObjectCommand' && input.Key?.startsWith('features/')) featureGets++;
        return next(args);
      },
      { step: 'initialize', name: 'count-feature-gets' },
    );
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
    featureGets = 0;
  });

  it('fails before loading any feature when the images cannot fit the configured memory', async () => {
    await dataset(3);

    const err = await runTrainingJob(
      INPUT,
      deps(300 * MB, { expect: { input: [32, 32], pooling: 'flatten' } }),
    ).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(TrainingTooLargeError);
    expect((err as TrainingTooLargeError).code).toBe('TrainingTooLarge');
    expect((err as Error).message).toMatch(
      /6 images of 512 features need about [\d,]+ MB in the trainer, which plans with 270 MB of its 300 MB/,
    );
    expect((err as Error).message).toMatch(/--pooling avg/);
    expect((err as Error).message).toMatch(/tlearn:pooling=avg/);
    expect((err as Error).message).toMatch(/more memory/);
    expect(featureGets).toBe(0);
  });

  it('fails after the first features when only they tell the feature width', async () => {
    await dataset(10);

    const err = await runTrainingJob(INPUT, deps(300 * MB)).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(TrainingTooLargeError);
    expect(featureGets).toBeLessThanOrEqual(4); // the GETs of the first wave only
  });

  it('stops loading once denser features than measured outgrow the matrix budget', async () => {
    // 30 + 30 dense 512-value rows (3,081 bytes each) against a budget of 2 pages (131,072 bytes):
    // the 0.9-density estimate (2,793 bytes a row, 168 KB) passes the check before loading.
    await dataset(30);
    const n = 60;
    const d = 512;
    const budget = 150_000;
    const memoryBytes =
      (TRAINER_BASE_BYTES + fitWorkBytes(d, 2) + n * TRAINER_BYTES_PER_IMAGE + budget) / TRAINER_MEMORY_SHARE;
    expect(
      trainerImageLimit(memoryBytes, { d, classes: 2, density: MEASURED_DENSITY.flatten }),
    ).toBeGreaterThan(n);

    const err = await runTrainingJob(INPUT, deps(memoryBytes)).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(TrainingTooLargeError);
    expect((err as Error).message).toMatch(/denser than the 0.63 non-zero share/);
    expect(featureGets).toBeLessThan(n);
  });

  it('trains when the images fit', async () => {
    await dataset(4);

    const r = await runTrainingJob(INPUT, deps(1024 * MB));

    expect(r.nTrain + r.nTest).toBe(8);
  });
});

describe('trainer memory sizing', () => {
  it('reads the function memory Lambda sets, else the machine memory', () => {
    expect(loadTrainingConfig({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '10240' }).memoryBytes).toBe(10240 * MB);
    expect(loadTrainingConfig({}).memoryBytes).toBeGreaterThan(0);
  });

  it('holds 200,000 flatten images at 10,240 MB, and over 8 times more with avg pooling', () => {
    const flatten = trainerImageLimit(10240 * MB, {
      d: 8192,
      classes: 10,
      density: MEASURED_DENSITY.flatten,
    });
    const avg = trainerImageLimit(10240 * MB, { d: 512, classes: 10, density: MEASURED_DENSITY.avg });
    const at3008 = trainerImageLimit(3008 * MB, { d: 8192, classes: 10, density: MEASURED_DENSITY.flatten });

    expect(flatten).toBeGreaterThanOrEqual(200_000);
    expect(avg).toBeGreaterThan(8 * flatten);
    // The old dense matrix + compressed copy ran out near 55-60k images at 3,008 MB.
    expect(at3008).toBeGreaterThan(60_000);
    expect(at3008).toBeLessThan(flatten);
  });
});
