import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DriftScheduleEvent, driftScheduleEvent } from '../../../lib/capture/drift.ts';
import { startLocalSchedule } from '../../../lib/local/schedule.ts';
import type { Log } from '../../../lib/util/log.ts';

const log: Log = { debug() {}, info() {}, warn() {}, error() {} };

afterEach(() => {
  vi.useRealTimers();
});

describe('the local stand-in of an EventBridge schedule (lib/local/schedule.ts)', () => {
  it('calls the handler with a scheduled event every period, with a Lambda context', async () => {
    // Prepare
    vi.useFakeTimers({ now: new Date('2026-12-07T06:00:00Z') });
    const calls: { event: unknown; context: Context }[] = [];
    const schedule = startLocalSchedule({
      functionName: 'drift-metric',
      handler: async (event, context) => {
        calls.push({ event, context });
      },
      everyMs: 60_000,
      event: driftScheduleEvent,
      region: 'us-east-1',
      timeoutMs: 300_000,
      log,
    });

    // Act: two periods pass.
    await vi.advanceTimersByTimeAsync(120_000);
    await schedule.stop();
    await vi.advanceTimersByTimeAsync(120_000);

    // Assess: two runs, none after stop; each event parses as the deployed schedule's.
    expect(calls).toHaveLength(2);
    expect(DriftScheduleEvent.parse(calls[0]?.event).time).toBe('2026-12-07T06:01:00Z');
    expect(calls[1]?.context.functionName).toBe('drift-metric');
    expect(calls[1]?.context.getRemainingTimeInMillis()).toBeLessThanOrEqual(300_000);
  });

  it('skips a period while a run is still going, and stop() waits for that run', async () => {
    vi.useFakeTimers();
    let finish: () => void = () => {};
    let runs = 0;
    const schedule = startLocalSchedule({
      functionName: 'drift-metric',
      handler: () => {
        runs += 1;
        return new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
      everyMs: 1_000,
      event: driftScheduleEvent,
      region: 'us-east-1',
      timeoutMs: 10_000,
      log,
    });

    await vi.advanceTimersByTimeAsync(3_500);
    expect(runs).toBe(1);
    let stopped = false;
    const stopping = schedule.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finish();
    await stopping;
    expect(stopped).toBe(true);
  });

  it('runs now when asked (the run’s result is returned), and logs a failed run without stopping', async () => {
    vi.useFakeTimers();
    const warnings: string[] = [];
    let n = 0;
    const schedule = startLocalSchedule({
      functionName: 'drift-metric',
      handler: async () => {
        n += 1;
        if (n === 2) throw new Error('S3 down');
        return { run: n };
      },
      everyMs: 1_000,
      event: driftScheduleEvent,
      region: 'us-east-1',
      timeoutMs: 10_000,
      log: { ...log, warn: (m) => warnings.push(m) },
    });

    expect(await schedule.runNow()).toEqual({ run: 1 });
    await vi.advanceTimersByTimeAsync(2_000);
    await schedule.stop();

    expect(n).toBe(3);
    expect(warnings).toEqual(['drift-metric failed']);
  });
});
