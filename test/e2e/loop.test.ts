/**
 * Closing the loop end to end on the local stack (free ports, seeded random weights): a model is
 * trained by the pipeline, predictions are captured by the dataset's policy, the review lists them
 * most uncertain first, three are labelled through the API and the next model counts them; images
 * put under unlabelled/ get features (never trained on) and come back as suggestions; monitoring
 * counts exactly the predictions made, and its drift rises when the inputs' class mix changes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DriftMeasurement } from '../../lib/capture/drift.ts';
import { runCaptures } from '../../lib/cli/commands/captures.ts';
import { runSuggest } from '../../lib/cli/commands/suggest.ts';
import { EXIT } from '../../lib/cli/exit-codes.ts';
import { createTargetS3Client } from '../../lib/cli/target.ts';
import type { LocalStack } from '../../lib/local/stack.ts';
import { imageKey } from '../../lib/storage/keys.ts';
import { listAllObjects, putObject } from '../../lib/storage/s3.ts';
import { type LabelledImage, makeLabelledImages } from '../helpers/images.ts';
import { pollUntil } from '../helpers/poll.ts';
import { startTestStack } from '../helpers/stack.ts';

const DATASET = 'loop';

interface ModelAnswer {
  model: { version: string };
  report: { counts: { total: number } } | null;
}

describe('closing the loop on the local stack', () => {
  let tmp: string;
  let stack: LocalStack;
  let s3: S3Client;
  let images: LabelledImage[];
  let firstVersion = '';
  let firstTotal = 0;
  let predictions = 0;
  const url = (path: string) => `${stack.apiUrl}/datasets/${DATASET}${path}`;
  const json = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const res = await fetch(url(path), {
      ...init,
      headers: init.body ? { 'content-type': 'application/json' } : {},
    });
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const predict = async (img: LabelledImage) => {
    const res = await fetch(url('/predictions'), {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: img.data,
    });
    expect(res.status).toBe(200);
    predictions += 1;
    return (await res.json()) as { captureId?: string };
  };
  const cli = () => {
    const out: string[] = [];
    return {
      out,
      ctx: {
        env: { TLEARN_API_URL: stack.apiUrl },
        cwd: tmp,
        out: (l: string) => out.push(l),
        err: () => {},
      },
    };
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'tlearn-loop-'));
    stack = await startTestStack(join(tmp, 'data'), { settleSeconds: 1 });
    s3 = createTargetS3Client(
      { bucket: stack.bucket, region: stack.region, endpoint: stack.awsEndpoint },
      10_000,
    );
    images = await makeLabelledImages({ labels: ['red', 'green', 'blue'], perClass: 12, seed: 5 });
    for (const [i, img] of images.entries()) {
      if (i % 12 < 6) await putObject(s3, stack.bucket, imageKey(DATASET, img.label, img.file), img.data);
    }
    const first = await pollUntil(
      'a promoted model',
      async () => {
        const res = await fetch(url('/model'));
        return res.status === 200 ? ((await res.json()) as ModelAnswer) : undefined;
      },
      120_000,
    );
    firstVersion = first.model.version;
    firstTotal = first.report?.counts.total ?? 0;
  }, 180_000);

  afterAll(async () => {
    s3?.destroy();
    await stack?.stop();
    await rm(tmp, { recursive: true, force: true });
  }, 60_000);

  it('captures by policy, reviews most uncertain first, and the next model counts the 3 labelled', async () => {
    // Every prediction below 100 % confidence is kept: all of them.
    await json('/settings', {
      method: 'PUT',
      body: JSON.stringify({ capture: { sample: 0, belowConfidence: 1 } }),
    });
    const unseen = images.filter((_, i) => i % 12 >= 6 && i % 12 < 9);
    for (const img of unseen) expect((await predict(img)).captureId).toBeDefined();
    const page = await json<{ captures: Array<{ id: string; margin: number }>; pending: number }>(
      '/captures?order=uncertain&limit=200',
    );
    expect(page.pending).toBe(unseen.length);
    const margins = page.captures.map((c) => c.margin);
    expect(margins).toEqual([...margins].sort((a, b) => a - b));
    const { out, ctx } = cli();
    expect(await runCaptures([DATASET], ctx)).toBe(EXIT.OK);
    expect(out[0]).toBe(`${unseen.length} to review, 0 reviewed`);

    for (const c of page.captures.slice(0, 3)) {
      await json(`/captures/${c.id}/label`, { method: 'POST', body: JSON.stringify({ label: 'red' }) });
    }
    const next = await pollUntil(
      'a model trained with the 3 labelled captures',
      async () => {
        const m = await json<ModelAnswer>('/model');
        return m.model.version !== firstVersion && m.report?.counts.total === firstTotal + 3 ? m : undefined;
      },
      120_000,
    );
    expect(next.report?.counts.total).toBe(firstTotal + 3);
    const copies = await listAllObjects(s3, stack.bucket, `datasets/${DATASET}/red/capture-`);
    expect(copies).toHaveLength(3);
  }, 200_000);

  it('extracts the unlabelled pool without training on it and suggests from it', async () => {
    const pool = images.filter((_, i) => i % 12 >= 9);
    for (const img of pool)
      await putObject(s3, stack.bucket, `unlabelled/${DATASET}/${img.label}-${img.file}`, img.data);
    const s = await pollUntil(
      'suggestions from every pool image',
      async () => {
        const r = await json<{ pool: { scored: number }; suggestions: Array<{ key: string }> }>(
          '/suggestions?n=5',
        );
        return r.pool.scored === pool.length ? r : undefined;
      },
      90_000,
    );
    expect(s.suggestions).toHaveLength(5);
    for (const x of s.suggestions) expect(x.key.startsWith(`unlabelled/${DATASET}/`)).toBe(true);
    expect(await listAllObjects(s3, stack.bucket, `features/${DATASET}/unlabelled`)).toEqual([]);
    const { out, ctx } = cli();
    expect(await runSuggest([DATASET, '--n', '3'], ctx)).toBe(EXIT.OK);
    expect(out.filter((l) => l.includes(`unlabelled/${DATASET}/`))).toHaveLength(3);
  }, 120_000);

  it('counts every prediction in monitoring, and drift rises when the class mix changes', async () => {
    const before = await json<{
      versions: Array<{ version: string; predictions: number; drift: { labelPsi: number | null } }>;
    }>('/monitoring?days=2');
    const served = before.versions.reduce((n, v) => n + v.predictions, 0);
    expect(served).toBe(predictions);
    const model = await json<{
      model: { version: string };
      report: { classes: string[]; confusionMatrix: number[][] | null } | null;
    }>('/model');
    const current = model.model.version;
    // The held-out set's predicted-label shares (the drift baseline: the confusion matrix's columns).
    const cm = model.report?.confusionMatrix ?? [];
    const classes = model.report?.classes ?? [];
    const held = classes.map((_, j) => cm.reduce((n, row) => n + (row[j] ?? 0), 0));
    const heldTotal = held.reduce((a, b) => a + b, 0);
    const share = (label: string) => (held[classes.indexOf(label)] ?? 0) / heldTotal;
    // From now on only the images the model calls the label rarest in its held-out predictions.
    const answers: Array<{ img: LabelledImage; label: string }> = [];
    for (const img of images) {
      const a = (await predict(img)) as { label?: string | null };
      if (a.label) answers.push({ img, label: a.label });
    }
    const rarest = [...new Set(answers.map((a) => a.label))].sort((a, b) => share(a) - share(b))[0] ?? '';
    expect(share(rarest)).toBeLessThan(0.6);
    const rare = answers.filter((a) => a.label === rarest).map((a) => a.img);
    const middle = await json<{
      versions: Array<{ version: string; predictions: number; drift: { labelPsi: number | null } }>;
    }>('/monitoring?days=2');
    for (let n = 0; n < 60; n++) await predict(rare[n % rare.length] as LabelledImage);
    const after = await json<{
      versions: Array<{ version: string; predictions: number; drift: { labelPsi: number | null } }>;
    }>('/monitoring?days=2');
    expect(after.versions.reduce((n, v) => n + v.predictions, 0)).toBe(predictions);
    const v = after.versions.find((x) => x.version === current);
    const v0 = middle.versions.find((x) => x.version === current);
    expect(v).toBeDefined();
    expect(v?.drift.labelPsi).not.toBeNull();
    expect(v?.drift.labelPsi ?? 0).toBeGreaterThan(v0?.drift.labelPsi ?? 0);
    expect(v?.drift.labelPsi ?? 0).toBeGreaterThan(0.25);

    // The drift alarm's metric, as the deployed schedule computes it: the local stack runs the same
    // function (drift-metric) on its own timer; every prediction here is inside its 24-hour window.
    const m = (await stack.driftSchedule.runNow()) as DriftMeasurement;
    const scored = m.versions.find((x) => x.dataset === DATASET && x.version === current);
    expect(scored?.predictions).toBe(v?.predictions);
    expect(scored?.labelPsi).toBeCloseTo(v?.drift.labelPsi ?? 0, 10);
    expect(m.largest?.labelPsi ?? 0).toBeGreaterThan(m.threshold);
  }, 120_000);
});
