import { describe, expect, it } from 'vitest';
import {
  DRIFT_ALERT_PSI,
  DriftScheduleEvent,
  driftOfWindow,
  driftScheduleEvent,
  largestDrift,
} from '../../../lib/capture/drift.ts';
import {
  baselineFromReport,
  CONFIDENCE_BINS,
  populationStabilityIndex,
  recordKey,
  recordTime,
  type VersionDay,
} from '../../../lib/capture/monitoring.ts';

function day(labels: Record<string, number>): VersionDay {
  const predictions = Object.values(labels).reduce((a, b) => a + b, 0);
  return {
    predictions,
    abstained: 0,
    labels,
    confidence: Array(CONFIDENCE_BINS).fill(0),
    confidenceSum: 0.9 * predictions,
  };
}

// Held-out predictions: 60 cat, 40 dog (the confusion matrix's column sums).
const baseline = baselineFromReport({
  classes: ['cat', 'dog'],
  confusionMatrix: [
    [50, 5],
    [10, 35],
  ],
});

describe('the drift metric (lib/capture/drift.ts)', () => {
  it('scores a version like the monitoring answer: PSI of its predicted labels against the held-out shares', () => {
    // Prepare: 30 cat / 70 dog served; hand-computed PSI = (0.3-0.6)·ln(0.3/0.6) + (0.7-0.4)·ln(0.7/0.4).
    const stats = { v1: day({ cat: 30, dog: 70 }) };
    const expected = -0.3 * Math.log(0.5) + 0.3 * Math.log(1.75);

    // Act
    const out = driftOfWindow('pets', stats, { v1: baseline }, 30);

    // Assess
    expect(baseline?.labelShare).toEqual({ cat: 0.6, dog: 0.4 });
    expect(out.versions).toEqual([
      { dataset: 'pets', version: 'v1', predictions: 100, labelPsi: expect.any(Number) },
    ]);
    expect(out.versions[0]?.labelPsi).toBeCloseTo(expected, 12);
    expect(out.versions[0]?.labelPsi).toBeCloseTo(
      populationStabilityIndex(stats.v1.labels, { cat: 0.6, dog: 0.4 }),
      12,
    );
    expect(expected).toBeCloseTo(0.376, 3);
    expect(expected).toBeGreaterThan(DRIFT_ALERT_PSI);
    expect(out.skipped).toEqual([]);
  });

  it('gives no drift when the served mix is the held-out mix', () => {
    const out = driftOfWindow('pets', { v1: day({ cat: 60, dog: 40 }) }, { v1: baseline }, 30);
    expect(out.versions[0]?.labelPsi).toBeCloseTo(0, 12);
  });

  it('skips a version with too few predictions, or without a baseline, saying why', () => {
    const stats = { few: day({ cat: 29 }), bare: day({ cat: 50 }) };

    const out = driftOfWindow('pets', stats, { few: baseline, bare: undefined }, 30);

    expect(out.versions).toEqual([]);
    expect(out.skipped).toEqual([
      { dataset: 'pets', version: 'few', predictions: 29, reason: 'few-predictions' },
      { dataset: 'pets', version: 'bare', predictions: 50, reason: 'no-baseline' },
    ]);
  });

  it('publishes the largest drift of a run (ties: the version with more predictions), none without any', () => {
    const a = { dataset: 'a', version: 'v1', predictions: 40, labelPsi: 0.1 };
    const b = { dataset: 'b', version: 'v2', predictions: 50, labelPsi: 0.4 };
    const c = { dataset: 'c', version: 'v3', predictions: 90, labelPsi: 0.4 };

    expect(largestDrift([a, b, c])).toBe(c);
    expect(largestDrift([a])).toBe(a);
    expect(largestDrift([])).toBeUndefined();
  });

  it('reads a record’s time from its day folder and name, second precision', () => {
    const at = new Date('2026-12-07T13:04:05.678Z');
    const key = recordKey('pets', { version: 'v1', label: 'a/b c', confidence: 0.5, abstained: false, at });

    expect(recordTime(key, '2026-12-07')).toBe(Date.parse('2026-12-07T13:04:05Z'));
    expect(recordTime('monitoring/pets/rollups/2026-12-07.json', '2026-12-07')).toBeUndefined();
  });

  it('parses the scheduled event EventBridge sends, and builds the same shape for the local stack', () => {
    const local = driftScheduleEvent(new Date('2026-12-07T06:00:00.123Z'), 'us-east-1', '000000000000');

    expect(DriftScheduleEvent.parse(local).time).toBe('2026-12-07T06:00:00Z');
    expect(DriftScheduleEvent.safeParse({ ...local, source: 'aws.s3' }).success).toBe(false);
  });
});
