import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import type { DriftMeasurement } from '../../../lib/capture/drift.ts';
import { recordPrediction } from '../../../lib/capture/monitoring.ts';
import { modelFileKey } from '../../../lib/storage/keys.ts';
import { putJson } from '../../../lib/storage/s3.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { fakeContext, loadEvent, setHandlerEnv } from './support.ts';

type Handler = (event: unknown, ctx: Context) => Promise<DriftMeasurement>;

/** The sample event's time: the end of the window. */
const EVENT = loadEvent<{ time: string }>('drift-schedule.json');
const NOW = Date.parse(EVENT.time);
const HOUR = 3_600_000;

describe('drift-metric handler: the scheduled drift score, from the monitoring records (emulated S3)', () => {
  let emu: Emulator;
  let restoreEnv: () => void;
  let handler: Handler;
  /** What the function prints with console.log: its EMF lines (Powertools keeps the console it had at import). */
  let out: MockInstance<typeof console.log>;
  const ctx = fakeContext('drift-metric');

  beforeAll(async () => {
    emu = await startEmulator();
    // Metrics on, printed through the global console (POWERTOOLS_DEV): the test reads the EMF line.
    restoreEnv = setHandlerEnv(emu, { POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_DEV: 'true' });
    out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    vi.resetModules();
    handler = (await import('../../../functions/drift-metric/handler.ts')).handler as unknown as Handler;
  });
  afterAll(async () => {
    out.mockRestore();
    restoreEnv();
    await emu.stop();
  });
  beforeEach(() => {
    emu.reset();
    out.mockClear();
  });

  /** `n` predictions of `label` by `version` of `dataset`, `hoursAgo` before the event. */
  async function predicted(dataset: string, version: string, label: string, n: number, hoursAgo: number) {
    for (let i = 0; i < n; i++) {
      await recordPrediction(emu.clients.s3, emu.bucket, dataset, {
        version,
        label,
        confidence: 0.9,
        abstained: false,
        at: new Date(NOW - hoursAgo * HOUR - i * 1000),
      });
    }
  }
  /** A report whose held-out predictions were half cat, half dog. */
  async function trained(dataset: string, version: string) {
    await putJson(emu.clients.s3, emu.bucket, modelFileKey(dataset, version, 'report.json'), {
      classes: ['cat', 'dog'],
      confusionMatrix: [
        [9, 1],
        [1, 9],
      ],
    });
  }

  it('publishes the largest PSI of the last 24 hours, and leaves out older records and thin versions', async () => {
    // Prepare: pets v1 served 40 cats in the window (drifted); its 40 dogs are 30 h old (outside).
    // birds v1 served 20 cats + 20 dogs (the held-out mix); birds v2 only 5 predictions.
    await trained('pets', 'v1');
    await trained('birds', 'v1');
    await trained('birds', 'v2');
    await predicted('pets', 'v1', 'cat', 40, 2);
    await predicted('pets', 'v1', 'dog', 40, 30);
    await predicted('birds', 'v1', 'cat', 20, 23);
    await predicted('birds', 'v1', 'dog', 20, 1);
    await predicted('birds', 'v2', 'cat', 5, 1);

    // Act
    const m = await handler(structuredClone(EVENT), ctx);

    // Assess: 40 of 40 cats against a 50/50 baseline: (1-0.5)·ln(1/0.5) + (1e-4-0.5)·ln(1e-4/0.5).
    const expected = 0.5 * Math.log(2) + (1e-4 - 0.5) * Math.log(1e-4 / 0.5);
    expect(m.from).toBe('2026-12-06T06:00:00.000Z');
    expect(m.datasets).toBe(2);
    expect(m.largest).toMatchObject({ dataset: 'pets', version: 'v1', predictions: 40 });
    expect(m.largest?.labelPsi).toBeCloseTo(expected, 10);
    expect(m.versions.find((v) => v.dataset === 'birds')?.labelPsi).toBeCloseTo(0, 10);
    expect(m.skipped).toEqual([
      { dataset: 'birds', version: 'v2', predictions: 5, reason: 'few-predictions' },
    ]);
    const emf = out.mock.calls
      .map(([chunk]) => String(chunk))
      .find((line) => line.includes('"PredictionDriftPsi"'));
    expect(emf).toBeDefined();
    const doc = JSON.parse(emf ?? '{}') as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] };
    };
    expect(doc.PredictionDriftPsi).toBeCloseTo(expected, 10);
    expect(doc.service).toBe('drift-metric');
    expect(doc._aws.CloudWatchMetrics[0]?.Namespace).toBe('Tlearn');
    expect(doc._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['service']]);
  });

  it('publishes nothing when no version has enough predictions (the alarm treats that as fine)', async () => {
    await trained('pets', 'v1');
    await predicted('pets', 'v1', 'cat', 3, 1);

    const m = await handler(structuredClone(EVENT), ctx);

    expect(m.largest).toBeUndefined();
    expect(out.mock.calls.some(([chunk]) => String(chunk).includes('"PredictionDriftPsi"'))).toBe(false);
  });

  it('refuses an event that is not a scheduled event', async () => {
    await expect(handler({ source: 'aws.s3' }, ctx)).rejects.toThrow(/scheduled event/);
  });
});
