import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadModelConfig } from '../../../lib/config.ts';
import {
  runTrainingJob,
  specExpectationFromModelConfig,
  type TrainJobDeps,
} from '../../../lib/pipeline/train-job.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { putImageWithFeature, TEST_SPEC } from './support.ts';

const INT8_SPEC = `${TEST_SPEC}/int8`;
const INPUT = { dataset: 'pets', trigger: 'auto' as const, requestedAt: '2026-01-01T00:00:05.000Z' };

/** The expectation train-head derives from its environment (functions/train-head/handler.ts). */
function expectationOf(precision: string) {
  const cfg = loadModelConfig({
    TLEARN_WEIGHTS: 'random:1',
    TLEARN_INPUT_SIZE: '32',
    TLEARN_POOLING: 'flatten',
    TLEARN_PRECISION: precision,
  });
  return specExpectationFromModelConfig(cfg, 'bilinear');
}

describe('training on features of one precision (emulated S3)', () => {
  let emu: Emulator;
  let deps: TrainJobDeps;

  async function dataset(labels: Record<string, number>, spec: string, prefix: string): Promise<void> {
    for (const [label, n] of Object.entries(labels)) {
      for (let i = 0; i < n; i++) {
        await putImageWithFeature(emu, `datasets/pets/${label}/${prefix}${i}.png`, { spec, seed: i });
      }
    }
  }

  beforeAll(async () => {
    emu = await startEmulator();
    deps = {
      s3: emu.clients.s3,
      bucket: emu.bucket,
      training: { featureConcurrency: 4, refitOnAll: false, C: 1, maxIter: 100 },
      log: silentLog,
      now: () => new Date('2026-01-01T00:05:10Z'),
      shortId: () => 'int8abcd',
    };
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(() => emu.reset());

  it('an int8 deployment trains on the /int8 features and leaves the fp32 ones out, even outnumbered', async () => {
    // Prepare: more fp32 features than int8 ones, the same weights, size and pooling.
    await dataset({ cat: 2, dog: 2 }, INT8_SPEC, 'q-');
    await dataset({ cat: 4, dog: 4 }, TEST_SPEC, 'f-');

    // Act
    const r = await runTrainingJob(INPUT, { ...deps, expect: expectationOf('int8') });

    // Assess
    expect(r.spec).toBe(INT8_SPEC);
    expect(r.nTrain + r.nTest).toBe(4);
    expect(r.excluded).toEqual([{ reason: 'other-spec', spec: TEST_SPEC, count: 8 }]);
  });

  it('an fp32 deployment never trains on int8 features', async () => {
    await dataset({ cat: 2, dog: 2 }, INT8_SPEC, 'q-');

    await expect(runTrainingJob(INPUT, { ...deps, expect: expectationOf('fp32') })).rejects.toThrow(
      /no feature of dataset matches the deployment's extractor \(.*precision fp32\)/,
    );
  });
});
