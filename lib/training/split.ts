import { ValidationError } from '../errors.ts';
import { mulberry32 } from '../util/random.ts';

export { mulberry32 } from '../util/random.ts';

/**
 * Splits sample indices into train and test parts, class by class, like scikit-learn's
 * `train_test_split(..., test_size, stratify=labels)`:
 *
 * - the test part has ⌈testSize·n⌉ samples, shared among classes in proportion to their sizes
 *   (floors first, then the largest remainders; ties go to the larger class, then the lower
 *   class index — scikit-learn breaks those ties at random);
 * - then, per class: a class with ≥ 2 samples keeps ≥ 1 in train and puts ≥ 1 in test; a class
 *   with 1 sample stays in train. Samples these guarantees add or remove are taken from / given
 *   to the largest classes, so the test size moves only when nothing else is possible;
 * - which samples of a class go to test is a seeded Fisher-Yates shuffle (mulberry32). It is
 *   deterministic but is NOT scikit-learn's permutation (that depends on numpy's generator).
 *
 * `testSize` 0 puts everything in train. Both outputs are sorted ascending.
 *
 * @param labels class index of each sample (any non-negative integers)
 * @param testSize fraction of samples for the test part, 0 ≤ testSize < 1
 * @param seed any 32-bit integer
 */
export function stratifiedSplit(
  labels: Int32Array,
  testSize: number,
  seed: number,
): { train: Int32Array; test: Int32Array } {
  if (!(testSize >= 0 && testSize < 1))
    throw new ValidationError(`test size must be a fraction in [0, 1) (got ${testSize})`);
  if (!Number.isInteger(seed)) throw new ValidationError(`seed must be a whole number (got ${seed})`);
  const n = labels.length;
  if (testSize === 0 || n === 0)
    return { train: Int32Array.from({ length: n }, (_, i) => i), test: new Int32Array(0) };

  // Members of each class, in index order.
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const c = labels[i] as number;
    if (!(c >= 0)) throw new ValidationError(`label of sample ${i} is not a non-negative integer (${c})`);
    let members = byClass.get(c);
    if (!members) {
      members = [];
      byClass.set(c, members);
    }
    members.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const sizes = classes.map((c) => (byClass.get(c) as number[]).length);
  const alloc = allocateTestCounts(sizes, Math.ceil(testSize * n));

  const rand = mulberry32(seed);
  const test: number[] = [];
  const train: number[] = [];
  for (let k = 0; k < classes.length; k++) {
    const members = [...(byClass.get(classes[k] as number) as number[])];
    // Fisher-Yates shuffle.
    for (let i = members.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = members[i] as number;
      members[i] = members[j] as number;
      members[j] = t;
    }
    const t = alloc[k] as number;
    for (let i = 0; i < members.length; i++) (i < t ? test : train).push(members[i] as number);
  }
  train.sort((a, b) => a - b);
  test.sort((a, b) => a - b);
  return { train: Int32Array.from(train), test: Int32Array.from(test) };
}

/**
 * {@link stratifiedSplit} that keeps groups together: rows with the same `groups[i]` ≥ 0 (e.g. near
 * duplicates of one photo) all go to train or all to test, so a copy of a training image never
 * inflates the held-out accuracy. `-1` = no group. With no group of 2+ rows the result is exactly
 * `stratifiedSplit`'s.
 *
 * Test counts per class are allocated as in `stratifiedSplit`; then, class by class (a group
 * belongs to the class of its first row), units (a group or a lone row) are shuffled with the seeded
 * PRNG and a unit goes to test when every class among its rows still has room for it. A class
 * therefore never has more test rows than allocated (so it keeps ≥ 1 in train), but can get fewer
 * when its groups are large.
 */
export function stratifiedGroupSplit(
  labels: Int32Array,
  groups: Int32Array,
  testSize: number,
  seed: number,
): { train: Int32Array; test: Int32Array; grouped: boolean } {
  const n = labels.length;
  if (groups.length !== n) throw new ValidationError(`${groups.length} group ids for ${n} samples`);
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const g = groups[i] as number;
    if (g < 0) continue;
    const list = members.get(g);
    if (list) list.push(i);
    else members.set(g, [i]);
  }
  const real = [...members.values()].filter((m) => m.length >= 2);
  if (real.length === 0 || testSize === 0)
    return { ...stratifiedSplit(labels, testSize, seed), grouped: false };
  if (!(testSize > 0 && testSize < 1))
    throw new ValidationError(`test size must be a fraction in [0, 1) (got ${testSize})`);
  if (!Number.isInteger(seed)) throw new ValidationError(`seed must be a whole number (got ${seed})`);

  const sizeOf = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const c = labels[i] as number;
    if (!(c >= 0)) throw new ValidationError(`label of sample ${i} is not a non-negative integer (${c})`);
    sizeOf.set(c, (sizeOf.get(c) ?? 0) + 1);
  }
  const classes = [...sizeOf.keys()].sort((a, b) => a - b);
  const alloc = allocateTestCounts(
    classes.map((c) => sizeOf.get(c) as number),
    Math.ceil(testSize * n),
  );
  const room = new Map(classes.map((c, k) => [c, alloc[k] as number]));

  // Units by the class of their first row, in index order.
  const inGroup = new Set<number>();
  const unitsOf = new Map<number, number[][]>(classes.map((c) => [c, []]));
  const firstOf = new Map<number, number[]>();
  for (const m of real) {
    for (const i of m) inGroup.add(i);
    firstOf.set(m[0] as number, m);
  }
  for (let i = 0; i < n; i++) {
    const unit = firstOf.get(i) ?? (inGroup.has(i) ? undefined : [i]);
    if (unit) unitsOf.get(labels[i] as number)?.push(unit);
  }
  const rand = mulberry32(seed);
  const test: number[] = [];
  const train: number[] = [];
  for (const c of classes) {
    const units = shuffleInPlace(unitsOf.get(c) as number[][], rand);
    for (const unit of units) {
      const need = new Map<number, number>();
      for (const i of unit) need.set(labels[i] as number, (need.get(labels[i] as number) ?? 0) + 1);
      const fits = [...need].every(([k, v]) => (room.get(k) ?? 0) >= v);
      if (fits) for (const [k, v] of need) room.set(k, (room.get(k) ?? 0) - v);
      (fits ? test : train).push(...unit);
    }
  }
  train.sort((a, b) => a - b);
  test.sort((a, b) => a - b);
  return { train: Int32Array.from(train), test: Int32Array.from(test), grouped: true };
}

/** Fisher-Yates shuffle of `items` in place with `rand` (e.g. `mulberry32(seed)`); returns `items`. */
export function shuffleInPlace<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = items[i] as T;
    items[i] = items[j] as T;
    items[j] = t;
  }
  return items;
}

/**
 * Test samples per class for a stratified split of classes of `sizes` with `nTest` test samples
 * in all: proportional (largest remainders), then ≥ 1 in train and ≥ 1 in test for every class
 * with ≥ 2 samples (see {@link stratifiedSplit}).
 */
function allocateTestCounts(sizes: readonly number[], nTest: number): number[] {
  // Proportional allocation of ⌈testSize·n⌉ test samples (largest remainders).
  const n = sizes.reduce((a, b) => a + b, 0);
  const quota = sizes.map((s) => (s * nTest) / n);
  const alloc = quota.map((q) => Math.floor(q));
  let left = nTest - alloc.reduce((a, b) => a + b, 0);
  const order = sizes
    .map((_, k) => k)
    .sort(
      (a, b) =>
        (quota[b] as number) - (alloc[b] as number) - ((quota[a] as number) - (alloc[a] as number)) ||
        (sizes[b] as number) - (sizes[a] as number) ||
        a - b,
    );
  for (const k of order) {
    if (left <= 0) break;
    alloc[k] = (alloc[k] as number) + 1;
    left--;
  }
  // Guarantees per class, then give back (or take) the difference where it changes proportions least.
  for (let k = 0; k < sizes.length; k++) {
    const s = sizes[k] as number;
    alloc[k] = s < 2 ? 0 : Math.min(s - 1, Math.max(1, alloc[k] as number));
  }
  let total = alloc.reduce((a, b) => a + b, 0);
  while (total > nTest) {
    // Take from the class with the most test samples that can spare one.
    let best = -1;
    for (let k = 0; k < sizes.length; k++)
      if ((alloc[k] as number) > 1 && (best < 0 || (alloc[k] as number) > (alloc[best] as number))) best = k;
    if (best < 0) break;
    alloc[best] = (alloc[best] as number) - 1;
    total--;
  }
  while (total < nTest) {
    // Give to the largest class that still has room in train.
    let best = -1;
    for (let k = 0; k < sizes.length; k++)
      if (
        (alloc[k] as number) < (sizes[k] as number) - 1 &&
        (best < 0 || (sizes[k] as number) > (sizes[best] as number))
      )
        best = k;
    if (best < 0) break;
    alloc[best] = (alloc[best] as number) + 1;
    total++;
  }
  return alloc;
}
