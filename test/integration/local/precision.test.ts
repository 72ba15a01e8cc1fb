import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../../lib/local/stack.ts';
import { silentLog } from '../../../lib/util/log.ts';

describe('the local stack with precision int8 (as tlearn local --precision int8)', () => {
  let dataDir: string;
  let stack: LocalStack | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tlearn-stack-int8-'));
  });
  afterAll(async () => {
    try {
      await stack?.stop();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('extracts, trains and predicts on /int8 features through the real handlers', async () => {
    // Prepare + act: the demo dataset, extracted and trained by the handlers the stack runs.
    stack = await startLocalStack({
      dataDir,
      apiPort: 0,
      awsPort: 0,
      sfnPort: 0,
      weights: 'random:7',
      inputSize: 32,
      precision: 'int8',
      settleSeconds: 1,
      demoPerClass: 4,
      log: silentLog,
      print: () => {},
      onDemoProgress: () => {},
    });
    const outcome = await stack.demo;
    const sample = await readFile(outcome?.sampleFile ?? '');
    const res = await fetch(`${stack.apiUrl}/datasets/demo/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: sample,
    });
    const body = (await res.json()) as { label: string; model: { spec: string } };
    const health = (await (await fetch(`${stack.apiUrl}/health`)).json()) as { spec?: string };

    // Assess
    expect(outcome?.report.spec).toBe('vgg16/random-7/32x32/flatten/caffe/bilinear/int8');
    expect(res.status).toBe(200);
    expect(body.model.spec).toBe(outcome?.report.spec);
    expect(JSON.stringify(health)).toContain('/int8');
  }, 240_000);
});
