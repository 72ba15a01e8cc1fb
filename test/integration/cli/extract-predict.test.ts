import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExtractCommand } from '../../../lib/cli/commands/extract.ts';
import { createPredictCommand } from '../../../lib/cli/commands/predict.ts';
import { readFeatureDir } from '../../../lib/features/local-dataset.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { nullStream, runCommand } from '../../helpers/cli.ts';
import { writeLabelledImages } from '../../helpers/images.ts';

// The real extractor (random VGG16 weights, tiny input) behind the real commands: slow-ish
// (one model load per command), so one dataset shared by the steps below.
let root: string;
const deps = { log: silentLog, progressStream: nullStream };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tlearn-e2e-extract-'));
  await writeLabelledImages(join(root, 'data'), {
    labels: ['cat', 'dog'],
    perClass: 3,
    width: 40,
    height: 40,
  });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('tlearn extract and predict with the real extractor', () => {
  it('extracts features, then predicts with a head built on them', async () => {
    // act 1: extract
    const out = join(root, 'features');
    const extracted = await runCommand(createExtractCommand(deps), [
      join(root, 'data'),
      '--out',
      out,
      '--weights',
      'random:1',
      '--size',
      '32',
      '--pooling',
      'avg',
    ]);

    // assess 1
    expect(extracted.code).toBe(0);
    const fd = await readFeatureDir(out);
    expect(fd.spec).toBe('vgg16/random-1/32x32/avg/caffe/bilinear');
    expect([fd.X.n, fd.X.d]).toEqual([6, 512]);
    expect(fd.labels).toEqual(['cat', 'cat', 'cat', 'dog', 'dog', 'dog']);
    expect(fd.X.data.every(Number.isFinite)).toBe(true);
    expect(fd.X.data.some((v) => v !== 0)).toBe(true);

    // prepare 2: a nearest-centroid linear head (w = mean(dog) - mean(cat), boundary halfway)
    const mean = (from: number) => {
      const m = new Array<number>(512).fill(0);
      for (let i = from; i < from + 3; i++)
        for (let j = 0; j < 512; j++) m[j] = (m[j] ?? 0) + (fd.X.data[i * 512 + j] ?? 0) / 3;
      return m;
    };
    const cat = mean(0);
    const dog = mean(3);
    const w = dog.map((v, j) => v - (cat[j] ?? 0));
    const b = -w.reduce((s, v, j) => s + v * (((cat[j] ?? 0) + (dog[j] ?? 0)) / 2), 0);
    const model = join(root, 'model');
    await mkdir(model, { recursive: true });
    await writeFile(
      join(model, 'model.json'),
      JSON.stringify({ classes: ['cat', 'dog'], coef: [w], intercept: [b], spec: fd.spec }),
    );

    // act 2: predict the training images offline (weights default to the head's random seed)
    const predicted = await runCommand(createPredictCommand(deps), [
      '--model',
      model,
      join(root, 'data'),
      '--json',
    ]);

    // assess 2
    expect(predicted.code).toBe(0);
    const predictions = JSON.parse(predicted.stdout).predictions as { image: string; label: string }[];
    expect(predictions).toHaveLength(6);
    for (const p of predictions) expect(p.label).toBe(p.image.includes('/cat/') ? 'cat' : 'dog');
  });
});
