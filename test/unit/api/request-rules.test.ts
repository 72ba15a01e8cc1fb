import { describe, expect, it } from 'vitest';
import { checkImageKey, PredictionJsonBody, parseTop } from '../../../lib/api/predict.ts';
import { TlearnError } from '../../../lib/errors.ts';
import { trainingExecutionName } from '../../../lib/pipeline/training-lock.ts';
import { rankScores } from '../../../lib/serving/score.ts';

function thrown(fn: () => unknown): TlearnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TlearnError) return err;
    throw err;
  }
  throw new Error('expected a TlearnError');
}

describe('parseTop', () => {
  it('takes a whole number from 1 and leaves absence undefined', () => {
    expect(parseTop(undefined)).toBeUndefined();
    expect(parseTop('1')).toBe(1);
    expect(parseTop('3')).toBe(3);
  });

  it.each(['0', '-1', 'abc', '1.5', '', ' 2', '1e3', '9999999'])('refuses %j with 400 InvalidTop', (raw) => {
    const err = thrown(() => parseTop(raw));
    expect(err.status).toBe(400);
    expect(err.code).toBe('InvalidTop');
  });
});

describe('checkImageKey', () => {
  it('accepts an image key of the same dataset', () => {
    expect(checkImageKey('datasets/pets/cat/1.png', 'pets')).toBe('datasets/pets/cat/1.png');
    expect(checkImageKey('datasets/pets/dog.2.jpg', 'pets')).toBe('datasets/pets/dog.2.jpg');
  });

  it('refuses a key outside datasets/ with 400', () => {
    const err = thrown(() => checkImageKey('models/pets/current.json', 'pets'));
    expect(err).toMatchObject({ status: 400, code: 'InvalidImageKey' });
    expect(err.message).toContain('datasets/pets/');
  });

  it("refuses another dataset's image with 403 naming both datasets", () => {
    const err = thrown(() => checkImageKey('datasets/other/cat/1.png', 'pets'));
    expect(err).toMatchObject({ status: 403, code: 'KeyOutsideDataset' });
    expect(err.message).toContain("'other'");
    expect(err.message).toContain("'pets'");
  });

  it('refuses path tricks that leave the dataset', () => {
    expect(thrown(() => checkImageKey('datasets/../other/cat/1.png', 'pets')).status).toBe(403);
    expect(thrown(() => checkImageKey('datasets/pets-2/cat/1.png', 'pets')).status).toBe(403);
    expect(thrown(() => checkImageKey('datasets/pets/../other/1.png', 'pets')).code).toBe('InvalidImageKey');
  });

  it('refuses a key of the dataset that is not an image name with 400', () => {
    const err = thrown(() => checkImageKey('datasets/pets/cat/notes.txt', 'pets'));
    expect(err).toMatchObject({ status: 400, code: 'InvalidImageKey' });
    expect(err.message).toContain('no image extension');
  });
});

describe('PredictionJsonBody', () => {
  it('takes exactly one of image or key', () => {
    expect(PredictionJsonBody.safeParse({ image: 'AAAA' }).success).toBe(true);
    expect(PredictionJsonBody.safeParse({ key: 'datasets/pets/a/1.png' }).success).toBe(true);
    expect(PredictionJsonBody.safeParse({}).success).toBe(false);
    expect(PredictionJsonBody.safeParse({ image: 'AAAA', key: 'datasets/pets/a/1.png' }).success).toBe(false);
    expect(PredictionJsonBody.safeParse({ image: 'AAAA', extra: 1 }).success).toBe(false);
    expect(PredictionJsonBody.safeParse({ image: 42 }).success).toBe(false);
    expect(PredictionJsonBody.safeParse([]).success).toBe(false);
  });
});

describe('rankScores', () => {
  it('sorts by probability, highest first, ties by label', () => {
    expect(rankScores(['a', 'b', 'c', 'd'], [0.1, 0.4, 0.1, 0.4])).toEqual([
      { label: 'b', probability: 0.4 },
      { label: 'd', probability: 0.4 },
      { label: 'a', probability: 0.1 },
      { label: 'c', probability: 0.1 },
    ]);
  });
});

describe('trainingExecutionName', () => {
  const at = new Date('2026-11-28T10:34:18.123Z');

  it('is {d}-{lock time in ms, base 36}{lock generation, base 36, three characters at least}', () => {
    expect(trainingExecutionName('pets', at, 7)).toBe(`pets-${at.getTime().toString(36)}007`);
    expect(trainingExecutionName('pets', at, 46_656)).toBe(`pets-${at.getTime().toString(36)}1000`);
    expect(trainingExecutionName('pets', at, 7)).toBe(trainingExecutionName('pets', at, 7));
  });

  it('keeps a 63-character dataset name whole within the 80-character limit of Step Functions', () => {
    const dataset = 'd'.repeat(63);
    const name = trainingExecutionName(dataset, at, 46_655);
    expect(name.length).toBeLessThanOrEqual(80);
    expect(name.startsWith(`${dataset}-`)).toBe(true);
    expect(name).toMatch(/^[A-Za-z0-9-_]+$/);
  });
});
