/**
 * Benchmark of the data-quality pass against the training step it rides on, on
 * synthetic ReLU-like features (n × 8192, 60 % zeros, labels from a planted linear model, like
 * fit.ts) with planted exact copies (same content id) and near copies (each non-zero scaled by
 * 1 ± 5 %, cosine ≈ 0.999 to the original):
 *
 *   node bin/run-ts.js bench/quality.ts [n] [withQuality=1] [matrix=compact|dense] [pool=1|0]
 *
 * The training step is `trainHeadWithQuality` as the trainer runs it, timed in its parts: the
 * training is `trainHead` with the production options (stratified 80/20 split, L-BFGS fit,
 * evaluation); the quality pass is `findDuplicates` + `completeQuality` (sketch, LSH, exact
 * verification, leaks, 5-fold refit on the sketch), the fit and the refits sharing one fit pool.
 * The matrix is compact (non-zeros only, what the trainer Lambda loads) unless `matrix: 'dense'`
 * (the form `tlearn fit` reads). Peak memory is compared by running the training alone in one
 * process and training + quality in another (`withQuality`).
 */
import { pathToFileURL } from 'node:url';
import { completeQuality, findDuplicates, type QualityInput } from '../lib/quality/assess.ts';
import { rowsOfMatrix } from '../lib/quality/similarity.ts';
import { type CompactMatrix, compactFromDense } from '../lib/training/compact-matrix.ts';
import { createFitPool } from '../lib/training/parallel.ts';
import { DEFAULT_TRAIN_OPTIONS, trainHead } from '../lib/training/train.ts';
import type { Matrix } from '../lib/training/types.ts';
import { mulberry32 } from '../lib/util/random.ts';

export interface BenchQualityParams {
  n: number;
  d: number;
  classes: number;
  sparsity: number;
  seed: number;
  /** Near copies planted (each of a distinct original). */
  near: number;
  /** Exact copies planted. */
  exact: number;
  /** Run the quality pass after the training (else the training alone, for its peak memory). */
  withQuality: boolean;
  /** How the trainer holds the rows. @default 'compact' (the trainer Lambda's form) */
  matrix?: 'compact' | 'dense';
  /** The fit and the quality refits share one fit pool, as trainHeadWithQuality does. @default true */
  pool?: boolean;
}

export interface BenchQualityResult {
  trainMs: number;
  /** CPU time of the training step, all threads (the machine may be shared). */
  trainCpuMs: number;
  qualityCpuMs: number | null;
  qualityMs: number | null;
  /** qualityMs / trainMs. */
  overhead: number | null;
  /** qualityMs / (trainMs + qualityMs): the pass's share of the training step's wall time. */
  share: number | null;
  /** The same on CPU time (all threads). */
  cpuShare: number | null;
  matrix: 'compact' | 'dense';
  /** Threads of the fit (1 = no workers). */
  threads: number;
  phases: Record<string, number>;
  nearRecall: number | null;
  nearPrecision: number | null;
  exactRecall: number | null;
  candidates: string | null;
  labelErrors: number | null;
  peakRssMB: number;
  generateMs: number;
}

/** The synthetic dataset: rows, labels, keys, content ids, and the planted copies. */
export function makeBenchDataset(p: Omit<BenchQualityParams, 'withQuality'>) {
  const t0 = performance.now();
  const rand = mulberry32(p.seed);
  const { n, d, classes: K } = p;
  const data = new Float32Array(n * d);
  const informative = Math.min(d, 64);
  const wTrue = Array.from({ length: K }, () =>
    Float64Array.from({ length: informative }, () => rand() - 0.5),
  );
  const labels: string[] = new Array(n);
  const keys: string[] = new Array(n);
  const contentIds: string[] = new Array(n);
  const copies = p.near + p.exact;
  const originals = n - copies;
  const z = new Float64Array(K);
  for (let i = 0; i < originals; i++) {
    const off = i * d;
    for (let j = 0; j < d; j++) if (rand() >= p.sparsity) data[off + j] = -2 * Math.log(1 - rand());
    for (let k = 0; k < K; k++) {
      let s = 0;
      const w = wTrue[k] as Float64Array;
      for (let j = 0; j < informative; j++) s += (w[j] as number) * (data[off + j] as number);
      z[k] = s + 2 * (rand() - 0.5);
    }
    let best = 0;
    for (let k = 1; k < K; k++) if ((z[k] as number) > (z[best] as number)) best = k;
    labels[i] = `class-${i < K ? i : best}`;
    keys[i] = `img-${i}.jpg`;
    contentIds[i] = `etag-${i}`;
  }
  const nearPairs: [number, number][] = [];
  const exactPairs: [number, number][] = [];
  for (let c = 0; c < copies; c++) {
    const i = originals + c;
    const src = Math.floor((c * originals) / copies); // distinct originals, spread out
    const near = c < p.near;
    for (let j = 0; j < d; j++) {
      const v = data[src * d + j] as number;
      data[i * d + j] = near && v !== 0 ? v * (1 + 0.1 * (rand() - 0.5)) : v;
    }
    labels[i] = labels[src] as string;
    keys[i] = `img-${src}-${near ? 'near' : 'copy'}.jpg`;
    contentIds[i] = near ? `etag-${i}` : (contentIds[src] as string);
    (near ? nearPairs : exactPairs).push([src, i]);
  }
  return {
    X: { data, n, d },
    labels,
    keys,
    contentIds,
    nearPairs,
    exactPairs,
    generateMs: performance.now() - t0,
  };
}

/** Trains (and optionally runs the quality pass); returns timings, recall and peak RSS. */
export function benchQuality(p: BenchQualityParams): BenchQualityResult {
  const ds = makeBenchDataset(p);
  const matrix = p.matrix ?? 'compact';
  // The compact copy replaces the dense rows (which are then garbage): the trainer never holds both.
  const X: Matrix | CompactMatrix = matrix === 'compact' ? compactFromDense(ds.X) : ds.X;
  ds.X = { data: new Float32Array(0), n: 0, d: p.d };
  const pool = p.pool === false ? undefined : createFitPool();
  const input: QualityInput = {
    rows: rowsOfMatrix(X),
    labels: ds.labels,
    keys: ds.keys,
    contentIds: ds.contentIds,
    ...(pool ? { pool } : {}),
  };
  try {
    return measure(p, ds, X, input, pool);
  } finally {
    void pool?.close();
  }
}

function measure(
  p: BenchQualityParams,
  ds: ReturnType<typeof makeBenchDataset>,
  X: Matrix | CompactMatrix,
  input: QualityInput,
  pool: ReturnType<typeof createFitPool> | undefined,
): BenchQualityResult {
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let c = cpu();
  let t = performance.now();
  const found = p.withQuality ? findDuplicates(input) : undefined;
  const findMs = performance.now() - t;
  let qualityCpuMs = cpu() - c;
  c = cpu();
  t = performance.now();
  const trained = trainHead({
    X,
    labels: ds.labels,
    spec: 'bench',
    options: DEFAULT_TRAIN_OPTIONS,
    ...(pool ? { pool } : {}),
    ...(found?.groups ? { groups: found.groups } : {}),
  });
  const trainMs = performance.now() - t;
  const trainCpuMs = cpu() - c;
  if (!found)
    return {
      trainMs: Math.round(trainMs),
      trainCpuMs: Math.round(trainCpuMs),
      qualityCpuMs: null,
      qualityMs: null,
      overhead: null,
      share: null,
      cpuShare: null,
      matrix: p.matrix ?? 'compact',
      threads: pool?.threads ?? 1,
      phases: {},
      nearRecall: null,
      nearPrecision: null,
      exactRecall: null,
      candidates: null,
      labelErrors: null,
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      generateMs: Math.round(ds.generateMs),
    };
  c = cpu();
  t = performance.now();
  const q = completeQuality(
    input,
    found,
    {
      classes: trained.model.classes,
      details: trained.details,
      accuracy: trained.report.accuracy,
      fit: DEFAULT_TRAIN_OPTIONS,
    },
    { dataset: 'bench', version: null },
  );
  const qualityMs = findMs + performance.now() - t;
  qualityCpuMs += cpu() - c;
  const key = (a: number, b: number) => `${Math.min(a, b)}-${Math.max(a, b)}`;
  const planted = new Set(ds.nearPairs.map(([a, b]) => key(a, b)));
  const foundNear = new Set(found.nearPairs.map((x) => key(x.i, x.j)));
  const hits = [...foundNear].filter((k) => planted.has(k)).length;
  const exactFound = new Set(found.exactGroups.map((g) => key(g[0] as number, g[1] as number)));
  const exactHits = ds.exactPairs.filter(([a, b]) => exactFound.has(key(a, b))).length;
  const note = q.notes.find((x) => x.startsWith('near duplicates'));
  return {
    trainMs: Math.round(trainMs),
    trainCpuMs: Math.round(trainCpuMs),
    qualityCpuMs: Math.round(qualityCpuMs),
    qualityMs: Math.round(qualityMs),
    overhead: Math.round((qualityMs / trainMs) * 1000) / 1000,
    share: Math.round((qualityMs / (trainMs + qualityMs)) * 1000) / 1000,
    cpuShare: Math.round((qualityCpuMs / (trainCpuMs + qualityCpuMs)) * 1000) / 1000,
    matrix: p.matrix ?? 'compact',
    threads: pool?.threads ?? 1,
    phases: q.timingsMs,
    nearRecall: planted.size ? hits / planted.size : null,
    nearPrecision: foundNear.size ? hits / foundNear.size : null,
    exactRecall: ds.exactPairs.length ? exactHits / ds.exactPairs.length : null,
    candidates:
      note
        ?.match(/\((\d+) candidate pairs, (\d+) checked/)
        ?.slice(1, 3)
        .join(' / ') ?? null,
    labelErrors: q.totals.labelErrors,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    generateMs: Math.round(ds.generateMs),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [n = '5000', withQuality = '1', matrix = 'compact', pool = '1'] = process.argv.slice(2);
  const N = Number(n);
  const params: BenchQualityParams = {
    n: N,
    d: 8192,
    classes: 2,
    sparsity: 0.6,
    seed: 42,
    near: Math.round(N / 100),
    exact: Math.round(N / 200),
    withQuality: withQuality === '1',
    matrix: matrix === 'dense' ? 'dense' : 'compact',
    pool: pool !== '0',
  };
  console.log(JSON.stringify({ params, result: benchQuality(params) }));
}
