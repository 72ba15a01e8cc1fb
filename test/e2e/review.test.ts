/**
 * The console's Review tab and monitoring chart in a real browser: Debian's chromium driven by
 * playwright-core (as test/e2e/console.test.ts), on the local stack in this process with a key set.
 * The capture policy is set in the page, predictions made through the API are captured, and the
 * captures are labelled from the keyboard (1, 2), discarded (x) and undone (u); the API's state is
 * then checked: review counts and the labelled copies under `datasets/{d}/{label}/capture-*`.
 *
 * UPDATE_SCREENSHOTS=1 writes review.png and monitoring.png to docs/screenshots/ (else a temp dir).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MonitoringResponse, SuggestionsResponse } from '../../console/src/types.ts';
import type { DatasetStatus } from '../../lib/api/datasets.ts';
import type { CapturePage } from '../../lib/capture/captures.ts';
import { recordPrediction } from '../../lib/capture/monitoring.ts';
import { createTargetS3Client } from '../../lib/cli/target.ts';
import type { LocalStack } from '../../lib/local/stack.ts';
import { makeLabelledImages } from '../helpers/images.ts';
import { pollUntil } from '../helpers/poll.ts';
import { startTestStack } from '../helpers/stack.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const API_KEY = 'review-test-key';
const DATASET = 'shop';
/** Sorted, as the model's classes (keys 1, 2, 3 in the legend). */
const CLASSES = ['blue', 'green', 'red'];
const PER_CLASS = 6;
const PREDICTIONS = 5;
const SCREENSHOTS =
  process.env.UPDATE_SCREENSHOTS === '1' ? join(process.cwd(), 'docs', 'screenshots') : undefined;

describe.skipIf(!existsSync(CHROMIUM))(
  'the Review tab and monitoring in chromium, on the local stack',
  () => {
    let tmp: string;
    let stack: LocalStack | undefined;
    let s3: S3Client | undefined;
    let context: BrowserContext | undefined;
    let page: Page;
    let shots: string;

    const url = (path = '/') => `${stack?.apiUrl ?? ''}${path}`;
    const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const res = await fetch(url(path), {
        method,
        headers: { 'x-api-key': API_KEY, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };
    const listKeys = async (prefix: string): Promise<string[]> => {
      const out = await s3?.send(new ListObjectsV2Command({ Bucket: stack?.bucket, Prefix: prefix }));
      return (out?.Contents ?? []).map((o) => o.Key ?? '').sort();
    };

    beforeAll(async () => {
      tmp = await mkdtemp(join(tmpdir(), 'tlearn-review-'));
      shots = SCREENSHOTS ?? join(tmp, 'screenshots');
      await mkdir(shots, { recursive: true });
      stack = await startTestStack(join(tmp, 'data'), { settleSeconds: 1, apiKey: API_KEY });
      s3 = createTargetS3Client(
        { bucket: stack.bucket, region: stack.region, endpoint: stack.awsEndpoint },
        10_000,
      );
      for (const img of await makeLabelledImages({ labels: CLASSES, perClass: PER_CLASS, seed: 21 }))
        await s3.send(
          new PutObjectCommand({
            Bucket: stack.bucket,
            Key: `datasets/${DATASET}/${img.label}/${img.file}`,
            Body: img.data,
            ContentType: 'image/png',
          }),
        );
      context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1280, height: 800 },
      });
      // The key as the page keeps it after asking once (test/e2e/console.test.ts covers the asking).
      await context.addInitScript(`sessionStorage.setItem('tlearn.apiKey', ${JSON.stringify(API_KEY)})`);
      page = context.pages()[0] ?? (await context.newPage());
      await pollUntil(
        'a promoted model',
        async () => (await call<DatasetStatus>('GET', `/datasets/${DATASET}`)).model?.version,
        90_000,
      );
    }, 150_000);

    afterAll(async () => {
      await context?.close();
      s3?.destroy();
      await stack?.stop();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it('sets the capture policy in the page, refusing a rate outside 0-1', async () => {
      await page.goto(url(`/#/d/${DATASET}/review`));
      const sample = page.getByLabel('Sample rate (0-1)');
      await sample.fill('2');
      await page.getByText('must be a number from 0 to 1').waitFor();
      const refused = await page.getByRole('button', { name: 'Save policy' }).isDisabled();

      await sample.fill('1');
      await page.getByLabel('Capture below confidence (0-1, empty: off)').fill('0.9');
      await page.getByRole('button', { name: 'Save policy' }).click();
      await page.getByText('Saved:').waitFor();
      const stored = await call<{ settings: unknown }>('GET', `/datasets/${DATASET}/settings`);

      expect(refused).toBe(true);
      expect(stored.settings).toEqual({ capture: { sample: 1, belowConfidence: 0.9 }, monitoring: true });
    }, 30_000);

    it('labels captures with 1 and 2, discards with x and undoes with u, as the API then says', async () => {
      const images = await makeLabelledImages({ labels: CLASSES, perClass: 2, seed: 33 });
      for (const img of images.slice(0, PREDICTIONS)) {
        const res = await fetch(url(`/datasets/${DATASET}/predictions`), {
          method: 'POST',
          headers: { 'content-type': 'image/png', 'x-api-key': API_KEY },
          body: img.data,
        });
        expect(((await res.json()) as { captureId?: string }).captureId).toBeDefined();
      }
      await page.goto(url(`/#/d/${DATASET}/training`));
      await page.goto(url(`/#/d/${DATASET}/review`));
      const faces = page.locator('.review-grid .card-face');
      await faces.nth(PREDICTIONS - 1).waitFor();
      const cards = page.locator('.review-grid .card');
      const ids = await cards.evaluateAll((all) => all.map((c) => c.getAttribute('data-id') ?? ''));
      const margins = (await page.locator('.review-grid figcaption').allInnerTexts()).map((t) =>
        Number(/margin (\d\.\d+)/.exec(t)?.[1]),
      );
      const session = page.getByTestId('review-session');

      await faces.first().focus();
      await page.keyboard.press('1');
      await session.getByText('1 labelled, 0 discarded').waitFor();
      await page.keyboard.press('2');
      await session.getByText('2 labelled, 0 discarded').waitFor();
      await page.keyboard.press('x');
      await session.getByText('2 labelled, 1 discarded').waitFor();
      // Two labelled and one discarded leave the grid; the undone one comes back.
      await cards.nth(PREDICTIONS - 3).waitFor({ state: 'detached' });
      await page.keyboard.press('u');
      await session.getByText('2 labelled, 0 discarded').waitFor();
      await cards.nth(PREDICTIONS - 3).waitFor();
      // The undone card is back and has the focus again.
      const focused = await page
        .waitForFunction(
          `document.activeElement?.closest('.card')?.getAttribute('data-id') === ${JSON.stringify(ids[2])}`,
          undefined,
          { timeout: 5_000 },
        )
        .then(
          () => true,
          () => false,
        );
      await page.locator('.review-grid img').first().waitFor();
      const shown = (await session.textContent()) ?? '';
      await shot(page, shots, 'review');
      const queue = await call<CapturePage>('GET', `/datasets/${DATASET}/captures?order=uncertain`);
      const copies = await Promise.all(CLASSES.map((c) => listKeys(`datasets/${DATASET}/${c}/capture-`)));

      expect(ids).toHaveLength(PREDICTIONS);
      expect(margins).toEqual([...margins].sort((a, b) => a - b));
      expect(queue.pending).toBe(PREDICTIONS - 2);
      expect(queue.reviewed).toBe(2);
      expect(queue.captures.map((c) => c.id)).toEqual(ids.slice(2));
      expect(copies[0]).toEqual([`datasets/${DATASET}/${CLASSES[0]}/capture-${ids[0]}.png`]);
      expect(copies[1]).toEqual([`datasets/${DATASET}/${CLASSES[1]}/capture-${ids[1]}.png`]);
      expect(copies[2]).toEqual([]);
      expect(focused).toBe(true);
      expect(shown).toContain(`${PREDICTIONS - 2} to review, 2 reviewed`);
    }, 60_000);

    it('charts every prediction served for the model version on the Training tab', async () => {
      await page.goto(url(`/#/d/${DATASET}/training`));
      const chart = page.locator('.monitor').first();
      await chart.waitFor();
      const heading = (await chart.locator('h3').textContent()) ?? '';

      expect(heading).toMatch(new RegExp(`: ${PREDICTIONS} prediction\\(s\\), `));
      expect(heading).toMatch(/PSI \d\.\d{3} \(alert above 0\.25\)/);
      await expect(chart.locator('svg rect.bar-day').count()).resolves.toBeGreaterThan(0);
    }, 30_000);

    it('flags drift when the predicted labels move away from the held-out set', async () => {
      const served = await call<MonitoringResponse>('GET', `/datasets/${DATASET}/monitoring?days=30`);
      const version = served.versions[0]?.version ?? '';
      const today = Date.parse(`${served.days[served.days.length - 1]}T12:00:00Z`);
      // Twelve past days through the API's own record writer: a balanced mix, then mostly red.
      let seeded = 0;
      for (let ago = 12; ago >= 1; ago--) {
        const mix =
          ago > 6 ? ['blue', 'green', 'red'] : ['red', 'red', 'red', 'red', 'red', 'red', 'green', 'blue'];
        for (const [i, label] of mix.entries()) {
          const at = new Date(today - ago * 86_400_000 + i * 60_000);
          const confidence = ago > 6 ? 0.55 + 0.1 * i : 0.35 + 0.02 * i;
          if (s3 && stack)
            await recordPrediction(s3, stack.bucket, DATASET, {
              version,
              label,
              confidence,
              abstained: false,
              at,
            });
          seeded += 1;
        }
      }
      // The previous test left the page on this tab: a reload reads the monitoring again.
      await page.reload();
      const chart = page.locator('.monitor').first();
      await chart.locator('[data-testid="drift"]').waitFor();
      const heading = (await chart.locator('h3').textContent()) ?? '';
      const bars = await chart.locator('svg rect.bar-day').count();

      expect(heading).toMatch(new RegExp(`: ${PREDICTIONS + seeded} prediction\\(s\\), `));
      expect(heading).toMatch(/⚠ drift: PSI \d\.\d{3} \(alert above 0\.25\)/);
      // 13 days with predictions + the 10 confidence bins.
      expect(bars).toBe(13 + 10);
      await chart.scrollIntoViewIfNeeded();
      await shot(page, shots, 'monitoring');
    }, 30_000);

    it('labels a suggestion from the unlabelled pool with the keyboard, moving it into the dataset', async () => {
      const pool = await makeLabelledImages({ labels: CLASSES, perClass: 1, seed: 44 });
      for (const [i, img] of pool.entries())
        await s3?.send(
          new PutObjectCommand({
            Bucket: stack?.bucket,
            Key: `unlabelled/${DATASET}/pool-${i}.png`,
            Body: img.data,
            ContentType: 'image/png',
          }),
        );
      await pollUntil(
        'the pool scored',
        async () => {
          const s = await call<SuggestionsResponse>('GET', `/datasets/${DATASET}/suggestions?n=10`);
          return s.pool.scored === pool.length ? s : undefined;
        },
        60_000,
      );
      await page.goto(url(`/#/d/${DATASET}/review`));
      await page.getByRole('button', { name: 'Suggested from the unlabelled pool' }).click();
      const faces = page.locator('.review-grid .card-face');
      await faces.nth(pool.length - 1).waitFor();
      const keys = await page
        .locator('.review-grid .card')
        .evaluateAll((all) => all.map((c) => c.getAttribute('data-id') ?? ''));

      await faces.first().focus();
      await page.keyboard.press('3');
      await page.getByTestId('review-session').getByText('1 labelled, 0 discarded').waitFor();
      await page.keyboard.press('x');
      await page
        .getByRole('alert')
        .getByText('a suggestion stays in the pool until it is labelled')
        .waitFor();
      const left = await listKeys(`unlabelled/${DATASET}/`);
      const moved = await listKeys(`datasets/${DATASET}/${CLASSES[2]}/pool-`);

      expect(keys).toHaveLength(pool.length);
      expect(left).toEqual(keys.slice(1).sort());
      expect(moved).toEqual([`datasets/${DATASET}/${CLASSES[2]}/${keys[0]?.split('/').pop()}`]);
      await expect(page.locator('.review-grid .card').count()).resolves.toBe(pool.length - 1);
    }, 90_000);
  },
);

function shot(page: Page, dir: string, name: string): Promise<Buffer> {
  return page.screenshot({ path: join(dir, `${name}.png`) });
}
