import { ValidationError } from '../errors.ts';
import { type CompactMatrix, isCompact } from '../training/compact-matrix.ts';
import type { Matrix } from '../training/types.ts';
import { mulberry32 } from '../util/random.ts';

/**
 * Near-duplicate search without all pairs: every feature row is compressed once into
 * a small count sketch (the hashing trick: feature j is added, with a random sign, to bucket
 * h(j) of m; inner products are preserved in expectation), the sketches are centred on their
 * mean (ReLU features are all non-negative, so raw angles are all small) and hashed with sign
 * random projections (SimHash; the hyperplanes are randomized Walsh-Hadamard rows, m·log m work
 * per row). Rows that share all bits of one table are candidates; a candidate is checked on the
 * sketches first and then exactly, on the full rows.
 */

/** Read access to the feature rows, whatever the trainer stores (dense rows or CSR). */
export interface FeatureRows {
  readonly n: number;
  readonly d: number;
  /**
   * Row i as d dense values. The array may be reused by the next call: copy what must be kept.
   */
  row(i: number): Float32Array;
}

/**
 * Rows of the trainer's matrix: a dense row-major one is read in place; a compact one (non-zeros
 * only, lib/training/compact-matrix.ts) is expanded into one reused buffer per call.
 */
export function rowsOfMatrix(X: Matrix | CompactMatrix): FeatureRows {
  if (isCompact(X)) {
    const buffer = new Float32Array(X.d);
    return { n: X.n, d: X.d, row: (i) => X.rowToDense(i, buffer) };
  }
  return { n: X.n, d: X.d, row: (i) => X.data.subarray(i * X.d, (i + 1) * X.d) };
}

/** Count sketches of every row. */
export interface Sketch {
  n: number;
  /** Sketch width (a power of two). */
  m: number;
  /** n×m float32, row-major, not normalized (a usable n×m feature matrix). */
  data: Float32Array;
  /** Euclidean norm of each full row (float64), for exact cosines. */
  norms: Float64Array;
  /** Euclidean norm of each sketch row. */
  sketchNorms: Float64Array;
}

/**
 * Count sketch of every row into m buckets (one pass over the rows). Deterministic
 * for a seed.
 *
 * @example const s = sketchRows(rowsOfMatrix(X), 256, 42); // s.data is X.n × 256
 */
export function sketchRows(rows: FeatureRows, m: number, seed: number): Sketch {
  if (!(m >= 8 && (m & (m - 1)) === 0))
    throw new ValidationError(`sketch width must be a power of two ≥ 8 (got ${m})`);
  const { n, d } = rows;
  const rand = mulberry32(seed ^ 0x5eed);
  const bucket = new Int32Array(d);
  const sign = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    bucket[j] = Math.floor(rand() * m);
    sign[j] = rand() < 0.5 ? -1 : 1;
  }
  const data = new Float32Array(n * m);
  const norms = new Float64Array(n);
  const sketchNorms = new Float64Array(n);
  const acc = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    const r = rows.row(i);
    acc.fill(0);
    let sq = 0;
    // No branch on zeros: with ReLU features they are unpredictable, and mispredictions cost
    // more than adding the zeros.
    for (let j = 0; j < d; j++) {
      const v = r[j] as number;
      sq += v * v;
      const b = bucket[j] as number;
      acc[b] = (acc[b] as number) + (sign[j] as number) * v;
    }
    norms[i] = Math.sqrt(sq);
    let s = 0;
    const off = i * m;
    for (let k = 0; k < m; k++) {
      const a = acc[k] as number;
      data[off + k] = a;
      s += a * a;
    }
    sketchNorms[i] = Math.sqrt(s);
  }
  return { n, m, data, norms, sketchNorms };
}

/** In-place fast Walsh-Hadamard transform (length a power of two). */
function fwht(a: Float64Array): void {
  const len = a.length;
  for (let h = 1; h < len; h <<= 1) {
    for (let i = 0; i < len; i += h << 1) {
      for (let j = i; j < i + h; j++) {
        const x = a[j] as number;
        const y = a[j + h] as number;
        a[j] = x + y;
        a[j + h] = x - y;
      }
    }
  }
}

/** Options of {@link findSimilarPairs}. */
export interface SimilarPairsOptions {
  /** Cosine similarity from which two rows are near duplicates. */
  threshold: number;
  /** Hash tables (more: higher recall, more candidates). */
  tables: number;
  /** Bits per table (more: fewer candidates per table); ≤ 30. */
  bits: number;
  seed: number;
  /**
   * How much larger than 1 − threshold a candidate's 1 − sketch cosine may be and still be checked
   * exactly (the sketch estimates 1 − cosine within a relative error of about √(2/m)).
   */
  sketchSlack: number;
  /** Largest bucket compared all-pairs; larger buckets compare each row with its `window` neighbours. */
  maxBucket: number;
  window: number;
  /** Rows that take part (e.g. one per exact-duplicate group); @default all */
  only?: Int32Array;
}

/** A verified near-duplicate pair (i < j) with its exact cosine similarity. */
export interface SimilarPair {
  i: number;
  j: number;
  similarity: number;
}

/** Work counters of a search (for the notes and the benchmark). */
export interface SimilarPairsStats {
  /** Candidate pairs drawn from the buckets (with repeats across tables). */
  candidates: number;
  /** Candidates whose sketch cosine passed and were checked on the full rows. */
  verified: number;
}

/**
 * Near-duplicate pairs: every pair of rows whose exact cosine similarity is ≥ `threshold` that
 * the LSH tables put in one bucket (recall is measured by the tests and the benchmark, not
 * guaranteed), each checked exactly on the full rows. Rows of zero norm never match.
 */
export function findSimilarPairs(
  rows: FeatureRows,
  sketch: Sketch,
  opts: SimilarPairsOptions,
): { pairs: SimilarPair[]; stats: SimilarPairsStats } {
  const { m } = sketch;
  const ids = opts.only ?? Int32Array.from({ length: sketch.n }, (_, i) => i);
  const live = Int32Array.from(
    [...ids].filter((i) => (sketch.sketchNorms[i] as number) > 0 && (sketch.norms[i] as number) > 0),
  );
  const nl = live.length;
  const stats: SimilarPairsStats = { candidates: 0, verified: 0 };
  if (nl < 2) return { pairs: [], stats };
  if (!(opts.bits >= 1 && opts.bits <= 30))
    throw new ValidationError(`bits per table must be 1..30 (got ${opts.bits})`);

  // Unit sketches, centred on their mean.
  const unit = new Float32Array(nl * m);
  const mean = new Float64Array(m);
  for (let a = 0; a < nl; a++) {
    const i = live[a] as number;
    const inv = 1 / (sketch.sketchNorms[i] as number);
    for (let k = 0; k < m; k++) {
      const v = (sketch.data[i * m + k] as number) * inv;
      unit[a * m + k] = v;
      mean[k] = (mean[k] as number) + v;
    }
  }
  for (let k = 0; k < m; k++) mean[k] = (mean[k] as number) / nl;

  // Sign bits: rounds of (random signs → Walsh-Hadamard), m bits per round.
  const nBits = opts.tables * opts.bits;
  const rounds = Math.ceil(nBits / m);
  const rand = mulberry32(opts.seed ^ 0x1a5b);
  const signs = Float64Array.from({ length: rounds * m }, () => (rand() < 0.5 ? -1 : 1));
  const keys = Array.from({ length: opts.tables }, () => new Float64Array(nl));
  const buf = new Float64Array(m);
  for (let a = 0; a < nl; a++) {
    let bit = 0;
    for (let r = 0; r < rounds && bit < nBits; r++) {
      for (let k = 0; k < m; k++)
        buf[k] = ((unit[a * m + k] as number) - (mean[k] as number)) * (signs[r * m + k] as number);
      fwht(buf);
      for (let k = 0; k < m && bit < nBits; k++, bit++) {
        if ((buf[k] as number) > 0) {
          const t = Math.floor(bit / opts.bits);
          const table = keys[t] as Float64Array;
          table[a] = (table[a] as number) + 2 ** (bit % opts.bits);
        }
      }
    }
  }

  const minSketch = 1 - (1 - opts.threshold) * opts.sketchSlack - 0.005;
  const found = new Map<number, SimilarPair>();
  const scratch = new Float32Array(rows.d);
  const sketchCos = (a: number, b: number): number => {
    let s = 0;
    const oa = a * m;
    const ob = b * m;
    for (let k = 0; k < m; k++) s += (unit[oa + k] as number) * (unit[ob + k] as number);
    return s;
  };
  const check = (a: number, b: number): void => {
    stats.candidates++;
    if (sketchCos(a, b) < minSketch) return;
    let i = live[a] as number;
    let j = live[b] as number;
    if (i > j) [i, j] = [j, i];
    const pairKey = i * sketch.n + j;
    if (found.has(pairKey)) return;
    stats.verified++;
    scratch.set(rows.row(i));
    const rj = rows.row(j);
    let dot = 0;
    for (let k = 0; k < rows.d; k++) dot += (scratch[k] as number) * (rj[k] as number);
    const cos = Math.min(1, dot / ((sketch.norms[i] as number) * (sketch.norms[j] as number)));
    if (cos >= opts.threshold) found.set(pairKey, { i, j, similarity: cos });
  };

  // Buckets: sort (key, row) packed in one float64 (key < 2^30, row < 2^22 … exact below 2^53).
  const order = new Float64Array(nl);
  const SHIFT = 2 ** 22;
  if (nl >= SHIFT) throw new ValidationError(`near-duplicate search takes at most ${SHIFT} rows (got ${nl})`);
  const proj = new Float64Array(nl);
  for (let a = 0; a < nl; a++) proj[a] = (unit[a * m] as number) - (mean[0] as number);
  for (const table of keys) {
    for (let a = 0; a < nl; a++) order[a] = (table[a] as number) * SHIFT + a;
    order.sort();
    let start = 0;
    while (start < nl) {
      const key = Math.floor((order[start] as number) / SHIFT);
      let end = start + 1;
      while (end < nl && Math.floor((order[end] as number) / SHIFT) === key) end++;
      const size = end - start;
      if (size >= 2) {
        const members = Array.from({ length: size }, (_, x) => (order[start + x] as number) % SHIFT);
        if (size <= opts.maxBucket) {
          for (let x = 0; x < size; x++)
            for (let y = x + 1; y < size; y++) check(members[x] as number, members[y] as number);
        } else {
          // A crowded bucket: compare neighbours along one more projection.
          members.sort((p, q) => (proj[p] as number) - (proj[q] as number));
          for (let x = 0; x < size; x++)
            for (let y = x + 1; y < Math.min(size, x + 1 + opts.window); y++)
              check(members[x] as number, members[y] as number);
        }
      }
      start = end;
    }
  }
  const pairs = [...found.values()].sort((p, q) => p.i - q.i || p.j - q.j);
  return { pairs, stats };
}

/**
 * A narrower count sketch from a wider one: bucket k of m/f is the sum of buckets k, k + m/f, …
 * (a count sketch with bucket h(j) mod m/f), so no second pass over the rows. Returns an
 * n × (m/f) matrix.
 */
export function foldSketch(sketch: Sketch, width: number): Matrix {
  const { n, m } = sketch;
  if (!(width >= 1 && width <= m && m % width === 0))
    throw new ValidationError(`sketch of ${m} values cannot fold to ${width}`);
  if (width === m) return { data: sketch.data, n, d: m };
  const data = new Float32Array(n * width);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < m; k++) {
      const o = i * width + (k % width);
      data[o] = (data[o] as number) + (sketch.data[i * m + k] as number);
    }
  return { data, n, d: width };
}
