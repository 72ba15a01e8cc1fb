import { describe, expect, it } from 'vitest';
import { median, percentile, roundSig, summarize, summarizeLatency } from '../../../bench/lib/stats.ts';

describe('benchmark statistics', () => {
  it('takes the middle value of an odd count and the mean of the two middle values of an even count', () => {
    // prepare: unsorted on purpose
    const odd = [9, 1, 5];
    const even = [4, 1, 3, 10];

    // act
    const m1 = median(odd);
    const m2 = median(even);

    // assess
    expect(m1).toBe(5);
    expect(m2).toBe(3.5);
  });

  it('interpolates percentiles linearly between closest ranks like numpy.percentile', () => {
    // prepare: 1..10; numpy.percentile(range(1, 11), [0, 25, 50, 90, 95, 99, 100])
    const values = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];

    // act
    const ps = [0, 25, 50, 90, 95, 99, 100].map((p) => percentile(values, p));

    // assess
    expect(ps[0]).toBe(1);
    expect(ps[1]).toBeCloseTo(3.25, 12);
    expect(ps[2]).toBeCloseTo(5.5, 12);
    expect(ps[3]).toBeCloseTo(9.1, 12);
    expect(ps[4]).toBeCloseTo(9.55, 12);
    expect(ps[5]).toBeCloseTo(9.91, 12);
    expect(ps[6]).toBe(10);
  });

  it('summarizes runs with median, min, max and mean without reordering the input', () => {
    // prepare
    const runs = [120, 100, 400, 110];

    // act
    const s = summarize(runs);

    // assess
    expect(s).toEqual({ n: 4, median: 115, min: 100, max: 400, mean: 182.5 });
    expect(runs).toEqual([120, 100, 400, 110]);
  });

  it('reports p50 equal to the median and the tail percentiles of a latency sample', () => {
    // prepare: 100 requests of 1..100 ms
    const latencies = Array.from({ length: 100 }, (_, i) => 100 - i);

    // act
    const s = summarizeLatency(latencies);

    // assess: positions (n-1)·p = 49.5, 94.05, 98.01
    expect(s.p50).toBeCloseTo(50.5, 12);
    expect(s.p50).toBe(s.median);
    expect(s.p95).toBeCloseTo(95.05, 12);
    expect(s.p99).toBeCloseTo(99.01, 12);
    expect(s.min).toBe(1);
    expect(s.max).toBe(100);
  });

  it('treats a single value as its own median and every percentile', () => {
    expect(summarizeLatency([42])).toMatchObject({ median: 42, p50: 42, p95: 42, p99: 42, min: 42, max: 42 });
  });

  it('refuses empty samples, non-finite values and percentiles outside 0-100', () => {
    expect(() => median([])).toThrow(RangeError);
    expect(() => summarize([1, Number.NaN])).toThrow(/finite/);
    expect(() => percentile([1, 2], 101)).toThrow(/0\.\.100/);
  });

  it('rounds to significant digits but keeps whole numbers whole', () => {
    expect(roundSig(0.0123456, 3)).toBe(0.0123);
    expect(roundSig(96.44, 3)).toBe(96.4);
    expect(roundSig(12_345.6, 3)).toBe(12_346);
    expect(roundSig(0)).toBe(0);
  });
});
