import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../lib/errors.ts';
import { mulberry32, stratifiedSplit } from '../../../lib/training/split.ts';

function labelsOf(counts: number[]): Int32Array {
  return Int32Array.from(counts.flatMap((c, k) => Array.from({ length: c }, () => k)));
}

function countPerClass(idx: Int32Array, labels: Int32Array, K: number): number[] {
  const out = new Array<number>(K).fill(0);
  for (const i of idx) out[labels[i] as number] = (out[labels[i] as number] as number) + 1;
  return out;
}

describe('stratifiedSplit', () => {
  it('holds out ⌈testSize·n⌉ samples in proportion to class sizes', () => {
    const labels = labelsOf([50, 30, 20]);

    const { train, test } = stratifiedSplit(labels, 0.2, 42);

    expect(test.length).toBe(20);
    expect(train.length).toBe(80);
    expect(countPerClass(test, labels, 3)).toEqual([10, 6, 4]);
  });

  it('partitions the indices: sorted, disjoint, covering every sample once', () => {
    const labels = labelsOf([7, 11, 3]);

    const { train, test } = stratifiedSplit(labels, 0.3, 1);

    const all = [...train, ...test].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 21 }, (_, i) => i));
    expect([...train]).toEqual([...train].sort((a, b) => a - b));
    expect([...test]).toEqual([...test].sort((a, b) => a - b));
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const labels = labelsOf([40, 40]);

    const a = stratifiedSplit(labels, 0.25, 42);
    const b = stratifiedSplit(labels, 0.25, 42);
    const c = stratifiedSplit(labels, 0.25, 43);

    expect(b.test).toEqual(a.test);
    expect(c.test).not.toEqual(a.test);
    expect(countPerClass(c.test, labels, 2)).toEqual(countPerClass(a.test, labels, 2));
  });

  it('keeps one sample of every class in train and puts one in test when a class has two', () => {
    const labels = labelsOf([2, 2, 100]);

    const { train, test } = stratifiedSplit(labels, 0.05, 7);

    expect(countPerClass(test, labels, 3)).toEqual([1, 1, 4]);
    expect(countPerClass(train, labels, 3)).toEqual([1, 1, 96]);
  });

  it('never moves the only sample of a class to test, even with a large test size', () => {
    const labels = labelsOf([1, 3, 3]);

    const { train, test } = stratifiedSplit(labels, 0.9, 3);

    expect(countPerClass(train, labels, 3)).toEqual([1, 1, 1]);
    expect(countPerClass(test, labels, 3)).toEqual([0, 2, 2]);
  });

  it('puts everything in train for test size 0', () => {
    const labels = labelsOf([3, 4]);

    const { train, test } = stratifiedSplit(labels, 0, 42);

    expect([...train]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(test.length).toBe(0);
  });

  it('refuses a test size outside [0, 1) and a fractional seed', () => {
    const labels = labelsOf([3, 3]);

    expect(() => stratifiedSplit(labels, 1, 42)).toThrow(ValidationError);
    expect(() => stratifiedSplit(labels, -0.1, 42)).toThrow(/test size/);
    expect(() => stratifiedSplit(labels, 0.2, 1.5)).toThrow(/seed/);
  });
});

describe('mulberry32', () => {
  it('repeats its sequence for a seed and stays in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());

    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    // Roughly uniform: the mean of 1000 draws is near ½.
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / 1000 - 0.5)).toBeLessThan(0.05);
  });
});
