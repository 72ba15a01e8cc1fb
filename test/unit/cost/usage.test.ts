import { describe, expect, it } from 'vitest';
import { trainingUsageDocument } from '../../../lib/cost/training.ts';
import {
  gbSeconds,
  priceUsage,
  TRAINING_TRANSITIONS_HAPPY_PATH,
  type Usage,
  UsageDocumentSchema,
} from '../../../lib/cost/usage.ts';

/** A recorded training: 3008 MB arm64 for 12.5 s, 7 transitions, 40 GET + 5 PUT-class S3 requests. */
const RECORDED: Usage = {
  lambda: [
    { function: 'train-head', architecture: 'arm64', memoryMb: 3008, invocations: 1, durationMs: 12_500 },
  ],
  stepFunctions: { transitions: 7 },
  s3: { put: 5, get: 40 },
  sqs: { requests: 0 },
  apiGateway: { requests: 0 },
};

describe('usage and its price', () => {
  it('prices recorded usage with the dated us-east-1 list prices (checked by hand)', () => {
    const cost = priceUsage(RECORDED, 'us-east-1');

    // 3008/1024 GB × 12.5 s = 36.71875 GB-s × $0.0000133334 = $0.00048959…
    expect(gbSeconds(RECORDED.lambda[0] as Usage['lambda'][number])).toBeCloseTo(36.71875, 10);
    const byItem = Object.fromEntries(cost.lines.map((l) => [l.item, l]));
    expect(byItem['Lambda train-head compute (arm64, 3008 MB)']?.usd).toBeCloseTo(
      36.71875 * 0.0000133334,
      12,
    );
    expect(byItem['Lambda train-head requests']?.usd).toBeCloseTo(0.2e-6, 15);
    expect(byItem['Step Functions state transitions']?.usd).toBeCloseTo(7 * 0.000025, 12);
    expect(byItem['S3 PUT/COPY/POST/LIST requests']?.usd).toBeCloseTo(5 * 0.000005, 12);
    expect(byItem['S3 GET/HEAD requests']?.usd).toBeCloseTo(40 * 0.0000004, 12);
    expect(cost.lines.map((l) => l.item)).not.toContain('SQS requests');
    expect(cost.totalUsd).toBeCloseTo(
      36.71875 * 0.0000133334 + 0.2e-6 + 7 * 0.000025 + 5 * 0.000005 + 40 * 0.0000004,
      12,
    );
    expect(cost).toMatchObject({ region: 'us-east-1', currency: 'USD', pricesAsOf: '2025-05-01' });
  });

  it('refuses a region it has no prices for, naming the known ones', () => {
    expect(() => priceUsage(RECORDED, 'ap-south-2')).toThrow(/us-east-1, eu-west-1/);
  });

  it("builds a training's usage document with what was measured and says what it left out", () => {
    const doc = trainingUsageDocument(
      { region: 'eu-west-1', memoryMb: 3008, architecture: 'arm64' },
      12_500,
      { put: 2, get: 40 },
      3,
    );

    expect(UsageDocumentSchema.parse(doc)).toEqual(doc);
    // The state transitions are those of the synthesized happy path (test/infra/cost.test.ts walks it).
    expect(doc.usage).toEqual({
      ...RECORDED,
      stepFunctions: { transitions: TRAINING_TRANSITIONS_HAPPY_PATH },
    });
    expect(doc.cost.region).toBe('eu-west-1');
    expect(doc.notes.join(' ')).toMatch(/Not included: check-readiness/);
    const unknown = trainingUsageDocument({ region: 'ap-south-2' }, 1000, { put: 0, get: 1 }, 3);
    expect(unknown.usage.lambda).toEqual([]);
    expect(unknown.cost.region).toBe('us-east-1');
    expect(unknown.notes.join(' ')).toMatch(/No prices for ap-south-2/);
  });
});
