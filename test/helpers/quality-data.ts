/**
 * Synthetic feature datasets with planted quality problems, for the quality tests and
 * the benchmark: ReLU-like rows (non-negative, about half zeros) around one centroid per class,
 * plus exact copies (same content id), near copies (the same pre-activation plus a little noise:
 * cosine ≈ 0.96-0.97 to the original), copies filed under another label, and mislabelled rows
 * (drawn from one class, labelled as another). Ground truth comes back with the data.
 */
import { mulberry32 } from '../../lib/util/random.ts';

export interface PlantOptions {
  classes: number;
  perClass: number;
  d: number;
  seed: number;
  /** Exact copies (same label, same content id). */
  exact: number;
  /** Near copies (same label). */
  near: number;
  /** Exact copies filed under another label. */
  crossLabel: number;
  /** Rows drawn from one class and labelled as another. */
  mislabels: number;
  /** How far apart the class centroids are (0 = all the same). @default 0.6 */
  separation?: number;
  /** Noise of a near copy relative to a row's spread. @default 0.4 */
  nearNoise?: number;
}

export interface PlantedDataset {
  data: Float32Array;
  n: number;
  d: number;
  labels: string[];
  keys: string[];
  contentIds: string[];
  /** [original, copy] row pairs. */
  exactPairs: [number, number][];
  nearPairs: [number, number][];
  crossLabelPairs: [number, number][];
  mislabelled: Set<number>;
  /** True class of each mislabelled row. */
  trueLabel: Map<number, string>;
}

function gaussian(rand: () => number): number {
  const u = Math.max(1e-12, rand());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Builds a dataset with planted problems; same options, same bytes. */
export function makePlantedDataset(o: PlantOptions): PlantedDataset {
  const rand = mulberry32(o.seed);
  const { d } = o;
  const sep = o.separation ?? 0.6;
  const nearNoise = o.nearNoise ?? 0.4;
  const base = Float64Array.from({ length: d }, () => gaussian(rand) - 0.2);
  const centroids = Array.from({ length: o.classes }, () =>
    Float64Array.from(base, (b) => b + sep * gaussian(rand)),
  );
  const labelNames = Array.from({ length: o.classes }, (_, c) => `class-${c}`);
  const pre: Float64Array[] = [];
  const labels: string[] = [];
  const keys: string[] = [];
  const contentIds: string[] = [];
  const trueLabel = new Map<number, string>();
  const mislabelled = new Set<number>();
  const push = (z: Float64Array, label: string, key: string, content: string) => {
    pre.push(z);
    labels.push(label);
    keys.push(key);
    contentIds.push(content);
    return pre.length - 1;
  };
  for (let c = 0; c < o.classes; c++) {
    const mu = centroids[c] as Float64Array;
    for (let i = 0; i < o.perClass; i++) {
      const z = Float64Array.from(mu, (m) => m + gaussian(rand));
      push(z, labelNames[c] as string, `class-${c}/img-${i}.jpg`, `etag-${c}-${i}`);
    }
  }
  const originals = pre.length;
  const pick = (): number => Math.floor(rand() * originals);
  // Mislabels first (they relabel originals), then copies of rows that are not mislabelled.
  const used = new Set<number>();
  const fresh = (): number => {
    for (;;) {
      const i = pick();
      if (!used.has(i)) {
        used.add(i);
        return i;
      }
    }
  };
  for (let k = 0; k < o.mislabels; k++) {
    const i = fresh();
    const c = labelNames.indexOf(labels[i] as string);
    const wrong = (c + 1 + Math.floor(rand() * (o.classes - 1))) % o.classes;
    trueLabel.set(i, labels[i] as string);
    labels[i] = labelNames[wrong] as string;
    mislabelled.add(i);
  }
  const exactPairs: [number, number][] = [];
  const nearPairs: [number, number][] = [];
  const crossLabelPairs: [number, number][] = [];
  for (let k = 0; k < o.exact; k++) {
    const i = fresh();
    exactPairs.push([
      i,
      push(pre[i] as Float64Array, labels[i] as string, `${keys[i]}-copy.jpg`, contentIds[i] as string),
    ]);
  }
  for (let k = 0; k < o.near; k++) {
    const i = fresh();
    const z = Float64Array.from(pre[i] as Float64Array, (v) => v + nearNoise * gaussian(rand));
    nearPairs.push([i, push(z, labels[i] as string, `${keys[i]}-resized.jpg`, `${contentIds[i]}-near`)]);
  }
  for (let k = 0; k < o.crossLabel; k++) {
    const i = fresh();
    const c = labelNames.indexOf(labels[i] as string);
    const other = labelNames[(c + 1) % o.classes] as string;
    crossLabelPairs.push([
      i,
      push(pre[i] as Float64Array, other, `${other}/copy-of-${k}.jpg`, contentIds[i] as string),
    ]);
  }
  const n = pre.length;
  const data = new Float32Array(n * d);
  pre.forEach((z, i) => {
    for (let j = 0; j < d; j++) data[i * d + j] = Math.max(0, z[j] as number);
  });
  return {
    data,
    n,
    d,
    labels,
    keys,
    contentIds,
    exactPairs,
    nearPairs,
    crossLabelPairs,
    mislabelled,
    trueLabel,
  };
}
