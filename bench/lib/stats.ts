/**
 * The statistics every benchmark figure is reported with: median, min, max of repeated runs, and
 * percentiles of request latencies. Percentiles interpolate linearly between the closest ranks
 * (NumPy's default `method='linear'`), so p50 of an even-sized sample is the median.
 */

/** A figure's spread over its repeated runs. */
export interface Summary {
  /** Runs measured (warm-ups excluded). */
  n: number;
  median: number;
  min: number;
  max: number;
  mean: number;
}

function sorted(values: readonly number[]): number[] {
  if (values.length === 0) throw new RangeError('no values to summarize');
  for (const v of values) {
    if (!Number.isFinite(v)) throw new RangeError(`not a finite number: ${v}`);
  }
  return [...values].sort((a, b) => a - b);
}

function quantileOfSorted(s: readonly number[], q: number): number {
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = s[lo] as number;
  const b = s[hi] as number;
  return a + (b - a) * (pos - lo);
}

/**
 * The p-th percentile (0-100), linear between closest ranks like `numpy.percentile`.
 * @example percentile([1, 2, 3, 4], 50) === 2.5
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be 0..100 (got ${p})`);
  return quantileOfSorted(sorted(values), p / 100);
}

/** The median (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  return quantileOfSorted(sorted(values), 0.5);
}

/** Median, min, max and mean of repeated measurements. */
export function summarize(values: readonly number[]): Summary {
  const s = sorted(values);
  return {
    n: s.length,
    median: quantileOfSorted(s, 0.5),
    min: s[0] as number,
    max: s[s.length - 1] as number,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** Latency percentiles of a load run. */
export interface LatencySummary extends Summary {
  p50: number;
  p95: number;
  p99: number;
}

/** `summarize` plus p50/p95/p99 (for request latencies). */
export function summarizeLatency(values: readonly number[]): LatencySummary {
  const s = sorted(values);
  return {
    ...summarize(s),
    p50: quantileOfSorted(s, 0.5),
    p95: quantileOfSorted(s, 0.95),
    p99: quantileOfSorted(s, 0.99),
  };
}

/** Rounds to `digits` significant digits but keeps every integer digit (for tables and JSON people read). */
export function roundSig(value: number, digits = 3): number {
  if (value === 0 || !Number.isFinite(value)) return value;
  const decimals = digits - 1 - Math.floor(Math.log10(Math.abs(value)));
  // Whole numbers are never rounded away (a 12,345 ms fit stays 12345, not 12300).
  if (decimals <= 0) return Math.round(value);
  return Number(value.toFixed(decimals));
}
