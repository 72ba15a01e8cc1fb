import { afterAll, describe, expect, it } from 'vitest';
import {
  releaseSharedExtractors,
  sharedExtractor,
  sharedExtractorCount,
} from '../../../lib/model/shared-extractor.ts';

describe('the process-wide extractor', () => {
  afterAll(async () => {
    await releaseSharedExtractors();
  });

  it('gives every caller with the same options the same extractor, and a new one for other options', async () => {
    // prepare: what two handlers of one process would ask for (the local stack)
    const opts = { weights: { kind: 'random', seed: 5 } as const, inputSize: 32, pooling: 'avg' as const };

    // act
    const [a, b] = await Promise.all([sharedExtractor(opts), sharedExtractor({ ...opts, warmUp: false })]);
    const c = await sharedExtractor({ ...opts, pooling: 'max' });

    // assess
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(c.spec.pooling).toBe('max');
    expect(sharedExtractorCount()).toBe(2);
  });

  it('keeps working when one caller disposes its handle', async () => {
    // prepare
    const opts = { weights: { kind: 'random', seed: 5 } as const, inputSize: 32, pooling: 'avg' as const };
    const first = await sharedExtractor(opts);

    // act
    first.dispose();
    const [vector] = await (await sharedExtractor(opts)).extractBatch([new Float32Array(32 * 32 * 3)]);

    // assess
    expect(vector).toHaveLength(512);
  });

  it('forgets a failed load, so the next call tries again', async () => {
    // prepare: an input size loadExtractor refuses
    const bad = { weights: { kind: 'random', seed: 5 } as const, inputSize: 8, pooling: 'avg' as const };
    const before = sharedExtractorCount();

    // act
    const failure = await sharedExtractor(bad).catch((err: unknown) => err);

    // assess
    expect(failure).toBeInstanceOf(Error);
    expect(sharedExtractorCount()).toBe(before);
  });
});
