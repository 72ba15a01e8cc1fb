import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { precisionFlag, UsageError } from '../../../lib/cli/args.ts';
import { createExtractCommand, type ExtractorRequest } from '../../../lib/cli/commands/extract.ts';
import { command as localCommand } from '../../../lib/cli/commands/local.ts';
import { createPredictCommand } from '../../../lib/cli/commands/predict.ts';
import { ENV, loadModelConfig } from '../../../lib/config.ts';
import { ConfigError } from '../../../lib/errors.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { nullStream, runCommand } from '../../helpers/cli.ts';
import { fakeExtractor } from '../../helpers/fake-extractor.ts';
import { makeImage, writeLabelledImages } from '../../helpers/images.ts';

let root: string;
let requests: ExtractorRequest[];

const deps = () => ({
  async loadExtractor(req: ExtractorRequest) {
    requests.push(req);
    const seed = req.weights.kind === 'random' ? req.weights.seed : 0;
    return fakeExtractor({
      size: req.inputSize,
      pooling: req.pooling,
      weights: `random-${seed}`,
      ...(req.precision ? { precision: req.precision } : {}),
    });
  },
  log: silentLog,
  progressStream: nullStream,
  baseModelsDir: join(root, 'no-base-models'),
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tlearn-cli-precision-'));
  requests = [];
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('--precision', () => {
  it('parses fp32 (the default) and int8', () => {
    expect(precisionFlag(undefined)).toBe('fp32');
    expect(precisionFlag('fp32')).toBe('fp32');
    expect(precisionFlag('int8')).toBe('int8');
    expect(precisionFlag('int8', 'onnx')).toBe('int8');
  });

  it.each([
    [['int4'], /--precision must be fp32 or int8 \(got 'int4'\)/],
    [['INT8'], /--precision must be fp32 or int8/],
    [['int8', 'wasm'], /onnx engine only; drop --backend wasm/],
  ] as const)('rejects %j', (args, message) => {
    expect(() => precisionFlag(args[0], args[1])).toThrow(UsageError);
    expect(() => precisionFlag(args[0], args[1])).toThrow(message);
  });

  it('tlearn extract --precision int8 asks for the int8 extractor and writes /int8 features', async () => {
    // Prepare
    await writeLabelledImages(join(root, 'data'), { labels: ['cat', 'dog'], perClass: 2 });

    // Act
    const r = await runCommand(createExtractCommand(deps()), [
      join(root, 'data'),
      '--out',
      join(root, 'features'),
      '--weights',
      'random:5',
      '--size',
      '32',
      '--pooling',
      'avg',
      '--precision',
      'int8',
    ]);

    // Assess
    expect(r.code).toBe(0);
    expect(requests).toEqual([
      {
        weights: { kind: 'random', seed: 5 },
        inputSize: 32,
        pooling: 'avg',
        precision: 'int8',
        log: silentLog,
      },
    ]);
    expect(r.stdout).toMatch(/spec vgg16\/random-5\/32x32\/avg\/caffe\/bilinear\/int8/);
  });

  it('tlearn extract without --precision asks for no precision (fp32)', async () => {
    await writeLabelledImages(join(root, 'data'), { labels: ['cat', 'dog'], perClass: 1 });
    await runCommand(createExtractCommand(deps()), [
      join(root, 'data'),
      '--out',
      join(root, 'f'),
      '--weights',
      'random:5',
    ]);
    expect(requests[0]).not.toHaveProperty('precision');
  });

  it('tlearn extract and tlearn local refuse a bad --precision before loading anything', async () => {
    const extract = await createExtractCommand(deps())
      .run(['data', '--out', 'x', '--precision', 'fp16'])
      .catch((e: unknown) => e);
    expect(extract).toBeInstanceOf(UsageError);
    const local = await localCommand.run(['--precision', 'fp16']).catch((e: unknown) => e);
    expect(local).toBeInstanceOf(UsageError);
    expect((local as Error).message).toMatch(/--precision must be fp32 or int8/);
    expect(requests).toEqual([]);
  });

  it('tlearn predict --model runs the int8 engine for a head trained on int8 features', async () => {
    // Prepare
    const dir = join(root, 'model');
    await mkdir(dir, { recursive: true });
    const row = new Array(512).fill(0);
    row[2] = 0.05;
    await writeFile(
      join(dir, 'model.json'),
      JSON.stringify({
        classes: ['blue', 'red'],
        coef: [row],
        intercept: [0],
        spec: 'vgg16/random-7/32x32/avg/caffe/bilinear/int8',
      }),
    );
    await writeFile(
      join(root, 'red.png'),
      await makeImage('png', { width: 20, height: 20, color: [230, 20, 20] }),
    );

    // Act
    const r = await runCommand(createPredictCommand({ ...deps(), loadRemote: async () => undefined }), [
      '--model',
      dir,
      join(root, 'red.png'),
    ]);

    // Assess
    expect(r.code).toBe(0);
    expect(requests[0]).toMatchObject({ weights: { kind: 'random', seed: 7 }, precision: 'int8' });
    expect(r.stdout).toMatch(/red/);
  });
});

describe('TLEARN_PRECISION', () => {
  const env = { [ENV.WEIGHTS]: 'random:1' };

  it('defaults to fp32 and reads int8', () => {
    expect(loadModelConfig(env).precision).toBe('fp32');
    expect(loadModelConfig({ ...env, [ENV.PRECISION]: 'int8' }).precision).toBe('int8');
  });

  it('fails naming the variable on anything else', () => {
    expect(() => loadModelConfig({ ...env, [ENV.PRECISION]: 'int4' })).toThrow(ConfigError);
    expect(() => loadModelConfig({ ...env, [ENV.PRECISION]: 'int4' })).toThrow(ENV.PRECISION);
  });
});
