import { describe, expect, it } from 'vitest';
import { findSimilarPairs, rowsOfMatrix, sketchRows } from '../../../lib/quality/similarity.ts';
import { compactFromDense } from '../../../lib/training/compact-matrix.ts';
import { makePlantedDataset } from '../../helpers/quality-data.ts';

describe('count sketches and near-duplicate search over compact rows', () => {
  const ds = makePlantedDataset({
    classes: 2,
    perClass: 300,
    d: 1024,
    seed: 9,
    exact: 0,
    near: 12,
    crossLabel: 0,
    mislabels: 0,
  });
  const dense = { data: ds.data, n: ds.n, d: ds.d };
  const compact = compactFromDense(dense);

  it('sketches the non-zeros of compact rows into the very sketch of the dense rows', () => {
    const fromDense = sketchRows(rowsOfMatrix(dense), 256, 42);
    const fromCompact = sketchRows(rowsOfMatrix(compact), 256, 42);
    expect(fromCompact.data).toEqual(fromDense.data);
    expect(fromCompact.norms).toEqual(fromDense.norms);
    expect(fromCompact.sketchNorms).toEqual(fromDense.sketchNorms);
  });

  it('finds the same verified pairs, among them every planted near copy', () => {
    const opts = {
      threshold: 0.95,
      tables: 24,
      bits: 11,
      seed: 42,
      sketchSlack: 1.5,
      maxBucket: 64,
      window: 16,
    };
    const a = findSimilarPairs(rowsOfMatrix(dense), sketchRows(rowsOfMatrix(dense), 256, 42), opts);
    const b = findSimilarPairs(rowsOfMatrix(compact), sketchRows(rowsOfMatrix(compact), 256, 42), opts);
    expect(b.pairs).toEqual(a.pairs);
    expect(b.stats).toEqual(a.stats);
    const found = new Set(b.pairs.map((p) => `${p.i}-${p.j}`));
    for (const [i, j] of ds.nearPairs) expect(found.has(`${Math.min(i, j)}-${Math.max(i, j)}`)).toBe(true);
  });
});
