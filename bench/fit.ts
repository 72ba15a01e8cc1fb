/**
 * Benchmark of the logistic-regression fit on synthetic ReLU-like features (non-negative, mostly
 * zeros, like VGG16 block5 features), with the production options (C 1, 100 iterations, tol 1e-4).
 *
 *   node bin/run-ts.js bench/fit.ts [n] [d] [classes] [sparsity] [threads] [storage]
 *
 * scikit-learn's reference on 20,000×8192 binary: ~123 ms per loss+gradient evaluation, ~16 s
 * for the whole fit.
 */
import { pathToFileURL } from 'node:url';
import { fitLogisticRegression } from '../lib/training/logistic.ts';
import { mulberry32 } from '../lib/training/split.ts';

export interface BenchFitParams {
  n: number;
  d: number;
  classes: number;
  /** Fraction of exact zeros (≥ 0.5 for ReLU-like data). */
  sparsity: number;
  seed: number;
  /** Threads for the fit. @default machine's CPUs (at most 8) */
  threads?: number;
  /** Row storage. @default 'auto' */
  storage?: 'auto' | 'dense' | 'csr';
  /** Put the matrix in a SharedArrayBuffer (lets dense storage use threads). @default false */
  shared?: boolean;
}

export interface BenchFitResult {
  ms: number;
  nIter: number;
  nEval: number;
  objective: number;
  msPerEval: number;
  peakRssMB: number;
  converged: boolean;
  threads: number;
  storage: 'dense' | 'csr';
  /** Time to generate the data (not in `ms`). */
  generateMs: number;
  /** Part of `ms` spent building the CSR copy. */
  prepareMs: number;
  /** CPU time of the fit, all threads (meaningful when the machine is shared). */
  cpuMs: number;
  /** CPU time per evaluation, all threads, excluding the preparation. */
  cpuMsPerEval: number;
}

/**
 * Generates an n×d ReLU-like matrix with labels from a planted linear model (with label noise,
 * so the classes are not separable) and fits it; returns timings and solver counts.
 */
export function benchFit(p: BenchFitParams): BenchFitResult {
  const t0 = performance.now();
  const rand = mulberry32(p.seed);
  const { n, d, classes: K } = p;
  const buf = p.shared ? new SharedArrayBuffer(n * d * 4) : new ArrayBuffer(n * d * 4);
  const data = new Float32Array(buf);
  // A few informative features per class; the rest is noise.
  const informative = Math.min(d, 64);
  const wTrue = Array.from({ length: K }, () =>
    Float64Array.from({ length: informative }, () => rand() - 0.5),
  );
  const y = new Int32Array(n);
  const z = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    const off = i * d;
    for (let j = 0; j < d; j++) {
      if (rand() < p.sparsity) continue;
      // Exponential-like positive activations, mean ~2.
      data[off + j] = -2 * Math.log(1 - rand());
    }
    for (let k = 0; k < K; k++) {
      let s = 0;
      const w = wTrue[k] as Float64Array;
      for (let j = 0; j < informative; j++) s += (w[j] as number) * (data[off + j] as number);
      z[k] = s + 2 * (rand() - 0.5); // noise
    }
    let best = 0;
    for (let k = 1; k < K; k++) if ((z[k] as number) > (z[best] as number)) best = k;
    y[i] = best;
  }
  // Make sure every class occurs.
  for (let k = 0; k < K && k < n; k++) y[k] = k;
  const generateMs = performance.now() - t0;

  const t1 = performance.now();
  const cpu0 = process.cpuUsage();
  const fit = fitLogisticRegression({ data, n, d }, y, K, {
    C: 1,
    maxIter: 100,
    tol: 1e-4,
    threads: p.threads,
    storage: p.storage ?? 'auto',
  });
  const ms = performance.now() - t1;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return {
    ms: Math.round(ms),
    nIter: fit.nIter,
    nEval: fit.nEval,
    objective: fit.objective,
    msPerEval: Math.round(((ms - fit.prepareMs) / fit.nEval) * 10) / 10,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    converged: fit.converged,
    threads: fit.threads,
    storage: fit.storage,
    generateMs: Math.round(generateMs),
    prepareMs: Math.round(fit.prepareMs),
    cpuMs: Math.round(cpuMs),
    // The preparation runs on this thread alone, so its CPU time is its wall time.
    cpuMsPerEval: Math.round(((cpuMs - fit.prepareMs) / fit.nEval) * 10) / 10,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [n = '2000', d = '8192', classes = '2', sparsity = '0.6', threads, storage] = process.argv.slice(2);
  const params: BenchFitParams = {
    n: Number(n),
    d: Number(d),
    classes: Number(classes),
    sparsity: Number(sparsity),
    seed: 42,
    threads: threads === undefined ? undefined : Number(threads),
    storage: (storage as BenchFitParams['storage']) ?? 'auto',
    shared: storage === 'dense',
  };
  console.log(JSON.stringify({ params, result: benchFit(params) }));
}
