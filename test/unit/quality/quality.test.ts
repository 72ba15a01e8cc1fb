import { describe, expect, it } from 'vitest';
import { loadTrainingConfig } from '../../../lib/config.ts';
import {
  completeQualitySafely,
  findDuplicatesSafely,
  type QualityInput,
  trainHeadWithQuality,
} from '../../../lib/quality/assess.ts';
import { parseQualityDocument } from '../../../lib/quality/document.ts';
import { renderQualityHtml } from '../../../lib/report/quality.ts';
import { stratifiedGroupSplit, stratifiedSplit } from '../../../lib/training/split.ts';
import { DEFAULT_TRAIN_OPTIONS, trainHead } from '../../../lib/training/train.ts';
import { makePlantedDataset, type PlantedDataset } from '../../helpers/quality-data.ts';

const pairKey = (a: string, b: string) => [a, b].sort().join(' | ');

/** Recall and precision of found pair keys against planted ones, printed for the record. */
function score(
  kind: string,
  planted: Set<string>,
  found: Set<string>,
): { recall: number; precision: number } {
  const hit = [...found].filter((k) => planted.has(k)).length;
  const recall = planted.size === 0 ? 1 : hit / planted.size;
  const precision = found.size === 0 ? 1 : hit / found.size;
  console.log(
    `${kind}: planted ${planted.size}, found ${found.size}, recall ${recall.toFixed(2)}, precision ${precision.toFixed(2)}`,
  );
  return { recall, precision };
}

/** Every pair inside each listed group. */
function pairsOf(groups: { keys: string[] }[]): Set<string> {
  const out = new Set<string>();
  for (const g of groups)
    for (let a = 0; a < g.keys.length; a++)
      for (let b = a + 1; b < g.keys.length; b++) out.add(pairKey(g.keys[a] as string, g.keys[b] as string));
  return out;
}

function run(ds: PlantedDataset, settings: QualityInput['settings']) {
  const { quality, found, ...trained } = trainHeadWithQuality(
    {
      X: { data: ds.data, n: ds.n, d: ds.d },
      labels: ds.labels,
      spec: 'synthetic',
      options: DEFAULT_TRAIN_OPTIONS,
    },
    { keys: ds.keys, contentIds: ds.contentIds, ...(settings ? { settings } : {}) },
    { dataset: 'planted', version: null },
  );
  return { quality, trained, found };
}

describe('data quality pass', () => {
  const ds = makePlantedDataset({
    classes: 3,
    perClass: 150,
    d: 512,
    seed: 3,
    exact: 6,
    near: 10,
    crossLabel: 4,
    mislabels: 12,
  });
  const keyPairs = (pairs: [number, number][]) =>
    new Set(pairs.map(([a, b]) => pairKey(ds.keys[a] as string, ds.keys[b] as string)));

  it('finds planted exact and near duplicates, cross-label copies and mislabels at their recall and precision floors', () => {
    const { quality } = run(ds, { nearThreshold: 0.95 });
    expect(() => parseQualityDocument(JSON.parse(JSON.stringify(quality)))).not.toThrow();

    const exact = score(
      'exact duplicates',
      keyPairs([...ds.exactPairs, ...ds.crossLabelPairs]),
      pairsOf(quality.duplicates.filter((d) => d.kind === 'exact')),
    );
    expect(exact.recall).toBe(1);
    expect(exact.precision).toBe(1);

    const near = score(
      'near duplicates',
      keyPairs(ds.nearPairs),
      pairsOf(quality.duplicates.filter((d) => d.kind === 'near')),
    );
    expect(near.recall).toBeGreaterThanOrEqual(0.9);
    expect(near.precision).toBeGreaterThanOrEqual(0.9);

    const conflicts = score('conflicts', keyPairs(ds.crossLabelPairs), pairsOf(quality.conflicts));
    expect(conflicts.recall).toBe(1);
    expect(conflicts.precision).toBe(1);
    for (const c of quality.conflicts) expect(new Set(c.labels).size).toBeGreaterThan(1);

    // A cross-label copy is a label error too: one of its two labels is wrong.
    const wrong = new Set([...ds.mislabelled].map((i) => ds.keys[i] as string));
    const copies = new Set(ds.crossLabelPairs.flat().map((i) => ds.keys[i] as string));
    const flagged = new Set(quality.labelErrors.map((e) => e.key));
    const mis = score('mislabels', wrong, flagged);
    const precisionWithCopies =
      [...flagged].filter((k) => wrong.has(k) || copies.has(k)).length / Math.max(1, flagged.size);
    console.log(
      `label errors counted right (planted mislabels or cross-label copies): ${precisionWithCopies.toFixed(2)}`,
    );
    expect(mis.recall).toBeGreaterThanOrEqual(0.8);
    expect(precisionWithCopies).toBeGreaterThanOrEqual(0.7);
    // Suggested labels of planted mislabels are their true class.
    for (const e of quality.labelErrors) {
      const row = ds.keys.indexOf(e.key);
      if (ds.mislabelled.has(row)) expect(e.suggested).toBe(ds.trueLabel.get(row));
    }
    // Ranked most suspicious first.
    const margins = quality.labelErrors.map((e) => e.probabilityOfLabel - e.probabilityOfSuggested);
    margins.forEach((m, i) => {
      if (i > 0) expect(m).toBeGreaterThanOrEqual((margins[i - 1] as number) - 2e-4); // values are rounded to 1e-4
    });

    expect(quality.imbalance.ratio).toBeGreaterThanOrEqual(1);
    expect(quality.parts).toEqual({ exact: 'done', near: 'done', labelErrors: 'done' });
  });

  it('keeps every duplicate group on one side of the split, so nothing leaks, and says so', () => {
    const { quality, trained } = run(ds, { nearThreshold: 0.95 });
    expect(trained.details.grouped).toBe(true);
    const inTest = new Set(trained.details.test);
    for (const [a, b] of [...ds.exactPairs, ...ds.nearPairs, ...ds.crossLabelPairs])
      expect(inTest.has(a)).toBe(inTest.has(b));
    expect(quality.leaks).toEqual([]);
    expect(quality.split.groupAware).toBe(true);
    expect(quality.split.groups).toBe(ds.exactPairs.length + ds.nearPairs.length + ds.crossLabelPairs.length);
    expect(quality.notes.join(' ')).toMatch(/kept 20 duplicate group\(s\)/);
  });

  it('reports planted leaks and the accuracy without them when the split ignores the groups', () => {
    const { quality, trained } = run(ds, { nearThreshold: 0.95, groupSplit: false });
    expect(trained.details.grouped).toBe(false);
    const inTest = new Set(trained.details.test);
    const straddling = new Set<string>();
    const heldOut = new Set<number>();
    for (const [a, b] of [...ds.exactPairs, ...ds.nearPairs, ...ds.crossLabelPairs]) {
      if (inTest.has(a) === inTest.has(b)) continue;
      const [t, r] = inTest.has(a) ? [a, b] : [b, a];
      straddling.add(`${ds.keys[r]} -> ${ds.keys[t]}`);
      heldOut.add(t);
    }
    expect(straddling.size).toBeGreaterThan(0); // the seed plants at least one leak
    const leaks = score(
      'leaks',
      straddling,
      new Set(quality.leaks.map((l) => `${l.trainKey} -> ${l.heldOutKey}`)),
    );
    expect(leaks.recall).toBe(1);
    expect(leaks.precision).toBe(1);

    let right = 0;
    let total = 0;
    trained.details.test.forEach((i, r) => {
      if (heldOut.has(i)) return;
      total++;
      if (trained.details.testPredicted[r] === trained.details.y[i]) right++;
    });
    expect(quality.accuracy.plain).toBe(trained.report.accuracy);
    expect(quality.accuracy.withoutLeaks).toBeCloseTo(right / total, 12);
    expect(quality.accuracy.heldOutRemoved).toBe(heldOut.size);
    expect(renderQualityHtml(quality)).toMatch(/leaks across the split/);
  });

  it('never blocks the training: a failing pass becomes a note', () => {
    const X = { data: ds.data, n: ds.n, d: ds.d };
    const broken: QualityInput = {
      rows: {
        n: ds.n,
        d: ds.d,
        row() {
          throw new Error('disk on fire');
        },
      },
      labels: ds.labels,
      keys: ds.keys,
    };
    const found = findDuplicatesSafely(broken);
    const trained = trainHead({ X, labels: ds.labels, spec: 's', options: DEFAULT_TRAIN_OPTIONS });
    const doc = completeQualitySafely(
      broken,
      found,
      {
        classes: trained.model.classes,
        details: trained.details,
        accuracy: trained.report.accuracy,
        fit: DEFAULT_TRAIN_OPTIONS,
      },
      { dataset: 'x', version: 'v' },
    );
    expect(doc.notes.join(' ')).toMatch(/disk on fire/);
    expect(doc.images).toBe(ds.n);
    expect(() => parseQualityDocument(doc)).not.toThrow();
  });

  it('skips the slow parts above the size limits, with a note', () => {
    const { quality } = run(ds, { nearThreshold: 0.95, maxNearImages: 10, maxLabelErrorImages: 10 });
    expect(quality.parts).toEqual({ exact: 'done', near: 'skipped', labelErrors: 'skipped' });
    expect(quality.notes.join(' ')).toMatch(
      /near duplicates not searched: \d+ images is over the limit of 10/,
    );
    expect(quality.notes.join(' ')).toMatch(/label errors not searched/);
  });
});

describe('stratifiedGroupSplit', () => {
  const labels = Int32Array.from({ length: 60 }, (_, i) => i % 3);

  it('gives exactly stratifiedSplit without groups of two or more', () => {
    const plain = stratifiedSplit(labels, 0.2, 42);
    const grouped = stratifiedGroupSplit(labels, new Int32Array(60).fill(-1), 0.2, 42);
    expect(grouped.grouped).toBe(false);
    expect([...grouped.train]).toEqual([...plain.train]);
    expect([...grouped.test]).toEqual([...plain.test]);
  });

  it('keeps each group on one side and no class over its test allocation', () => {
    const groups = new Int32Array(60).fill(-1);
    for (let g = 0; g < 8; g++) for (const i of [g * 6, g * 6 + 3]) groups[i] = g; // same class pairs
    groups[1] = 99;
    groups[2] = 99; // a group across two labels
    for (const seed of [1, 2, 3, 42]) {
      const s = stratifiedGroupSplit(labels, groups, 0.2, seed);
      const test = new Set(s.test);
      for (let g = 0; g < 8; g++) expect(test.has(g * 6)).toBe(test.has(g * 6 + 3));
      expect(test.has(1)).toBe(test.has(2));
      expect(s.train.length + s.test.length).toBe(60);
      for (let c = 0; c < 3; c++) {
        const inTest = [...s.test].filter((i) => labels[i] === c).length;
        expect(inTest).toBeLessThanOrEqual(4);
        expect([...s.train].filter((i) => labels[i] === c).length).toBeGreaterThan(0);
      }
    }
  });
});

describe('near-duplicate threshold of the deployed trainer', () => {
  it('comes from TLEARN_NEAR_DUPLICATE_THRESHOLD when set, and is refused outside 0..1', () => {
    expect(loadTrainingConfig({}).nearDuplicateThreshold).toBeUndefined();
    expect(loadTrainingConfig({ TLEARN_NEAR_DUPLICATE_THRESHOLD: '0.98' }).nearDuplicateThreshold).toBe(0.98);
    expect(() => loadTrainingConfig({ TLEARN_NEAR_DUPLICATE_THRESHOLD: '2' })).toThrow(
      /TLEARN_NEAR_DUPLICATE_THRESHOLD is invalid/,
    );
  });
});
