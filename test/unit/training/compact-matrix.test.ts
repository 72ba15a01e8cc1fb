import { describe, expect, it } from 'vitest';
import {
  CompactMatrixBuilder,
  compactFromDense,
  compactRowBytes,
} from '../../../lib/training/compact-matrix.ts';
import { fitLogisticRegression } from '../../../lib/training/logistic.ts';
import { DEFAULT_TRAIN_OPTIONS, trainHead } from '../../../lib/training/train.ts';
import type { Matrix } from '../../../lib/training/types.ts';
import { matrixOf, problem } from './fixtures.ts';

/** A ReLU-like matrix: about `density` of the values non-zero, class-dependent means. */
function reluProblem(n: number, d: number, K: number, density: number, seed = 3) {
  let s = seed;
  const rand = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const data = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % K;
    y[i] = c;
    for (let j = 0; j < d; j++) {
      if (rand() < density) data[i * d + j] = rand() * 2 + (j % K === c ? 1.5 : 0);
    }
  }
  data[5] = -0; // a negative zero counts as zero
  return { X: { data, n, d } satisfies Matrix, y, labels: Array.from(y, (c) => `class-${c}`) };
}

describe('CompactMatrix', () => {
  it('keeps exactly the non-zeros of each row, in column order', () => {
    const { X } = reluProblem(20, 33, 3, 0.4);

    const C = compactFromDense(X);

    expect(C.n).toBe(20);
    let nnz = 0;
    for (let i = 0; i < X.n; i++) {
      const row = X.data.subarray(i * X.d, (i + 1) * X.d);
      expect(C.rowToDense(i)).toEqual(Float32Array.from(row, (v) => (v === 0 ? 0 : v)));
      let last = -1;
      C.forEachNonZero(i, (j, v) => {
        expect(j).toBeGreaterThan(last);
        expect(v).toBe(row[j]);
        last = j;
        nnz++;
      });
    }
    expect(C.nnz).toBe(nnz);
    expect(nnz).toBe(X.data.filter((v) => v !== 0).length);
  });

  it('computes row dot products, norms and dense dots like the dense rows', () => {
    const { X } = reluProblem(6, 50, 2, 0.5);
    const C = compactFromDense(X);
    const row = (i: number) => Array.from(X.data.subarray(i * X.d, (i + 1) * X.d));
    const dot = (a: number[], b: number[]) => a.reduce((s, v, j) => s + v * (b[j] as number), 0);
    const w = Array.from({ length: X.d }, (_, j) => Math.sin(j));

    for (let i = 0; i < X.n; i++) {
      expect(C.rowNorm(i)).toBeCloseTo(Math.sqrt(dot(row(i), row(i))), 10);
      expect(C.dotDense(i, w)).toBeCloseTo(dot(row(i), w), 10);
      for (let j = 0; j < X.n; j++) expect(C.rowDot(i, j)).toBeCloseTo(dot(row(i), row(j)), 10);
    }
  });

  it('selects rows as a view, in the order asked, and refuses rows outside the matrix', () => {
    const { X } = reluProblem(10, 16, 2, 0.5);
    const C = compactFromDense(X);

    const S = C.selectRows([7, 2, 2]);

    expect(S.n).toBe(3);
    expect(S.rowToDense(0)).toEqual(C.rowToDense(7));
    expect(S.rowToDense(2)).toEqual(C.rowToDense(2));
    expect(S.shards).toBe(C.shards);
    expect(() => C.selectRows([10])).toThrow(/outside the matrix/);
  });

  it('is filled in any row order, and leaves out the rows not kept', () => {
    const { X } = reluProblem(8, 16, 2, 0.5);
    const b = new CompactMatrixBuilder(8, 16);
    for (const i of [5, 0, 7, 3, 1, 6, 2]) b.setRow(i, X.data.subarray(i * 16, (i + 1) * 16));

    const C = b.finish([0, 1, 2, 3, 5, 6, 7]);

    expect(C.n).toBe(7);
    expect(C.rowToDense(4)).toEqual(compactFromDense(X).rowToDense(5));
    expect(() => b.setRow(4, new Float32Array(16))).toThrow(/finished/);
  });

  it('throws the error of its owner when rows would pass the byte budget', () => {
    const { X } = reluProblem(50, 4096, 2, 0.9);
    class BudgetError extends Error {}
    const b = new CompactMatrixBuilder(50, 4096, {
      maxBytes: 4 * 65536,
      onLimit: (needed) => new BudgetError(`needs ${needed}`),
    });

    expect(() => {
      for (let i = 0; i < 50; i++) b.setRow(i, X.data.subarray(i * 4096, (i + 1) * 4096));
    }).toThrow(BudgetError);
    expect(b.bytes).toBeLessThanOrEqual(4 * 65536);
  });

  it('sizes a row as 6 bytes per non-zero (padded) plus its row entry', () => {
    expect(compactRowBytes(0)).toBe(9);
    expect(compactRowBytes(3)).toBe(20 + 9);
    expect(compactRowBytes(8192)).toBe(6 * 8192 + 9);
  });
});

describe('fitting a CompactMatrix', () => {
  it('gives the coefficients and objective of the dense matrix, bit for bit, on the fixtures', () => {
    for (const name of ['sparse_default', 'multiclass', 'binary']) {
      const p = problem(name);
      const { X, y } = matrixOf(p, true);
      const opts = { C: p.C, maxIter: p.max_iter, tol: p.tol, threads: 1 };

      const dense = fitLogisticRegression(X, y, p.classes.length, { ...opts, storage: 'dense' });
      const compact = fitLogisticRegression(compactFromDense(X), y, p.classes.length, opts);

      expect(compact.storage).toBe('csr');
      expect(compact.coef).toEqual(dense.coef);
      expect(compact.intercept).toEqual(dense.intercept);
      expect(compact.objective).toBe(dense.objective);
      expect(compact.nIter).toBe(dense.nIter);
    }
  });

  it('fits a subset of rows like a dense copy of those rows (the K-fold case)', () => {
    const { X, y } = reluProblem(120, 64, 3, 0.3);
    const rows = Int32Array.from({ length: 80 }, (_, r) => (r * 7) % 120);
    const opts = { C: 1, maxIter: 50, tol: 1e-4, threads: 1 };
    const C = compactFromDense(X);

    const viaRows = fitLogisticRegression(C, y, 3, { ...opts, rows });
    const viaSelect = fitLogisticRegression(
      C.selectRows(rows),
      Int32Array.from(rows, (i) => y[i] as number),
      3,
      opts,
    );
    const dense = fitLogisticRegression(X, y, 3, { ...opts, rows, storage: 'dense' });

    expect(viaRows.coef).toEqual(dense.coef);
    expect(viaSelect.coef).toEqual(dense.coef);
    expect(viaSelect.objective).toBe(dense.objective);
  });

  it('fits rows spread over several shards the same for any thread count, close to one shard', () => {
    const { X, y } = reluProblem(200, 128, 4, 0.4);
    const opts = { C: 1, maxIter: 60, tol: 1e-6 };
    const b = new CompactMatrixBuilder(X.n, X.d, { shardBytes: 20_000 });
    for (let i = 0; i < X.n; i++) b.setRow(i, X.data.subarray(i * X.d, (i + 1) * X.d));
    const sharded = b.finish();
    const one = compactFromDense(X);

    const s1 = fitLogisticRegression(sharded, y, 4, { ...opts, threads: 1 });
    const s3 = fitLogisticRegression(sharded, y, 4, { ...opts, threads: 3, parallelMinWork: 0 });
    const single = fitLogisticRegression(one, y, 4, { ...opts, threads: 1 });

    expect(sharded.shards.length).toBeGreaterThan(3);
    expect(one.shards.length).toBe(1);
    expect(s3.coef).toEqual(s1.coef);
    expect(s3.objective).toBe(s1.objective);
    expect(Math.abs(s1.objective - single.objective) / single.objective).toBeLessThan(1e-9);
  });

  it('trains and evaluates the head from the compact form with the dense form’s documents', () => {
    const { X, labels } = reluProblem(150, 96, 3, 0.35);
    const now = () => new Date('2025-01-02T03:04:05.000Z');
    const spec = 'vgg16/random-7/64x64/flatten/caffe/bilinear';
    const base = { labels, spec, options: { ...DEFAULT_TRAIN_OPTIONS, refitOnAll: true }, now, threads: 1 };

    const dense = trainHead({ ...base, X });
    const compact = trainHead({ ...base, X: compactFromDense(X) });

    expect(compact.model).toEqual(dense.model);
    const strip = (r: typeof dense.report) => ({ ...r, timingsMs: undefined });
    expect(strip(compact.report)).toEqual(strip(dense.report));
  });
});
