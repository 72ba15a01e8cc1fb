import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { trainHeadWithQuality } from '../../../lib/quality/assess.ts';
import { findLabelErrors } from '../../../lib/quality/label-errors.ts';
import { compactFromDense } from '../../../lib/training/compact-matrix.ts';
import { fitLogisticRegression } from '../../../lib/training/logistic.ts';
import {
  createBlockEvaluator,
  createFitPool,
  csrLayout,
  csrScratchBytes,
  FitPoolClosedError,
  N_BLOCKS,
} from '../../../lib/training/parallel.ts';
import { DEFAULT_TRAIN_OPTIONS } from '../../../lib/training/train.ts';
import type { Matrix } from '../../../lib/training/types.ts';
import { mulberry32 } from '../../../lib/util/random.ts';
import { makePlantedDataset } from '../../helpers/quality-data.ts';

/** ReLU-like rows (half zeros) with labels from a planted linear model. */
function problem(n: number, d: number, K: number, seed: number): { X: Matrix; y: Int32Array } {
  const rand = mulberry32(seed);
  const data = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let j = 0; j < d; j++) if (rand() < 0.5) data[i * d + j] = rand() * 3;
    for (let k = 0; k < K; k++) {
      let s = rand();
      for (let j = k; j < d; j += K) s += data[i * d + j] as number;
      if (s > bestScore) {
        bestScore = s;
        best = k;
      }
    }
    y[i] = i < K ? i : best;
  }
  return { X: { data, n, d }, y };
}

/** OS threads of this process (Linux), to see workers start and stop. */
function osThreads(): number {
  return readdirSync('/proc/self/task').length;
}

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

const OPTS = { C: 1, maxIter: 40, tol: 1e-6 };

describe('the fit pool (lib/training/parallel.ts)', () => {
  it('gives bit-identical fits to a single-threaded fit, fit after fit on the same workers', async () => {
    const { X, y } = problem(600, 40, 3, 7);
    const compact = compactFromDense(X);
    const pool = createFitPool(3);
    try {
      for (const [i, rows] of [Int32Array.from({ length: 400 }, (_, r) => r), undefined].entries()) {
        const rowOpt = rows ? { rows } : {};
        const one = fitLogisticRegression(X, y, 3, { ...OPTS, ...rowOpt, threads: 1 });
        const dense = fitLogisticRegression(X, y, 3, { ...OPTS, ...rowOpt, pool, parallelMinWork: 0 });
        const onCompact = fitLogisticRegression(compact, y, 3, {
          ...OPTS,
          ...rowOpt,
          pool,
          parallelMinWork: 0,
        });
        expect(one.threads).toBe(1);
        expect(dense.threads).toBe(3);
        expect(onCompact.threads).toBe(3);
        expect(dense.coef).toEqual(one.coef);
        expect(dense.intercept).toEqual(one.intercept);
        expect(onCompact.coef).toEqual(one.coef);
        expect(onCompact.nIter).toBe(one.nIter);
        expect(pool.jobs).toBe(2 * (i + 1));
      }
    } finally {
      await pool.close();
    }
  });

  it('runs the K-fold refits of the label-error search on its threads with the same out-of-fold probabilities', async () => {
    // 3,000 × 128 dense values: each fold's fit is above the pool's threading threshold.
    const { X, y } = problem(3000, 128, 2, 11);
    for (let i = 0; i < X.data.length; i++) if (X.data[i] === 0) X.data[i] = 0.01;
    const opts = { ...OPTS, maxIter: 30, folds: 5, seed: 42 };
    const pool = createFitPool(2);
    try {
      const single = findLabelErrors(X, y, 2, { ...opts, threads: 1 });
      const pooled = findLabelErrors(X, y, 2, { ...opts, pool });
      expect(pool.jobs).toBe(5);
      expect(pooled.foldsFit).toBe(5);
      expect(pooled.proba).toEqual(single.proba);
      expect(pooled.flagged).toEqual(single.flagged);
    } finally {
      await pool.close();
    }
  });

  it('gives the training and its quality pass the same results as single-threaded, and closes the pool it made', async () => {
    const ds = makePlantedDataset({
      classes: 3,
      perClass: 200,
      d: 512,
      seed: 5,
      exact: 6,
      near: 6,
      crossLabel: 3,
      mislabels: 6,
    });
    const train = {
      X: { data: ds.data, n: ds.n, d: ds.d },
      labels: ds.labels,
      spec: 'synthetic',
      options: DEFAULT_TRAIN_OPTIONS,
    };
    const source = { keys: ds.keys, contentIds: ds.contentIds };
    const meta = { dataset: 'pool', version: null };
    const single = trainHeadWithQuality({ ...train, threads: 1 }, source, meta);
    const pool = createFitPool(2);
    try {
      const pooled = trainHeadWithQuality({ ...train, pool }, source, meta);
      expect(pool.jobs).toBeGreaterThan(0); // the fit is over the pool's threading threshold
      expect(pool.closed).toBe(false); // a pool handed in is the caller's to close
      expect(pooled.model.coef).toEqual(single.model.coef);
      expect(pooled.quality.labelErrors).toEqual(single.quality.labelErrors);
      expect(pooled.quality.duplicates).toEqual(single.quality.duplicates);
    } finally {
      await pool.close();
    }
    // Without a pool it makes one (two threads here) and closes it before returning.
    const before = osThreads();
    trainHeadWithQuality({ ...train, threads: 2 }, source, meta);
    expect(await until(() => osThreads() <= before)).toBe(true);
  });

  it('starts its workers with the first threaded fit, shuts them down on close, and a closed pool is refused', async () => {
    expect(existsSync('/proc/self/task')).toBe(true);
    const before = osThreads();
    const pool = createFitPool(3);
    expect(pool.threads).toBe(3);
    const { X, y } = problem(50, 8, 2, 1);
    // Workers start with the first fit that uses threads.
    expect(fitLogisticRegression(X, y, 2, { ...OPTS, pool }).threads).toBe(1);
    expect(osThreads()).toBeLessThanOrEqual(before);
    expect(fitLogisticRegression(X, y, 2, { ...OPTS, pool, parallelMinWork: 0 }).threads).toBe(3);
    expect(await until(() => osThreads() >= before + 2)).toBe(true);
    await pool.close();
    await pool.close(); // twice is fine
    expect(pool.closed).toBe(true);
    expect(await until(() => osThreads() <= before)).toBe(true);
    expect(() => fitLogisticRegression(X, y, 2, { ...OPTS, pool })).toThrow(FitPoolClosedError);
  });

  it("propagates a fit's error and stays usable after it", async () => {
    const { X, y } = problem(400, 16, 2, 3);
    const bad = { ...X, data: X.data.slice() };
    bad.data[5 * 16 + 3] = Number.NaN;
    const pool = createFitPool(2);
    try {
      expect(() => fitLogisticRegression(bad, y, 2, { ...OPTS, pool, parallelMinWork: 0 })).toThrow(
        /NaN or infinite/,
      );
      const after = fitLogisticRegression(X, y, 2, { ...OPTS, pool, parallelMinWork: 0 });
      const single = fitLogisticRegression(X, y, 2, { ...OPTS, threads: 1 });
      expect(after.threads).toBe(2);
      expect(after.coef).toEqual(single.coef);
    } finally {
      await pool.close();
    }
  });

  it('throws the error of a failing block from whichever thread ran it, then serves the next fit', async () => {
    const { X, y } = problem(400, 16, 2, 4);
    const compact = compactFromDense(X);
    const shard = compact.shards[0];
    if (shard === undefined) throw new Error('no shard');
    const n = X.n;
    const rowOff = new Uint32Array(new SharedArrayBuffer(n * 4));
    rowOff.set(compact.rowOff);
    const rowNnz = new Int32Array(new SharedArrayBuffer(n * 4));
    rowNnz.set(compact.rowNnz);
    const ys = new Int32Array(new SharedArrayBuffer(n * 4));
    ys.set(y);
    // The first row of block 1 points far outside the memory (threads claim blocks as they run,
    // so the main thread or the worker may hit it).
    rowOff[Math.floor(n / N_BLOCKS)] = 0xfff0_0000;
    const layout = csrLayout(1, X.d, shard.scratch(csrScratchBytes(1, X.d)));
    const pool = createFitPool(2);
    try {
      const evaluator = createBlockEvaluator(
        { n, d: X.d, y: ys, dense: null, rows: null, csr: { rowOff, rowNnz, memory: shard.memory, layout } },
        1,
        2,
        pool,
      );
      expect(evaluator.threads).toBe(2);
      const grad = new Float64Array(X.d + 1);
      expect(() => evaluator.evaluate(new Float64Array(X.d + 1), grad)).toThrow(
        /^(a fit worker thread failed: )?.*memory access out of bounds/i,
      );
      evaluator.close();
      const after = fitLogisticRegression(compact, y, 2, { ...OPTS, pool, parallelMinWork: 0 });
      const single = fitLogisticRegression(compact, y, 2, { ...OPTS, threads: 1 });
      expect(after.threads).toBe(2);
      expect(after.coef).toEqual(single.coef);
    } finally {
      await pool.close();
    }
  });
});
