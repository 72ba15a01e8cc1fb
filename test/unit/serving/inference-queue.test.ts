import { describe, expect, it } from 'vitest';
import { createInferenceQueue } from '../../../lib/serving/inference-queue.ts';

/** An extractor whose passes take a few ms, recording overlap and batch sizes. */
function slowExtractor(opts: { failOnValue?: number } = {}) {
  let active = 0;
  const record = { maxActive: 0, batches: [] as number[][] };
  return {
    record,
    async extractBatch(images: readonly Float32Array[]): Promise<Float32Array[]> {
      active += 1;
      record.maxActive = Math.max(record.maxActive, active);
      record.batches.push(images.map((x) => x[0] ?? Number.NaN));
      await new Promise((r) => setTimeout(r, 5));
      active -= 1;
      if (images.some((x) => x[0] === opts.failOnValue)) throw new Error('forward pass failed');
      // The "feature" of an image is its first value times ten: easy to tell apart.
      return images.map((x) => Float32Array.of((x[0] ?? 0) * 10));
    },
  };
}

const input = (v: number) => Float32Array.of(v);

describe('createInferenceQueue', () => {
  it('runs one pass at a time and answers each request with its own vector', async () => {
    // Prepare
    const ex = slowExtractor();
    const queue = createInferenceQueue(ex, { maxBatch: 4 });
    // Act: ten requests arriving at different moments.
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i));
        return queue.extract(input(i));
      }),
    );
    // Assess
    expect(results.map((r) => r[0])).toEqual(Array.from({ length: 10 }, (_, i) => i * 10));
    expect(ex.record.maxActive).toBe(1);
    expect(ex.record.batches.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });

  it('batches requests that queue up during a pass, up to maxBatch', async () => {
    const ex = slowExtractor();
    const queue = createInferenceQueue(ex, { maxBatch: 3 });
    const results = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((v) => queue.extract(input(v))));
    expect(results.map((r) => r[0])).toEqual([10, 20, 30, 40, 50, 60, 70]);
    // Same-tick requests share passes: 3 + 3 + 1, in arrival order.
    expect(ex.record.batches).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(queue.stats).toEqual({ passes: 3, images: 7, largestBatch: 3 });
  });

  it('fails only the requests of a failed pass and keeps serving the next ones', async () => {
    const ex = slowExtractor({ failOnValue: 2 });
    const queue = createInferenceQueue(ex, { maxBatch: 2 });
    const settled = await Promise.allSettled([1, 2, 3].map((v) => queue.extract(input(v))));
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    const after = await queue.extract(input(4));
    expect(after[0]).toBe(40);
    expect(queue.waiting).toBe(0);
  });

  it('rejects when the extractor returns fewer vectors than images', async () => {
    const queue = createInferenceQueue({ extractBatch: async () => [] }, { maxBatch: 2 });
    await expect(queue.extract(input(1))).rejects.toThrow('extractor returned 0 vectors for 1 images');
  });
});
