import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../lib/errors.ts';
import { argmaxRows, headFromFit, predictProba, predictProbaBatch } from '../../../lib/training/head.ts';
import type { Head } from '../../../lib/training/types.ts';
import { matrixOf, maxAbsDiff, problem, rowsOf } from './fixtures.ts';

/** A head made of scikit-learn's own coefficients for a fixture problem. */
function sklearnHead(name: string): { head: Head; p: ReturnType<typeof problem> } {
  const p = problem(name);
  return { head: headFromFit(p.classes, p.sklearn, 'vgg16/random-1/64x64/avg/caffe/bilinear'), p };
}

describe('predictProba', () => {
  it.each(['binary', 'multiclass'])(
    "gives scikit-learn's predict_proba for its coefficients (%s)",
    (name) => {
      const { head, p } = sklearnHead(name);
      const { X } = matrixOf(p);

      const proba = rowsOf(predictProbaBatch(head, X), p.classes.length);

      expect(maxAbsDiff(proba, p.sklearn.predict_proba)).toBeLessThan(1e-12);
    },
  );

  it('returns the same probabilities one row at a time as in a batch, summing to 1', () => {
    const { head, p } = sklearnHead('multiclass');
    const { X } = matrixOf(p);
    const batch = predictProbaBatch(head, X);

    for (let i = 0; i < X.n; i += 17) {
      const one = predictProba(head, X.data.subarray(i * X.d, (i + 1) * X.d));
      expect(one).toEqual(Array.from(batch.subarray(i * 3, i * 3 + 3)));
      expect(one.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
    }
  });

  it('orders a binary head as [P(classes[0]), P(classes[1])] with a sigmoid of x·w + b', () => {
    const head: Head = { classes: ['cat', 'dog'], coef: [[2, -1]], intercept: [0.5], spec: 's' };

    const [pCat, pDog] = predictProba(head, new Float32Array([1, 3]));

    const z = 2 * 1 - 1 * 3 + 0.5;
    expect(pDog).toBeCloseTo(1 / (1 + Math.exp(-z)), 15);
    expect(pCat).toBeCloseTo(1 - 1 / (1 + Math.exp(-z)), 15);
  });

  it('stays finite for huge logits', () => {
    const head: Head = {
      classes: ['a', 'b', 'c'],
      coef: [[1000], [-1000], [0]],
      intercept: [0, 0, 0],
      spec: 's',
    };

    const p = predictProba(head, new Float32Array([5]));

    expect(p).toEqual([1, 0, 0]);
  });

  it('refuses a vector of the wrong length', () => {
    const { head } = sklearnHead('binary');

    expect(() => predictProba(head, new Float32Array(4))).toThrow(ValidationError);
    expect(() => predictProba(head, new Float32Array(4))).toThrow(/4 values, the model expects 5/);
  });
});

describe('headFromFit', () => {
  it('copies the arrays so later changes to the fit do not leak into the head', () => {
    const fit = { coef: [[1, 2]], intercept: [3] };

    const head = headFromFit(['a', 'b'], fit, 'spec');
    (fit.coef[0] as number[])[0] = 99;

    expect(head.coef).toEqual([[1, 2]]);
  });

  it('refuses shapes that do not fit the number of classes', () => {
    expect(() => headFromFit(['a', 'b', 'c'], { coef: [[1]], intercept: [0] }, 's')).toThrow(
      /3 coefficient row/,
    );
    expect(() => headFromFit(['a', 'b'], { coef: [[1], [2]], intercept: [0, 0] }, 's')).toThrow(
      /1 coefficient row/,
    );
    expect(() => headFromFit(['a'], { coef: [[1]], intercept: [0] }, 's')).toThrow(/at least 2 classes/);
  });
});

describe('argmaxRows', () => {
  it('takes the first class on ties, like numpy', () => {
    expect([...argmaxRows(new Float64Array([0.5, 0.5, 0.2, 0.8]), 2)]).toEqual([0, 1]);
  });
});
