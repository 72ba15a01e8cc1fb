import { describe, expect, it } from 'vitest';
import { runCost } from '../../../lib/cli/commands/cost.ts';
import type { CliContext } from '../../../lib/cli/remote.ts';
import { PRICES_SOURCE } from '../../../lib/cost/prices.ts';
import { estimateCost, MONITORING_ALARMS } from '../../../lib/estimate/estimate.ts';

function capture(): CliContext & { lines: string[] } {
  const lines: string[] = [];
  return { env: {}, cwd: '/', lines, out: (l) => lines.push(l), err: (l) => lines.push(l) };
}

describe('cost estimate', () => {
  it('lists every idle item, and drops the alarms, the dashboard and the drift schedule without monitoring', () => {
    const on = estimateCost({ images: 1000 });
    const off = estimateCost({ images: 1000, monitoring: false });

    const idleOn = on.parts.find((p) => p.name === 'idle per month');
    const idleOff = off.parts.find((p) => p.name === 'idle per month');
    expect(idleOn?.lines.map((l) => l.item.split(' (')[0])).toEqual([
      'CloudWatch alarms',
      'CloudWatch dashboard',
      'CloudWatch custom metric PredictionDriftPsi',
      'Lambda drift-metric compute',
      'Lambda drift-metric requests',
      'S3 PUT/COPY/POST/LIST requests',
      'ECR container image',
      'S3 storage',
      'SQS long polls of 5 idle queues by Lambda',
    ]);
    expect(idleOn?.lines[0]?.usd).toBeCloseTo(MONITORING_ALARMS * 0.1, 10);
    expect(idleOn?.lines[1]?.usd).toBe(3);
    expect(idleOff?.lines.some((l) => l.item.startsWith('CloudWatch'))).toBe(false);
    expect(idleOff?.lines.some((l) => l.item.includes('drift'))).toBe(false);
    // 16 alarms at $0.10, one dashboard at $3, the drift metric at $0.30; 720 hourly runs of
    // drift-metric (512 MB, 1 s each, arm64) and one LIST each.
    const drift = 720 * 0.5 * 0.0000133334 + 720 * 0.2e-6 + 720 * 0.005e-3;
    expect((idleOn?.totalUsd ?? 0) - (idleOff?.totalUsd ?? 0)).toBeCloseTo(1.6 + 3 + 0.3 + drift, 10);
  });

  it('bills a monitoring record per prediction, and the drift schedule reading a day of them', () => {
    const on = estimateCost({ images: 1000, predictionsPerMonth: 90_000 });
    const off = estimateCost({ images: 1000, predictionsPerMonth: 90_000, monitoring: false });
    const serving = (e: typeof on) => e.parts.find((p) => p.name === 'serving per month')?.lines ?? [];

    const records = serving(on).find((l) => l.item.includes('monitoring record'));
    expect(records?.quantity).toBe(90_000);
    expect(records?.usd).toBeCloseTo(90_000 * 0.005e-3, 10);
    // 3,000 records a day: 3 LISTs of 1,000 plus the window's second day folder, 720 runs.
    expect(serving(on).find((l) => l.item.includes('drift-metric'))?.quantity).toBe(720 * 4);
    // Records are a dataset setting, not the stack's monitoring: they stay; the drift LISTs go.
    expect(serving(off).some((l) => l.item.includes('monitoring record'))).toBe(true);
    expect(serving(off).some((l) => l.item.includes('drift-metric'))).toBe(false);
  });

  it('scales extraction with the images and serving with the predictions (hand-checked)', () => {
    const e = estimateCost({
      images: 2000,
      predictionsPerMonth: 10_000,
      extractMsPerImage: 100,
      predictMs: 100,
    });

    const extraction = e.parts.find((p) => p.name === 'extraction');
    const compute = extraction?.lines.find((l) => l.item.startsWith('Lambda extract-features compute'));
    // 2000 × 0.1 s × 3008/1024 GB = 587.5 GB-s at $0.0000133334.
    expect(compute?.quantity).toBeCloseTo(587.5, 6);
    expect(compute?.usd).toBeCloseTo(587.5 * 0.0000133334, 10);
    const serving = e.parts.find((p) => p.name === 'serving per month');
    expect(serving?.lines.find((l) => l.item === 'API Gateway requests')?.usd).toBeCloseTo(
      10_000 * 3.5e-6,
      10,
    );
    for (const p of e.parts)
      expect(p.totalUsd).toBeCloseTo(
        p.lines.reduce((s, l) => s + l.usd, 0),
        12,
      );
  });

  it('prints where and when its prices were taken', async () => {
    const ctx = capture();
    expect(await runCost(['--images', '500', '--region', 'eu-west-1'], ctx)).toBe(0);
    expect(ctx.lines[0]).toBe('prices: eu-west-1, list prices as of 2025-05-01, USD, no free tier');
    expect(ctx.lines[1]).toBe(
      "source: AWS's public on-demand list prices per region for eu-west-1, taken 2025-05-01 from aws.amazon.com/<service>/pricing (8 pages) / the AWS Price List API; check them before relying on a figure",
    );
    expect(PRICES_SOURCE.pages.every((p) => p.startsWith('https://aws.amazon.com/'))).toBe(true);
  });

  it('prints the four parts with their totals, and refuses a missing --images', async () => {
    const ctx = capture();
    expect(await runCost(['--images', '500', '--no-monitoring'], ctx)).toBe(0);
    const text = ctx.lines.join('\n');
    for (const part of ['extraction: $', 'training: $', 'serving per month: $', 'idle per month: $'])
      expect(text).toContain(part);
    expect(text).not.toContain('CloudWatch alarms');
    await expect(runCost([], capture())).rejects.toThrow(/--images N is required/);
    await expect(runCost(['--images', '5', '--region', 'mars-1'], capture())).rejects.toThrow(/--region/);
  });
});
