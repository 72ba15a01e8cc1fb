import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../lib/errors.ts';
import { headFromFit, predictProbaBatch } from '../../../lib/training/head.ts';
import { fitLogisticRegression } from '../../../lib/training/logistic.ts';
import { logisticFixture, matrixOf, maxAbsDiff, problem, relDiff, rowsOf } from './fixtures.ts';

const TIGHT = ['binary', 'multiclass', 'near_separable'];

function fitProblem(name: string, extra: Parameters<typeof fitLogisticRegression>[3] | object = {}) {
  const p = problem(name);
  const { X, y } = matrixOf(p);
  const fit = fitLogisticRegression(X, y, p.classes.length, {
    C: p.C,
    maxIter: p.max_iter,
    tol: p.tol,
    threads: 1,
    ...extra,
  });
  return { p, X, y, fit };
}

describe('fitLogisticRegression against scikit-learn', () => {
  it('uses the fixtures of the scikit-learn version the script ran', () => {
    expect(logisticFixture.meta.sklearn).toMatch(/^1\./);
    expect(logisticFixture.problems.map((p) => p.name)).toEqual(
      expect.arrayContaining([...TIGHT, 'unconverged', 'sparse_default', 'binary_default']),
    );
  });

  it.each(TIGHT)('finds the optimum scikit-learn finds (%s, tight tolerance)', (name) => {
    const { p, X, fit } = fitProblem(name);

    expect(fit.converged).toBe(true);
    expect(fit.coef.length).toBe(p.sklearn.coef.length);
    expect(relDiff(fit.coef, p.sklearn.coef)).toBeLessThan(1e-4);
    expect(relDiff(fit.intercept, p.sklearn.intercept)).toBeLessThan(1e-4);
    const proba = predictProbaBatch(headFromFit(p.classes, fit, 'test'), X);
    expect(maxAbsDiff(rowsOf(proba, p.classes.length), p.sklearn.predict_proba)).toBeLessThan(1e-5);
    // Same objective value (Σ log loss + ‖W‖²/2C), to 1e-9 relative.
    expect(Math.abs(fit.objective - p.sklearn.objective) / p.sklearn.objective).toBeLessThan(1e-9);
  });

  it.each(logisticFixture.problems.flatMap((p) => [[p.name, 'csr'] as const, [p.name, 'dense'] as const]))(
    'takes the same L-BFGS path as scikit-learn ≥ 1.4 (%s, %s rows): iterations, evaluations, stop, coefficients',
    (name, storage) => {
      const { p, X, fit } = fitProblem(name, { storage });

      expect(fit.nIter).toBe(p.modern.n_iter);
      expect(fit.nEval).toBe(p.modern.nfev);
      expect(fit.converged).toBe(p.modern.status === 0);
      expect(relDiff(fit.coef, p.modern.coef)).toBeLessThan(1e-6);
      expect(relDiff(fit.intercept, p.modern.intercept)).toBeLessThan(1e-6);
      expect(Math.abs(fit.objective - p.modern.fun_times_n) / p.modern.fun_times_n).toBeLessThan(1e-10);
      const proba = predictProbaBatch(headFromFit(p.classes, fit, 'test'), X);
      expect(maxAbsDiff(rowsOf(proba, p.classes.length), p.modern.predict_proba)).toBeLessThan(1e-7);
    },
  );

  it('stops at max_iter without converging, where scikit-learn does', () => {
    const { p, fit } = fitProblem('unconverged');

    expect(p.max_iter).toBe(5);
    expect(fit.nIter).toBe(5);
    expect(fit.converged).toBe(false);
    expect(fit.stop).toBe('maxIter');
    // After 5 iterations the coefficients are still far from the optimum, and match scikit-learn's.
    expect(relDiff(fit.coef, problem('multiclass').sklearn.coef)).toBeGreaterThan(1e-2);
    expect(relDiff(fit.coef, p.sklearn.coef)).toBeLessThan(1e-8);
  });

  it('fits one row for two classes and K rows for K > 2, in scikit-learn shapes', () => {
    const binary = fitProblem('binary');
    const multi = fitProblem('multiclass');

    expect(binary.fit.coef.length).toBe(1);
    expect(binary.fit.intercept.length).toBe(1);
    expect(binary.fit.coef[0]?.length).toBe(5);
    expect(multi.fit.coef.length).toBe(3);
    expect(multi.fit.intercept.length).toBe(3);
    // Softmax intercepts start at 0 and every gradient step keeps their sum there.
    expect(Math.abs(multi.fit.intercept.reduce((a, b) => a + b, 0))).toBeLessThan(1e-8);
  });

  it('tells apart a penalized intercept, a two-row softmax and an inverted C', () => {
    const { p, X, fit } = fitProblem('binary');
    const proba = rowsOf(predictProbaBatch(headFromFit(p.classes, fit, 'test'), X), 2);
    const wrong = p.wrong;
    if (!wrong) throw new Error('fixture lacks the wrong answers');

    expect(p.C).not.toBe(1); // 1/C = C would hide an inverted C
    expect(maxAbsDiff(proba, p.sklearn.predict_proba)).toBeLessThan(1e-6);
    expect(maxAbsDiff(proba, wrong.penalized_intercept)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(proba, wrong.two_row_softmax)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(proba, wrong.inverse_C)).toBeGreaterThan(1e-3);
  });
});

describe('fitLogisticRegression storage, threads and rows', () => {
  it('gives bit-identical results with dense rows, CSR rows and 1 or 3 threads', () => {
    const p = problem('sparse_default');
    const { X, y } = matrixOf(p, true);
    const opts = { C: p.C, maxIter: p.max_iter, tol: p.tol };

    const dense1 = fitLogisticRegression(X, y, 4, { ...opts, storage: 'dense', threads: 1 });
    const csr1 = fitLogisticRegression(X, y, 4, { ...opts, storage: 'csr', threads: 1 });
    const csr3 = fitLogisticRegression(X, y, 4, { ...opts, storage: 'csr', threads: 3, parallelMinWork: 0 });
    const dense2 = fitLogisticRegression(X, y, 4, {
      ...opts,
      storage: 'dense',
      threads: 2,
      parallelMinWork: 0,
    });

    expect(dense1.storage).toBe('dense');
    expect(csr1.storage).toBe('csr');
    expect(csr3.threads).toBe(3);
    expect(dense2.threads).toBe(2);
    for (const other of [csr1, csr3, dense2]) {
      expect(other.coef).toEqual(dense1.coef);
      expect(other.intercept).toEqual(dense1.intercept);
      expect(other.nIter).toBe(dense1.nIter);
    }
  });

  it('reads dense rows in one thread when the matrix is not in shared memory', () => {
    const p = problem('binary');
    const { X, y } = matrixOf(p, false);

    const fit = fitLogisticRegression(X, y, 2, {
      C: p.C,
      maxIter: 50,
      tol: 1e-6,
      storage: 'dense',
      threads: 2,
      parallelMinWork: 0,
    });

    expect(fit.threads).toBe(1);
  });

  it('copies the rows to CSR by default, and reads them dense beyond 65,536 features', () => {
    const auto = fitProblem('multiclass', { storage: 'auto' });
    const d = 65537;
    const wide = { data: new Float32Array(4 * d), n: 4, d };
    for (let i = 0; i < 4; i++) wide.data[i * d + (i % 2)] = 1;
    const y = new Int32Array([0, 1, 0, 1]);

    const wideFit = fitLogisticRegression(wide, y, 2, { C: 1, maxIter: 5, tol: 1e-4, threads: 1 });

    expect(auto.fit.storage).toBe('csr');
    expect(wideFit.storage).toBe('dense');
    expect(() => fitLogisticRegression(wide, y, 2, { C: 1, maxIter: 5, tol: 1e-4, storage: 'csr' })).toThrow(
      /do not fit a CSR copy/,
    );
  });

  it('agrees between the WebAssembly CSR kernel and the JavaScript dense loops on a binary problem', () => {
    const p = problem('binary_default');
    const { X, y } = matrixOf(p);
    const opts = { C: p.C, maxIter: p.max_iter, tol: p.tol, threads: 1 };

    const csr = fitLogisticRegression(X, y, 2, { ...opts, storage: 'csr' });
    const dense = fitLogisticRegression(X, y, 2, { ...opts, storage: 'dense' });

    // Same path; only the order of the dot-product partial sums differs (rounding).
    expect(csr.nIter).toBe(dense.nIter);
    expect(maxAbsDiff(csr.coef, dense.coef)).toBeLessThan(1e-9);
  });

  it('fits a subset of rows exactly as a copy of those rows', () => {
    const p = problem('multiclass');
    const { X, y } = matrixOf(p);
    const rows = Int32Array.from({ length: 45 }, (_, i) => i * 2);
    const copy = new Float32Array(rows.length * X.d);
    rows.forEach((r, i) => {
      copy.set(X.data.subarray(r * X.d, (r + 1) * X.d), i * X.d);
    });
    const yCopy = Int32Array.from(rows, (r) => y[r] as number);
    const opts = { C: 1, maxIter: 200, tol: 1e-8, threads: 1 };

    const viaRows = fitLogisticRegression(X, y, 3, { ...opts, rows });
    const viaCopy = fitLogisticRegression({ data: copy, n: rows.length, d: X.d }, yCopy, 3, opts);

    expect(viaRows.coef).toEqual(viaCopy.coef);
    expect(viaRows.intercept).toEqual(viaCopy.intercept);
  });

  it('reports progress once per iteration with the objective in the reported scale', () => {
    const seen: { iter: number; objective: number }[] = [];

    const { fit } = fitProblem('binary', {
      onIteration: (i: { iter: number; objective: number }) => seen.push(i),
    });

    expect(seen.map((s) => s.iter)).toEqual(Array.from({ length: fit.nIter }, (_, i) => i + 1));
    expect(seen.at(-1)?.objective).toBeCloseTo(fit.objective, 10);
    // L-BFGS never increases the objective from one iteration to the next.
    for (let i = 1; i < seen.length; i++)
      expect(seen[i]?.objective).toBeLessThanOrEqual((seen[i - 1]?.objective as number) + 1e-12);
  });
});

describe('fitLogisticRegression input checks', () => {
  const X = { data: new Float32Array([0, 1, 1, 0, 1, 1, 0, 0]), n: 4, d: 2 };
  const opts = { C: 1, maxIter: 10, tol: 1e-4 };

  it('refuses a class without rows', () => {
    expect(() => fitLogisticRegression(X, new Int32Array([0, 0, 2, 2]), 3, opts)).toThrow(
      /class\(es\) 1 have no rows/,
    );
  });

  it('refuses labels outside 0..K-1 and fewer than 2 classes', () => {
    expect(() => fitLogisticRegression(X, new Int32Array([0, 1, 2, 0]), 2, opts)).toThrow(ValidationError);
    expect(() => fitLogisticRegression(X, new Int32Array([0, 0, 0, 0]), 1, opts)).toThrow(
      /at least 2 classes/,
    );
  });

  it('refuses a non-positive C and a matrix whose size does not match', () => {
    expect(() => fitLogisticRegression(X, new Int32Array([0, 1, 0, 1]), 2, { ...opts, C: 0 })).toThrow(
      /C must be/,
    );
    expect(() => fitLogisticRegression({ ...X, n: 5 }, new Int32Array([0, 1, 0, 1, 0]), 2, opts)).toThrow(
      /matrix data has 8 values/,
    );
  });
});

describe('fitLogisticRegression with odd values', () => {
  it('treats -0 like 0 in the CSR copy', () => {
    const p = problem('sparse_default');
    const { X, y } = matrixOf(p);
    const negZero = Float32Array.from(X.data, (v) => (v === 0 ? -0 : v));
    const opts = { C: 1, maxIter: 100, tol: 1e-4, threads: 1, storage: 'csr' as const };

    const a = fitLogisticRegression(X, y, 4, opts);
    const b = fitLogisticRegression({ ...X, data: negZero }, y, 4, opts);

    expect(b.coef).toEqual(a.coef);
  });

  it('refuses NaN or infinite features with a message that says so', () => {
    const data = new Float32Array([1, 0, 0, 1, Number.NaN, 1, 0, 0]);
    const y = new Int32Array([0, 1, 0, 1]);

    for (const storage of ['csr', 'dense'] as const)
      expect(() =>
        fitLogisticRegression({ data, n: 4, d: 2 }, y, 2, { C: 1, maxIter: 5, tol: 1e-4, storage }),
      ).toThrow(/NaN or infinite/);
  });
});

describe('fitLogisticRegression with many classes', () => {
  it('gives the same fit through the looping WebAssembly kernel (K > 32) as through the dense loops', () => {
    const K = 33;
    const n = 2 * K;
    const d = 6;
    const data = new Float32Array(n * d);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % K;
      for (let j = 0; j < d; j++)
        data[i * d + j] = ((i * 7 + j * 3) % 5 === 0 ? 0 : Math.sin(i + j * K)) ** 2;
    }
    const opts = { C: 1, maxIter: 30, tol: 1e-6, threads: 1 };

    const csr = fitLogisticRegression({ data, n, d }, y, K, { ...opts, storage: 'csr' });
    const dense = fitLogisticRegression({ data, n, d }, y, K, { ...opts, storage: 'dense' });

    expect(csr.coef.length).toBe(K);
    expect(csr.coef).toEqual(dense.coef);
    expect(csr.intercept).toEqual(dense.intercept);
  });
});
