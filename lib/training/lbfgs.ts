/**
 * Limited-memory BFGS for smooth unconstrained problems, following SciPy's L-BFGS-B (Byrd, Lu,
 * Nocedal, Zhu; v3.0) step for step when no bounds are given, because scikit-learn's
 * `LogisticRegression(solver="lbfgs")` runs exactly that and we want the same iterates, the
 * same iteration counts and the same stopping reasons:
 *
 * - direction: the L-BFGS two-loop recursion with H0 = (sᵀy / yᵀy)·I of the newest pair (what
 *   L-BFGS-B's compact form + subspace minimization reduce to without bounds); the first
 *   direction (and the one after a reset) is -g;
 * - step: MINPACK-2 `dcsrch` (Moré-Thuente) with ftol = 1e-3, gtol = 0.9, xtol = 0.1, i.e. the
 *   strong Wolfe conditions; first trial step 1/‖d‖ on the first iteration, 1 afterwards;
 * - a pair with sᵀy ≤ ε·(-gᵀd·stp) is skipped; a failed line search restores the previous point
 *   and restarts from -g (or ends the run if the memory was already empty);
 * - stopping, in L-BFGS-B's order after each iteration: iteration limit (scipy checks `maxiter`
 *   first, reported as not converged), then max|g| ≤ gtol, then
 *   (f_old - f) ≤ ftol·max(|f_old|, |f|, 1).
 *
 * Float64 throughout. No allocation per iteration beyond the fixed work arrays.
 */

/** Machine epsilon of float64 (numpy's `np.finfo(float).eps`). */
export const EPS = 2.220446049250313e-16;

/** Options of {@link minimizeLbfgs}; names follow `scipy.optimize.minimize(method="L-BFGS-B")`. */
export interface LbfgsOptions {
  /** Number of correction pairs kept (scipy's `maxcor`). @default 10 */
  m?: number;
  /** Iteration limit (scipy's `maxiter`). @default 15000 */
  maxIter?: number;
  /** Stop when max|gᵢ| ≤ gtol (scipy's `gtol` / L-BFGS-B's `pgtol`). @default 1e-5 */
  gtol?: number;
  /** Stop when the relative reduction of f is ≤ ftol (scipy's `ftol` = factr·eps). @default 2.22e-9 */
  ftol?: number;
  /** Function evaluations allowed per line search (scipy's `maxls`). @default 20 */
  maxLs?: number;
  /** Total function evaluations allowed (scipy's `maxfun`); checked between iterations. @default 15000 */
  maxFun?: number;
  /** Called after every iteration with the new point's objective and gradient norm. */
  onIteration?: (info: { iter: number; f: number; gnorm: number; nEval: number }) => void;
}

/** Why the run ended. */
export type LbfgsStop =
  | 'gtol' // max|g| ≤ gtol
  | 'ftol' // relative reduction of f ≤ ftol
  | 'maxIter'
  | 'maxFun'
  | 'lineSearchFailed'; // no acceptable step even from steepest descent (like ABNORMAL_TERMINATION_IN_LNSRCH)

/** Result of {@link minimizeLbfgs}. `x` is the final point (the argument is left untouched). */
export interface LbfgsResult {
  x: Float64Array;
  f: number;
  /** Gradient at `x`. */
  g: Float64Array;
  /** Iterations run (scipy's `nit`). */
  nIter: number;
  /** Objective+gradient evaluations (scipy's `nfev`, without its initial cached call). */
  nEval: number;
  /** Stopped by gtol or ftol (scipy's `status == 0`). */
  converged: boolean;
  stop: LbfgsStop;
}

/**
 * Objective and gradient at `x`: writes the gradient into `g` and returns f. Must not keep `x`.
 */
export type ObjectiveGradient = (x: Float64Array, g: Float64Array) => number;

/**
 * Minimizes a smooth function with L-BFGS, stopping like scipy's L-BFGS-B (see module comment).
 *
 * @example
 * const r = minimizeLbfgs((x, g) => { g[0] = 2 * (x[0] - 3); return (x[0] - 3) ** 2; },
 *   new Float64Array([0]), { gtol: 1e-8 });
 * // r.x[0] ≈ 3, r.converged === true
 */
export function minimizeLbfgs(fg: ObjectiveGradient, x0: Float64Array, opts: LbfgsOptions = {}): LbfgsResult {
  const m = opts.m ?? 10;
  const maxIter = opts.maxIter ?? 15000;
  const gtol = opts.gtol ?? 1e-5;
  const ftol = opts.ftol ?? 1e7 * EPS;
  const maxLs = opts.maxLs ?? 20;
  const maxFun = opts.maxFun ?? 15000;
  const n = x0.length;

  const x = Float64Array.from(x0);
  const g = new Float64Array(n);
  const xOld = new Float64Array(n); // L-BFGS-B's `t`: the point the line search starts from
  const gOld = new Float64Array(n); // L-BFGS-B's `r`
  const d = new Float64Array(n);
  // Correction pairs in a ring buffer: s = x_{k+1} - x_k, y = g_{k+1} - g_k.
  const S = Array.from({ length: m }, () => new Float64Array(n));
  const Y = Array.from({ length: m }, () => new Float64Array(n));
  const rho = new Float64Array(m);
  const alpha = new Float64Array(m);
  let col = 0; // pairs stored
  let head = 0; // index of the oldest pair
  let theta = 1; // B0 = θ·I, θ = yᵀy / sᵀy of the newest pair

  let nEval = 0;
  let f = fg(x, g);
  nEval++;
  let gnorm = maxAbs(g);
  let iter = 0;
  if (gnorm <= gtol) return finish('gtol');

  for (;;) {
    // Search direction d = -H·g (two-loop recursion).
    for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
    for (let c = col - 1; c >= 0; c--) {
      const k = (head + c) % m;
      const a = (rho[k] as number) * dot(S[k] as Float64Array, d);
      alpha[k] = a;
      axpy(-a, Y[k] as Float64Array, d);
    }
    if (col > 0) scale(d, 1 / theta);
    for (let c = 0; c < col; c++) {
      const k = (head + c) % m;
      const b = (rho[k] as number) * dot(Y[k] as Float64Array, d);
      axpy((alpha[k] as number) - b, S[k] as Float64Array, d);
    }

    // Line search along d from x.
    xOld.set(x);
    gOld.set(g);
    const fOld = f;
    const dnorm = Math.sqrt(dot(d, d));
    const stpMax = 1e10;
    let stp = iter === 0 ? Math.min(1 / dnorm, stpMax) : 1;
    const gdOld = dot(g, d);
    let ok = false;
    let gd = gdOld;
    if (gdOld < 0) {
      const ls = createLineSearch(f, gdOld, stp, 1e-3, 0.9, 0.1, 0, stpMax);
      for (let ifun = 0; ; ifun++) {
        if (ifun >= maxLs) break; // L-BFGS-B: iback >= maxls
        for (let i = 0; i < n; i++) x[i] = (xOld[i] as number) + stp * (d[i] as number);
        f = fg(x, g);
        nEval++;
        gd = dot(g, d);
        const r = ls.step(f, gd);
        if (r.task === 'converged' || r.task === 'warning') {
          ok = true;
          break;
        }
        if (r.task === 'error') break;
        stp = r.stp;
      }
    }
    if (!ok) {
      x.set(xOld);
      g.set(gOld);
      f = fOld;
      if (col === 0) {
        iter++;
        return finish('lineSearchFailed');
      }
      // Refresh the memory and restart from steepest descent, like L-BFGS-B.
      col = 0;
      head = 0;
      theta = 1;
      continue;
    }

    iter++;
    gnorm = maxAbs(g);
    opts.onIteration?.({ iter, f, gnorm, nEval });
    // scipy's driver counts NEW_X and stops at maxiter before L-BFGS-B tests convergence.
    if (iter >= maxIter) return finish('maxIter');
    if (nEval > maxFun) return finish('maxFun');
    if (gnorm <= gtol) return finish('gtol');
    if (fOld - f <= ftol * Math.max(Math.abs(fOld), Math.abs(f), 1)) return finish('ftol');

    // Update the memory with s = stp·d, y = g - gOld unless the curvature is too small.
    const dr = (gd - gdOld) * stp; // yᵀs
    const ddum = -gdOld * stp;
    if (dr <= EPS * ddum) continue;
    let k: number;
    if (col < m) {
      k = (head + col) % m;
      col++;
    } else {
      k = head;
      head = (head + 1) % m;
    }
    const s = S[k] as Float64Array;
    const y = Y[k] as Float64Array;
    let yy = 0;
    for (let i = 0; i < n; i++) {
      s[i] = stp * (d[i] as number);
      const yi = (g[i] as number) - (gOld[i] as number);
      y[i] = yi;
      yy += yi * yi;
    }
    rho[k] = 1 / dr;
    theta = yy / dr;
  }

  function finish(stop: LbfgsStop): LbfgsResult {
    return { x, f, g, nIter: iter, nEval, converged: stop === 'gtol' || stop === 'ftol', stop };
  }
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i] = (y[i] as number) + a * (x[i] as number);
}

function scale(x: Float64Array, a: number): void {
  for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) * a;
}

function maxAbs(x: Float64Array): number {
  let mx = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.abs(x[i] as number);
    if (v > mx) mx = v;
  }
  return mx;
}

/** What the line search wants next. */
export interface LineSearchStep {
  task: 'fg' | 'converged' | 'warning' | 'error';
  /** The next trial step when `task === 'fg'`. */
  stp: number;
}

/**
 * MINPACK-2 `dcsrch` (Moré & Thuente 1994) as a state machine: create it with f(0), f'(0) and the
 * first trial step, then feed it f(stp) and f'(stp) of each trial. It ends with `converged` when
 * the strong Wolfe conditions hold: f(stp) ≤ f(0) + ftol·stp·f'(0) and |f'(stp)| ≤ gtol·|f'(0)|;
 * `warning` means no better step can be found (rounding, xtol, stpmax/stpmin reached), and the
 * current trial is used, as L-BFGS-B does.
 */
export function createLineSearch(
  finit: number,
  ginit: number,
  stp0: number,
  ftol: number,
  gtol: number,
  xtol: number,
  stpmin: number,
  stpmax: number,
): { step(f: number, g: number): LineSearchStep } {
  const xtrapl = 1.1;
  const xtrapu = 4.0;
  if (stp0 < stpmin || stp0 > stpmax || ginit >= 0 || ftol < 0 || gtol < 0 || xtol < 0) {
    return { step: () => ({ task: 'error', stp: stp0 }) };
  }
  let stp = stp0;
  let brackt = false;
  let stage = 1;
  const gtest = ftol * ginit;
  let width = stpmax - stpmin;
  let width1 = width / 0.5;
  const st: StepState = { stx: 0, fx: finit, gx: ginit, sty: 0, fy: finit, gy: ginit, brackt: false };
  let stmin = 0;
  let stmax = stp + xtrapu * stp;

  return {
    step(f: number, g: number): LineSearchStep {
      const ftest = finit + stp * gtest;
      if (stage === 1 && f <= ftest && g >= 0) stage = 2;

      // Warnings, then convergence (convergence wins, as in dcsrch where it is tested last).
      let task: LineSearchStep['task'] = 'fg';
      if (brackt && (stp <= stmin || stp >= stmax)) task = 'warning';
      if (brackt && stmax - stmin <= xtol * stmax) task = 'warning';
      if (stp === stpmax && f <= ftest && g <= gtest) task = 'warning';
      if (stp === stpmin && (f > ftest || g >= gtest)) task = 'warning';
      if (f <= ftest && Math.abs(g) <= gtol * -ginit) task = 'converged';
      if (task !== 'fg') return { task, stp };

      st.brackt = brackt;
      if (stage === 1 && f <= st.fx && f > ftest) {
        // Modified function ψ(stp) = f(stp) - f(0) - ftol·stp·f'(0) while the decrease is insufficient.
        const fm = f - stp * gtest;
        const gm = g - gtest;
        st.fx -= st.stx * gtest;
        st.fy -= st.sty * gtest;
        st.gx -= gtest;
        st.gy -= gtest;
        stp = cstep(st, stp, fm, gm, stmin, stmax);
        st.fx += st.stx * gtest;
        st.fy += st.sty * gtest;
        st.gx += gtest;
        st.gy += gtest;
      } else {
        stp = cstep(st, stp, f, g, stmin, stmax);
      }
      brackt = st.brackt;

      // Bisect when the interval does not shrink fast enough.
      if (brackt) {
        if (Math.abs(st.sty - st.stx) >= 0.66 * width1) stp = st.stx + 0.5 * (st.sty - st.stx);
        width1 = width;
        width = Math.abs(st.sty - st.stx);
      }
      if (brackt) {
        stmin = Math.min(st.stx, st.sty);
        stmax = Math.max(st.stx, st.sty);
      } else {
        stmin = stp + xtrapl * (stp - st.stx);
        stmax = stp + xtrapu * (stp - st.stx);
      }
      stp = Math.max(stp, stpmin);
      stp = Math.min(stp, stpmax);
      // No further progress possible: take the best step found.
      if ((brackt && (stp <= stmin || stp >= stmax)) || (brackt && stmax - stmin <= xtol * stmax))
        stp = st.stx;
      return { task: 'fg', stp };
    },
  };
}

interface StepState {
  stx: number;
  fx: number;
  gx: number;
  sty: number;
  fy: number;
  gy: number;
  brackt: boolean;
}

/**
 * MINPACK-2 `dcstep`: a safeguarded cubic/quadratic step that updates the interval of
 * uncertainty [stx, sty] in `st` and returns the new trial step.
 */
function cstep(st: StepState, stp: number, fp: number, dp: number, stpmin: number, stpmax: number): number {
  const { stx, fx, gx: dx, sty, fy, gy: dy } = st;
  const sgnd = dp * (dx / Math.abs(dx));
  let stpf: number;

  if (fp > fx) {
    // Higher function value: the minimum is bracketed.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = s * Math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s));
    if (stp < stx) gamma = -gamma;
    const p = gamma - dx + theta;
    const q = gamma - dx + gamma + dp;
    const r = p / q;
    const stpc = stx + r * (stp - stx);
    const stpq = stx + (dx / ((fx - fp) / (stp - stx) + dx) / 2) * (stp - stx);
    stpf = Math.abs(stpc - stx) < Math.abs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2;
    st.brackt = true;
  } else if (sgnd < 0) {
    // Lower value, derivatives of opposite sign: bracketed.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = s * Math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma - dp + gamma + dx;
    const r = p / q;
    const stpc = stp + r * (stx - stp);
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
    st.brackt = true;
  } else if (Math.abs(dp) < Math.abs(dx)) {
    // Lower value, same sign, derivative magnitude decreases.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = s * Math.sqrt(Math.max(0, (theta / s) ** 2 - (dx / s) * (dp / s)));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma + (dx - dp) + gamma;
    const r = p / q;
    let stpc: number;
    if (r < 0 && gamma !== 0) stpc = stp + r * (stx - stp);
    else if (stp > stx) stpc = stpmax;
    else stpc = stpmin;
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if (st.brackt) {
      stpf = Math.abs(stpc - stp) < Math.abs(stpq - stp) ? stpc : stpq;
      if (stp > stx) stpf = Math.min(stp + 0.66 * (sty - stp), stpf);
      else stpf = Math.max(stp + 0.66 * (sty - stp), stpf);
    } else {
      stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
      stpf = Math.min(stpmax, stpf);
      stpf = Math.max(stpmin, stpf);
    }
  } else {
    // Lower value, same sign, derivative does not decrease.
    if (st.brackt) {
      const theta = (3 * (fp - fy)) / (sty - stp) + dy + dp;
      const s = Math.max(Math.abs(theta), Math.abs(dy), Math.abs(dp));
      let gamma = s * Math.sqrt((theta / s) ** 2 - (dy / s) * (dp / s));
      if (stp > sty) gamma = -gamma;
      const p = gamma - dp + theta;
      const q = gamma - dp + gamma + dy;
      const r = p / q;
      stpf = stp + r * (sty - stp);
    } else if (stp > stx) stpf = stpmax;
    else stpf = stpmin;
  }

  // Update the interval that contains a minimizer.
  if (fp > fx) {
    st.sty = stp;
    st.fy = fp;
    st.gy = dp;
  } else {
    if (sgnd < 0) {
      st.sty = stx;
      st.fy = fx;
      st.gy = dx;
    }
    st.stx = stp;
    st.fx = fp;
    st.gx = dp;
  }
  return stpf;
}
