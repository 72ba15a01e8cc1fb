import { createHash } from 'node:crypto';
import { describeError } from '../errors.ts';
import { createFitPool, type FitPool } from '../training/parallel.ts';
import { type TrainDetails, type TrainHeadInput, trainHead } from '../training/train.ts';
import type { FitOptions } from '../training/types.ts';
import { formatPercent } from '../util/format.ts';
import type { Log } from '../util/log.ts';
import type { Conflict, Duplicate, LabelError, Leak, QualityDocument } from './document.ts';
import { findLabelErrors } from './label-errors.ts';
import {
  type FeatureRows,
  findSimilarPairs,
  foldSketch,
  rowsOfMatrix,
  type SimilarPair,
  type Sketch,
  sketchRows,
} from './similarity.ts';

/**
 * The data-quality pass of a training (docs/ARCHITECTURE.md "Data quality"), in two phases around the fit:
 * {@link findDuplicates} before the split (exact and near duplicates, whose groups the split keeps
 * on one side) and {@link completeQuality} after it (conflicts, leaks across the split, likely
 * label errors, imbalance) → `quality.json`. Neither phase throws: a failure becomes a note and
 * the training goes on. Nothing is moved or deleted.
 */

/** Settings of the quality pass (documented in docs/ARCHITECTURE.md "Data quality"). */
export interface QualitySettings {
  /**
   * Cosine similarity of the feature vectors from which two images are near duplicates. 0.994:
   * resized (0.5x), recompressed (JPEG quality 40) and cropped (4 % per side) copies of 120
   * generated images scored ≥ 0.9940 against their originals through the real preprocessing and
   * VGG16 (seeded random weights, 8192 flatten), the 7,140 pairs of distinct images ≤ 0.9938
   * (docs/ARCHITECTURE.md "Data quality"; re-measure with `scripts/quality/` for real weights).
   */
  nearThreshold: number;
  /** Count-sketch width (power of two): LSH input and the features of the K-fold refits. */
  sketchDims: number;
  /** LSH tables. */
  lshTables: number;
  /** Bits per LSH table; 0 = ⌈log2 n⌉ + 1 clamped to 8..20. */
  lshBits: number;
  /** K of the K-fold refit for label errors. */
  folds: number;
  /**
   * L-BFGS iteration cap of each refit (out-of-fold probabilities need no tight optimum; the
   * refits are most of the pass's cost).
   */
  refitMaxIter: number;
  /** Width of the features of the refits: the sketch folded to this many values. */
  refitDims: number;
  seed: number;
  /** Longest list written (each list is sorted, most important first; `totals` has the counts). */
  maxListed: number;
  /** Above this many images the near-duplicate search is skipped (with a note). */
  maxNearImages: number;
  /** Above this many images the K-fold refit for label errors is skipped (with a note). */
  maxLabelErrorImages: number;
  /** Keep duplicate groups on one side of the train/held-out split. */
  groupSplit: boolean;
}

export const DEFAULT_QUALITY_SETTINGS: QualitySettings = {
  nearThreshold: 0.994,
  sketchDims: 256,
  lshTables: 24,
  lshBits: 0,
  folds: 5,
  refitMaxIter: 30,
  refitDims: 128,
  seed: 42,
  maxListed: 200,
  maxNearImages: 200_000,
  maxLabelErrorImages: 100_000,
  groupSplit: true,
};

/** Input of the quality pass: the rows the trainer loaded and where they came from. */
export interface QualityInput {
  rows: FeatureRows;
  labels: readonly string[];
  /** Image key (or file) of each row. */
  keys: readonly string[];
  /** Content id of each row (the image's ETag / MD5); without it, a hash of the feature bytes. */
  contentIds?: readonly string[];
  settings?: Partial<QualitySettings>;
  log?: Log;
  threads?: number;
  /**
   * The fit's worker threads: the K-fold refits borrow them (see FitRunOptions.pool).
   * @default the refits start threads of their own when they are large enough
   */
  pool?: FitPool;
}

/** What {@link findDuplicates} found (the input of {@link completeQuality}). */
export interface DuplicateFindings {
  settings: QualitySettings;
  /** Exact-copy groups (rows), 2+ each. */
  exactGroups: number[][];
  /** Verified near-duplicate pairs between distinct contents. */
  nearPairs: SimilarPair[];
  /** Component id of each row over exact and near links (−1 = alone). */
  component: Int32Array;
  /** For the split: `component` when `groupSplit` and a group exists, else undefined. */
  groups: Int32Array | undefined;
  sketch: Sketch | undefined;
  notes: string[];
  parts: QualityDocument['parts'];
  timingsMs: Record<string, number>;
  lshBits: number;
}

function unionFind(n: number) {
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (i: number): number => {
    let r = i;
    while ((parent[r] as number) !== r) r = parent[r] as number;
    while ((parent[i] as number) !== r) {
      const next = parent[i] as number;
      parent[i] = r;
      i = next;
    }
    return r;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  return { find, union };
}

const ms = (t0: number) => Math.round((performance.now() - t0) * 10) / 10;

/**
 * Phase 1: exact duplicates (same content id) and near duplicates (cosine ≥ threshold, by LSH
 * over count sketches with exact verification), and the groups the split should keep together.
 * Never throws.
 */
export function findDuplicates(input: QualityInput): DuplicateFindings {
  const settings = { ...DEFAULT_QUALITY_SETTINGS, ...input.settings };
  const { rows } = input;
  const n = rows.n;
  const notes: string[] = [];
  const timingsMs: Record<string, number> = {};
  const parts: QualityDocument['parts'] = { exact: 'skipped', near: 'skipped', labelErrors: 'skipped' };
  const uf = unionFind(n);
  const exactGroups: number[][] = [];
  let nearPairs: SimilarPair[] = [];
  let sketch: Sketch | undefined;
  const lshBits =
    settings.lshBits > 0
      ? settings.lshBits
      : Math.min(20, Math.max(8, Math.ceil(Math.log2(Math.max(2, n))) + 1));

  // Exact: same bytes.
  let t0 = performance.now();
  const reps: number[] = [];
  try {
    const byContent = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const id = input.contentIds?.[i] ?? hashRow(rows.row(i));
      const list = byContent.get(id);
      if (list) list.push(i);
      else byContent.set(id, [i]);
    }
    for (const list of byContent.values()) {
      reps.push(list[0] as number);
      if (list.length < 2) continue;
      exactGroups.push(list);
      for (const i of list) uf.union(list[0] as number, i);
    }
    notes.push(
      input.contentIds
        ? 'exact duplicates: images with the same content (ETag / MD5 of the bytes)'
        : 'exact duplicates: identical feature vectors (no image checksums offline)',
    );
    parts.exact = 'done';
  } catch (err) {
    notes.push(`exact duplicates not checked: ${describeError(err)}`);
    input.log?.warn('quality: exact duplicate check failed', { error: describeError(err) });
  }
  timingsMs.exact = ms(t0);

  // Near: LSH candidates, verified exactly.
  t0 = performance.now();
  if (n > settings.maxNearImages) {
    notes.push(
      `near duplicates not searched: ${n} images is over the limit of ${settings.maxNearImages} (settings.maxNearImages)`,
    );
  } else {
    try {
      sketch = sketchRows(rows, settings.sketchDims, settings.seed);
      timingsMs.sketch = ms(t0);
      const only = Int32Array.from(
        (reps.length > 0 ? reps : Array.from({ length: n }, (_, i) => i)).sort((a, b) => a - b),
      );
      const found = findSimilarPairs(rows, sketch, {
        threshold: settings.nearThreshold,
        tables: settings.lshTables,
        bits: lshBits,
        seed: settings.seed,
        sketchSlack: 1.5,
        maxBucket: 64,
        window: 16,
        only,
      });
      nearPairs = found.pairs;
      for (const p of nearPairs) uf.union(p.i, p.j);
      notes.push(
        `near duplicates: cosine similarity ≥ ${settings.nearThreshold} of the feature vectors; candidates from ${settings.lshTables} sign-LSH tables of ${lshBits} bits over a ${settings.sketchDims}-value count sketch (${found.stats.candidates} candidate pairs, ${found.stats.verified} checked exactly on the full vectors)`,
      );
      parts.near = 'done';
    } catch (err) {
      notes.push(`near duplicates not searched: ${describeError(err)}`);
      input.log?.warn('quality: near-duplicate search failed', { error: describeError(err) });
    }
  }
  timingsMs.near = ms(t0);

  const component = new Int32Array(n).fill(-1);
  const size = new Map<number, number>();
  for (let i = 0; i < n; i++) size.set(uf.find(i), (size.get(uf.find(i)) ?? 0) + 1);
  let anyGroup = false;
  for (let i = 0; i < n; i++) {
    const r = uf.find(i);
    if ((size.get(r) ?? 0) >= 2) {
      component[i] = r;
      anyGroup = true;
    }
  }
  return {
    settings,
    exactGroups,
    nearPairs,
    component,
    groups: settings.groupSplit && anyGroup ? component : undefined,
    sketch,
    notes,
    parts,
    timingsMs,
    lshBits,
  };
}

function hashRow(v: Float32Array): string {
  return createHash('md5')
    .update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
    .digest('hex');
}

/** What the training did, for phase 2. */
export interface TrainingOutcome {
  /** Sorted classes (`y` indexes them). */
  classes: readonly string[];
  details: TrainDetails;
  /** Held-out accuracy as reported (null without a holdout). */
  accuracy: number | null;
  fit: FitOptions;
}

/**
 * Phase 2: conflicts, leaks across the split (and the accuracy without them), likely label errors
 * (K-fold refit on the sketch) and imbalance, as `quality.json`. Never throws.
 */
export function completeQuality(
  input: QualityInput,
  found: DuplicateFindings,
  training: TrainingOutcome,
  meta: { dataset: string | null; version: string | null },
): QualityDocument {
  const t0 = performance.now();
  const { settings } = found;
  const { rows, labels, keys } = input;
  const n = rows.n;
  const notes = [...found.notes];
  const timingsMs = { ...found.timingsMs };
  const parts = { ...found.parts };
  const cap = <T>(list: T[]): T[] => list.slice(0, settings.maxListed);

  const duplicates = listDuplicates(found, keys, labels, n);
  const byComponent = membersByComponent(found.component, n);
  const conflicts = listConflicts(byComponent, keys, labels);

  const { details } = training;
  const { leaks, leakedTest } = findLeaks(input, found, details, byComponent, notes);
  const withoutLeaks = accuracyWithoutLeaks(details, leakedTest);
  const groupCount = byComponent.size;
  const groupedImages = [...byComponent.values()].reduce((a, m) => a + m.length, 0);
  if (details.grouped)
    notes.push(
      `the train/held-out split kept ${groupCount} duplicate group(s) (${groupedImages} images) each on one side, so no held-out image has a copy in train`,
    );
  else if (leaks.length > 0)
    notes.push(
      `${leakedTest.size} held-out image(s) have a copy in train: accuracy ${formatPercent(training.accuracy)} as reported, ${formatPercent(withoutLeaks)} without them`,
    );

  const t1 = performance.now();
  const { labelErrors, labelErrorTotal } = searchLabelErrors(input, found, training, notes, parts);
  timingsMs.labelErrors = ms(t1);

  // Imbalance.
  const counts = countLabels(labels);
  const values = Object.values(counts);
  const ratio = values.length > 0 ? Math.max(...values) / Math.max(1, Math.min(...values)) : 0;
  if (ratio >= 3)
    notes.push(`imbalanced labels: the largest has ${round4(ratio)}× the images of the smallest`);
  if (found.exactGroups.length + found.nearPairs.length + leaks.length + labelErrorTotal > 0)
    notes.push('nothing was moved or deleted: review the listed images and fix the dataset if needed');
  timingsMs.complete = ms(t0);
  timingsMs.total = Object.entries(timingsMs)
    .filter(([k]) => k === 'exact' || k === 'near' || k === 'complete')
    .reduce((a, [, v]) => a + v, 0);

  return {
    format: 'tlearn-quality',
    formatVersion: 1,
    dataset: meta.dataset,
    version: meta.version,
    images: n,
    duplicates: cap(duplicates),
    conflicts: cap(conflicts),
    leaks: cap(leaks),
    labelErrors: cap(labelErrors),
    imbalance: { counts, ratio: round4(ratio) },
    notes,
    settings: {
      nearThreshold: settings.nearThreshold,
      sketchDims: settings.sketchDims,
      lshTables: settings.lshTables,
      lshBits: found.lshBits,
      folds: settings.folds,
      seed: settings.seed,
      maxListed: settings.maxListed,
    },
    split: {
      groupAware: details.grouped,
      groups: details.grouped ? groupCount : 0,
      groupedImages: details.grouped ? groupedImages : 0,
      train: details.train.length,
      heldOut: details.test.length,
    },
    accuracy: { plain: training.accuracy, withoutLeaks, heldOutRemoved: leakedTest.size },
    totals: {
      duplicates: duplicates.length,
      conflicts: conflicts.length,
      leaks: leaks.length,
      labelErrors: labelErrorTotal,
    },
    parts,
    timingsMs,
  };
}

/**
 * The duplicates as listed: exact groups, then near groups (components of near pairs, each
 * representative expanded to its exact copies), most similar first.
 */
function listDuplicates(
  found: DuplicateFindings,
  keys: readonly string[],
  labels: readonly string[],
  n: number,
): Duplicate[] {
  const duplicates: Duplicate[] = [];
  const exactOf = new Map<number, number[]>();
  for (const g of found.exactGroups) {
    exactOf.set(g[0] as number, g);
    duplicates.push({
      kind: 'exact',
      similarity: 1,
      keys: g.map((i) => keys[i] ?? ''),
      labels: g.map((i) => labels[i] ?? ''),
    });
  }
  const nearUf = unionFind(n);
  for (const p of found.nearPairs) nearUf.union(p.i, p.j);
  const nearGroups = new Map<number, { reps: Set<number>; min: number }>();
  for (const p of found.nearPairs) {
    const r = nearUf.find(p.i);
    const g = nearGroups.get(r) ?? { reps: new Set<number>(), min: 1 };
    g.reps.add(p.i);
    g.reps.add(p.j);
    g.min = Math.min(g.min, p.similarity);
    nearGroups.set(r, g);
  }
  const nearList: Duplicate[] = [];
  for (const g of nearGroups.values()) {
    const members = [...g.reps].sort((a, b) => a - b).flatMap((i) => exactOf.get(i) ?? [i]);
    nearList.push({
      kind: 'near',
      similarity: round4(g.min),
      keys: members.map((i) => keys[i] ?? ''),
      labels: members.map((i) => labels[i] ?? ''),
    });
  }
  nearList.sort((a, b) => b.similarity - a.similarity);
  duplicates.push(...nearList);
  return duplicates;
}

/** The rows of each duplicate group (exact or near links), by component id; lone rows left out. */
function membersByComponent(component: Int32Array, n: number): Map<number, number[]> {
  const byComponent = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const c = component[i] as number;
    if (c < 0) continue;
    const list = byComponent.get(c);
    if (list) list.push(i);
    else byComponent.set(c, [i]);
  }
  return byComponent;
}

/** Conflicts: a duplicate group with more than one label. */
function listConflicts(
  byComponent: Map<number, number[]>,
  keys: readonly string[],
  labels: readonly string[],
): Conflict[] {
  const conflicts: Conflict[] = [];
  for (const members of byComponent.values()) {
    if (new Set(members.map((i) => labels[i])).size < 2) continue;
    conflicts.push({ keys: members.map((i) => keys[i] ?? ''), labels: members.map((i) => labels[i] ?? '') });
  }
  return conflicts;
}

/**
 * Leaks: each held-out row in a duplicate group that has train rows, with its most similar train
 * row (among the group's first 50), most similar first. A failure becomes a note in `notes`.
 */
function findLeaks(
  input: QualityInput,
  found: DuplicateFindings,
  details: TrainDetails,
  byComponent: Map<number, number[]>,
  notes: string[],
): { leaks: Leak[]; leakedTest: Set<number> } {
  const { rows, keys } = input;
  const inTest = new Uint8Array(rows.n);
  for (const i of details.test) inTest[i] = 1;
  const leaks: Leak[] = [];
  const leakedTest = new Set<number>();
  try {
    const scratch = new Float32Array(rows.d);
    for (const members of byComponent.values()) {
      const trainRows = members.filter((i) => inTest[i] === 0).slice(0, 50);
      const testRows = members.filter((i) => inTest[i] === 1);
      if (trainRows.length === 0 || testRows.length === 0) continue;
      for (const t of testRows) {
        scratch.set(rows.row(t));
        let best = -1;
        let bestSim = -1;
        for (const r of trainRows) {
          const sim = cosine(scratch, rows.row(r), found.sketch?.norms[t], found.sketch?.norms[r]);
          if (sim > bestSim) {
            bestSim = sim;
            best = r;
          }
        }
        leakedTest.add(t);
        leaks.push({
          trainKey: keys[best] ?? '',
          heldOutKey: keys[t] ?? '',
          similarity: round4(Math.max(0, Math.min(1, bestSim))),
        });
      }
    }
  } catch (err) {
    notes.push(`leaks not checked: ${describeError(err)}`);
  }
  leaks.sort((a, b) => b.similarity - a.similarity);
  return { leaks, leakedTest };
}

/** Held-out accuracy over the rows that did not leak (null without predictions or rows left). */
function accuracyWithoutLeaks(details: TrainDetails, leakedTest: ReadonlySet<number>): number | null {
  if (details.test.length === 0 || details.testPredicted.length !== details.test.length) return null;
  let right = 0;
  let total = 0;
  details.test.forEach((i, r) => {
    if (leakedTest.has(i)) return;
    total++;
    if (details.testPredicted[r] === details.y[i]) right++;
  });
  return total > 0 ? right / total : null;
}

/**
 * Label errors: K-fold refit of the head on the sketch (see ./label-errors.ts). Pushes its note
 * (what was done, or why not) to `notes` and marks `parts.labelErrors` done when it ran.
 */
function searchLabelErrors(
  input: QualityInput,
  found: DuplicateFindings,
  training: TrainingOutcome,
  notes: string[],
  parts: QualityDocument['parts'],
): { labelErrors: LabelError[]; labelErrorTotal: number } {
  const { settings } = found;
  const { rows, keys } = input;
  const n = rows.n;
  let labelErrors: LabelError[] = [];
  let labelErrorTotal = 0;
  if (n > settings.maxLabelErrorImages) {
    notes.push(
      `label errors not searched: ${n} images is over the limit of ${settings.maxLabelErrorImages} (settings.maxLabelErrorImages)`,
    );
    return { labelErrors, labelErrorTotal };
  }
  try {
    const sketch = found.sketch ?? sketchRows(rows, settings.sketchDims, settings.seed);
    const K = training.classes.length;
    const features = foldSketch(sketch, Math.min(sketch.m, settings.refitDims));
    const r = findLabelErrors(features, training.details.y, K, {
      ...training.fit,
      maxIter: Math.min(training.fit.maxIter, settings.refitMaxIter),
      folds: settings.folds,
      seed: settings.seed,
      ...(input.threads !== undefined ? { threads: input.threads } : {}),
      ...(input.pool ? { pool: input.pool } : {}),
      ...(found.groups ? { groups: found.component } : {}),
    });
    labelErrorTotal = r.flagged.length;
    labelErrors = r.flagged.map((f) => ({
      key: keys[f.row] ?? '',
      label: training.classes[f.label] ?? '',
      suggested: training.classes[f.suggested] ?? '',
      probabilityOfLabel: round4(f.probabilityOfLabel),
      probabilityOfSuggested: round4(f.probabilityOfSuggested),
    }));
    notes.push(
      `label errors: out-of-fold probabilities of ${r.foldsFit} of ${settings.folds} refits of the head (same C, at most ${Math.min(training.fit.maxIter, settings.refitMaxIter)} iterations) on the count sketch folded to ${features.d} values, duplicate groups kept in one fold; flagged when the most probable class reaching its threshold (mean out-of-fold probability of that class on its own images: ${r.thresholds.map((t, k) => `${training.classes[k]} ${t.toFixed(2)}`).join(', ')}) is not the label; most suspicious (lowest p(label) − p(suggested)) first`,
    );
    parts.labelErrors = 'done';
  } catch (err) {
    notes.push(`label errors not searched: ${describeError(err)}`);
    input.log?.warn('quality: label-error search failed', { error: describeError(err) });
  }
  return { labelErrors, labelErrorTotal };
}

/** Images per label. */
function countLabels(labels: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of labels) counts[l] = (counts[l] ?? 0) + 1;
  return counts;
}

function cosine(a: Float32Array, b: Float32Array, na?: number, nb?: number): number {
  let dot = 0;
  let sa = 0;
  let sb = 0;
  for (let k = 0; k < a.length; k++) {
    const x = a[k] as number;
    const y = b[k] as number;
    dot += x * y;
    if (na === undefined) sa += x * x;
    if (nb === undefined) sb += y * y;
  }
  const den = (na ?? Math.sqrt(sa)) * (nb ?? Math.sqrt(sb));
  return den > 0 ? dot / den : 0;
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/** {@link findDuplicates}, or undefined (logged) if it failed: the training goes on without groups. */
export function findDuplicatesSafely(input: QualityInput): DuplicateFindings | undefined {
  try {
    return findDuplicates(input);
  } catch (err) {
    input.log?.warn('quality: duplicate search failed; training goes on', { error: describeError(err) });
    return undefined;
  }
}

/**
 * {@link completeQuality} that cannot fail the training: without phase-1 findings, or when it
 * throws, the document holds what is cheap (counts, imbalance) and a note saying what failed.
 */
export function completeQualitySafely(
  input: QualityInput,
  found: DuplicateFindings | undefined,
  training: TrainingOutcome,
  meta: { dataset: string | null; version: string | null },
): QualityDocument {
  let failure: unknown = new Error('the duplicate search failed (see the log)');
  if (found) {
    try {
      return completeQuality(input, found, training, meta);
    } catch (err) {
      failure = err;
      input.log?.warn('quality: pass failed; training goes on', { error: describeError(err) });
    }
  }
  const settings = { ...DEFAULT_QUALITY_SETTINGS, ...input.settings };
  const counts = countLabels(input.labels);
  const values = Object.values(counts);
  return {
    format: 'tlearn-quality',
    formatVersion: 1,
    dataset: meta.dataset,
    version: meta.version,
    images: input.rows.n,
    duplicates: [],
    conflicts: [],
    leaks: [],
    labelErrors: [],
    imbalance: {
      counts,
      ratio: values.length > 0 ? round4(Math.max(...values) / Math.max(1, Math.min(...values))) : 0,
    },
    notes: [`the quality pass failed, nothing was checked: ${describeError(failure)}`],
    settings: {
      nearThreshold: settings.nearThreshold,
      sketchDims: settings.sketchDims,
      lshTables: settings.lshTables,
      lshBits: settings.lshBits,
      folds: settings.folds,
      seed: settings.seed,
      maxListed: settings.maxListed,
    },
    split: {
      groupAware: training.details.grouped,
      groups: 0,
      groupedImages: 0,
      train: training.details.train.length,
      heldOut: training.details.test.length,
    },
    accuracy: { plain: training.accuracy, withoutLeaks: null, heldOutRemoved: 0 },
    totals: { duplicates: 0, conflicts: 0, leaks: 0, labelErrors: 0 },
    parts: { exact: 'skipped', near: 'skipped', labelErrors: 'skipped' },
    timingsMs: {},
  };
}

/**
 * `trainHead` with the quality pass around it, as train-head and `tlearn fit` run it: duplicates
 * first (their groups go to the split), then the training, then the rest of the pass. A failing
 * pass never fails the training (see {@link completeQualitySafely}). The fit and the quality
 * pass's K-fold refits share one pool of worker threads (`train.pool`, else one made here for
 * the call and closed after it), so the refits run on the fit's threads without starting any.
 *
 * @example
 * const { model, report, quality } = trainHeadWithQuality(
 *   { X, labels, spec, options }, { keys, contentIds: etags }, { dataset: 'pets', version });
 */
export function trainHeadWithQuality(
  train: TrainHeadInput,
  source: Pick<QualityInput, 'keys' | 'contentIds' | 'settings'>,
  meta: { dataset: string | null; version: string | null },
): ReturnType<typeof trainHead> & { quality: QualityDocument; found: DuplicateFindings | undefined } {
  const pool = train.pool ?? createFitPool(train.threads);
  try {
    const input: QualityInput = {
      ...source,
      rows: rowsOfMatrix(train.X),
      labels: train.labels,
      pool,
      ...(train.log ? { log: train.log } : {}),
      ...(train.threads !== undefined ? { threads: train.threads } : {}),
    };
    const found = findDuplicatesSafely(input);
    const trained = trainHead({ ...train, pool, ...(found?.groups ? { groups: found.groups } : {}) });
    const { C, maxIter, tol } = train.options;
    const quality = completeQualitySafely(
      input,
      found,
      {
        classes: trained.model.classes,
        details: trained.details,
        accuracy: trained.report.accuracy,
        fit: { C, maxIter, tol },
      },
      meta,
    );
    return { ...trained, quality, found };
  } finally {
    // Its workers are unref'd: closing starts their exit, nothing needs to wait for it.
    if (train.pool === undefined) void pool.close();
  }
}
