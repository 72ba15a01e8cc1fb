import { describe, expect, it } from 'vitest';
import { createLineSearch, minimizeLbfgs } from '../../../lib/training/lbfgs.ts';

/** Rosenbrock in n dimensions: minimum 0 at (1, …, 1). */
function rosenbrock(x: Float64Array, g: Float64Array): number {
  let f = 0;
  g.fill(0);
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i] as number;
    const b = x[i + 1] as number;
    f += 100 * (b - a * a) ** 2 + (1 - a) ** 2;
    g[i] = (g[i] as number) - 400 * a * (b - a * a) - 2 * (1 - a);
    g[i + 1] = (g[i + 1] as number) + 200 * (b - a * a);
  }
  return f;
}

describe('minimizeLbfgs', () => {
  // Iteration and evaluation counts below are scipy 1.10's for the same calls:
  // minimize(fg, x0, jac=True, method='L-BFGS-B', options=dict(gtol=…, ftol=0, …)).
  it("finds the minimum of the Rosenbrock function along scipy's path", () => {
    const x0 = Float64Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? -1.2 : 1));

    const r = minimizeLbfgs(rosenbrock, x0, { gtol: 1e-9, ftol: 0, maxIter: 1000 });

    expect([r.nIter, r.nEval]).toEqual([59, 71]);
    expect(r.converged).toBe(true);
    expect(r.stop).toBe('gtol');
    for (const v of r.x) expect(v).toBeCloseTo(1, 6);
    expect(r.f).toBeLessThan(1e-12);
    expect(x0[0]).toBe(-1.2); // the start point is not modified
  });

  it("solves a 2-d quadratic along scipy's path", () => {
    // f = ½ xᵀAx - bᵀx with A = [[3, 1], [1, 2]]: minimum at A⁻¹b.
    const fg = (x: Float64Array, g: Float64Array) => {
      const [a = 0, b = 0] = x;
      g[0] = 3 * a + b - 1;
      g[1] = a + 2 * b - 2;
      return 0.5 * (3 * a * a + 2 * a * b + 2 * b * b) - a - 2 * b;
    };

    const r = minimizeLbfgs(fg, new Float64Array(2), { gtol: 1e-10, ftol: 0 });

    expect([r.nIter, r.nEval]).toEqual([9, 10]);
    expect(r.x[0]).toBeCloseTo(0, 8);
    expect(r.x[1]).toBeCloseTo(1, 8);
  });

  it('stops at maxIter and says it did not converge', () => {
    const r = minimizeLbfgs(rosenbrock, new Float64Array([-1.2, 1]), { gtol: 1e-12, maxIter: 3 });

    expect(r.nIter).toBe(3);
    expect(r.converged).toBe(false);
    expect(r.stop).toBe('maxIter');
  });

  it('stops before any iteration when the start already meets gtol', () => {
    let calls = 0;
    const r = minimizeLbfgs(
      (_x, g) => {
        calls++;
        g.fill(0);
        return 0;
      },
      new Float64Array(3),
      { gtol: 1e-5 },
    );

    expect(r.nIter).toBe(0);
    expect(calls).toBe(1);
    expect(r.converged).toBe(true);
  });

  it('stops on a small relative reduction of f (ftol)', () => {
    const r = minimizeLbfgs(rosenbrock, new Float64Array([-1.2, 1]), { gtol: 0, ftol: 1e-3, maxIter: 1000 });

    expect(r.stop).toBe('ftol');
    expect(r.converged).toBe(true);
    expect(r.nIter).toBeLessThan(1000);
  });

  it('reports each iteration with a non-increasing objective', () => {
    const fs: number[] = [];

    minimizeLbfgs(rosenbrock, new Float64Array([-1.2, 1]), { gtol: 1e-8, onIteration: (i) => fs.push(i.f) });

    expect(fs.length).toBeGreaterThan(5);
    for (let i = 1; i < fs.length; i++) expect(fs[i]).toBeLessThanOrEqual(fs[i - 1] as number);
  });
});

describe('createLineSearch', () => {
  it('ends at a step that meets the strong Wolfe conditions', () => {
    // φ(t) = f(x + t·d) for f = (x - 3)⁴ + x² from x = 0 along d = 1: φ'(0) < 0.
    const phi = (t: number) => (t - 3) ** 4 + t * t;
    const dphi = (t: number) => 4 * (t - 3) ** 3 + 2 * t;
    const ftol = 1e-3;
    const gtol = 0.9;
    const ls = createLineSearch(phi(0), dphi(0), 1e-3, ftol, gtol, 0.1, 0, 1e10);

    let stp = 1e-3;
    let task = 'fg';
    for (let i = 0; i < 50 && task === 'fg'; i++) {
      const r = ls.step(phi(stp), dphi(stp));
      task = r.task;
      stp = r.stp;
    }

    expect(task).toBe('converged');
    expect(phi(stp)).toBeLessThanOrEqual(phi(0) + ftol * stp * dphi(0));
    expect(Math.abs(dphi(stp))).toBeLessThanOrEqual(gtol * Math.abs(dphi(0)));
  });

  it('refuses an ascent direction', () => {
    const ls = createLineSearch(0, 1, 1, 1e-3, 0.9, 0.1, 0, 10);

    expect(ls.step(0, 1).task).toBe('error');
  });
});
