/**
 * The local stack's first-run demo: when the bucket holds no dataset, upload a small generated
 * dataset through the S3 API (so the normal path runs: notification → extractor → features →
 * start-training → state machine → promoted model), follow it to a promoted model, and describe
 * the result: accuracy, confusion matrix, per-class scores and a ready-to-paste `curl`.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { describeError, TlearnError } from '../errors.ts';
import { isRandomWeights } from '../model/spec.ts';
import { checkReadiness } from '../pipeline/readiness.ts';
import { CurrentPointer } from '../serving/current-pointer.ts';
import { currentModelKey, imageKey, modelFileKey } from '../storage/keys.ts';
import { getJsonIfExists, getObject, listFolders, putObject } from '../storage/s3.ts';
import { formatClassificationReport, formatConfusionMatrix } from '../training/metrics.ts';
import { parseReportDocument, type ReportDocument } from '../training/model-document.ts';
import { formatPercent } from '../util/format.ts';
import type { Log } from '../util/log.ts';
import { DEMO_LABELS, makeDemoImages } from './demo-images.ts';

/** The demo dataset's name. */
export const DEMO_DATASET = 'demo';

/** Where the demo is, for a progress display. */
export type DemoProgress =
  | { phase: 'uploading'; done: number; total: number }
  | { phase: 'features'; done: number; total: number; failed: number }
  | { phase: 'training' }
  | { phase: 'promoted'; version: string };

/** What the demo ended with. */
export interface DemoOutcome {
  dataset: string;
  version: string;
  report: ReportDocument;
  /** A demo image that was not uploaded (held out), for the curl example. */
  sampleFile: string;
  /** Whether this run uploaded the dataset (false: it was there from an earlier run). */
  uploaded: boolean;
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  s3: S3Client;
  bucket: string;
  /** Demo images are also written to `{dataDir}/demo/` (the held-out ones are the curl examples). */
  dataDir: string;
  /** Images per class uploaded. @default 12 */
  perClass?: number;
  /** Give up waiting for the promoted model after this long. @default 20 min */
  timeoutMs?: number;
  /** Poll interval while waiting. @default 1000 */
  pollMs?: number;
  onProgress?: (p: DemoProgress) => void;
  /**
   * Starts a manual training. Used when the demo dataset is back from an earlier run with all
   * features but no model (that run stopped before training): nothing else would start one.
   */
  startTraining?: (dataset: string) => Promise<void>;
  /** Stops the wait early (the stack is shutting down). */
  signal?: AbortSignal;
  log: Log;
}

/** The demo did not reach a promoted model. */
export class DemoError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DemoFailed', message, 500, options);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/** Whether the bucket holds any dataset (a `datasets/{d}/` folder). */
export async function hasAnyDataset(s3: S3Client, bucket: string): Promise<boolean> {
  return (await listFolders(s3, bucket, 'datasets/')).length > 0;
}

/** The held-out sample of a label, as written to `{dataDir}/demo/try/`. */
export function demoSamplePath(dataDir: string, label: string = DEMO_LABELS[0]): string {
  return join(dataDir, 'demo', 'try', `${label}.png`);
}

/**
 * Uploads the demo dataset (`perClass` images of each label) through S3 and writes every image
 * plus one held-out image per label under `{dataDir}/demo/`.
 */
export async function uploadDemoDataset(opts: DemoOptions): Promise<void> {
  const perClass = opts.perClass ?? 12;
  // One more per class than uploaded: the last of each is held out for trying a prediction.
  const images = await makeDemoImages({ perClass: perClass + 1 });
  const held = new Set(DEMO_LABELS.map((l) => `${l}-${String(perClass + 1).padStart(2, '0')}.png`));
  const uploads = images.filter((i) => !held.has(i.file));
  let done = 0;
  for (const img of images) {
    if (held.has(img.file)) {
      await mkdir(join(opts.dataDir, 'demo', 'try'), { recursive: true });
      await writeFile(demoSamplePath(opts.dataDir, img.label), img.png);
      continue;
    }
    await mkdir(join(opts.dataDir, 'demo', img.label), { recursive: true });
    await writeFile(join(opts.dataDir, 'demo', img.label, img.file), img.png);
    await putObject(opts.s3, opts.bucket, imageKey(DEMO_DATASET, img.label, img.file), img.png, {
      contentType: 'image/png',
    });
    done++;
    opts.onProgress?.({ phase: 'uploading', done, total: uploads.length });
  }
}

/** The promoted version of a dataset, or undefined. */
async function currentVersion(s3: S3Client, bucket: string, dataset: string): Promise<string | undefined> {
  return (await getJsonIfExists(s3, bucket, currentModelKey(dataset), CurrentPointer))?.version;
}

/** Reads and validates a model version's report. */
export async function readReport(
  s3: S3Client,
  bucket: string,
  dataset: string,
  version: string,
): Promise<ReportDocument> {
  const obj = await getObject(s3, bucket, modelFileKey(dataset, version, 'report.json'));
  return parseReportDocument(JSON.parse(Buffer.from(obj.body).toString('utf8')));
}

/**
 * Runs the demo: uploads the dataset when the bucket has none, then follows features and training
 * to a promoted model. Returns undefined when there is nothing to show (the bucket holds other
 * datasets, or the wait was aborted). Throws DemoError on a timeout.
 */
export async function runDemo(opts: DemoOptions): Promise<DemoOutcome | undefined> {
  const { s3, bucket, log } = opts;
  let uploaded = false;
  if (!(await hasAnyDataset(s3, bucket))) {
    await uploadDemoDataset(opts);
    uploaded = true;
  } else if ((await listFolders(s3, bucket, `datasets/${DEMO_DATASET}/`)).length === 0) {
    log.debug('the bucket holds datasets: no demo');
    return undefined;
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 20 * 60_000);
  const pollMs = opts.pollMs ?? 1000;
  let lastReady = -1;
  let training = false;
  let firstCheck = true;
  while (!opts.signal?.aborted) {
    const version = await currentVersion(s3, bucket, DEMO_DATASET);
    if (version !== undefined) {
      opts.onProgress?.({ phase: 'promoted', version });
      const report = await readReport(s3, bucket, DEMO_DATASET, version);
      const sampleFile = demoSamplePath(opts.dataDir);
      const haveSample = await stat(sampleFile).then(
        () => true,
        () => false,
      );
      if (!haveSample) {
        // A demo dataset from an earlier run whose data dir lost the sample: make it again.
        const imgs = await makeDemoImages({ perClass: 1, firstSeed: 99 });
        await mkdir(join(opts.dataDir, 'demo', 'try'), { recursive: true });
        await writeFile(sampleFile, imgs[0]?.png ?? Buffer.alloc(0));
      }
      return { dataset: DEMO_DATASET, version, report, sampleFile, uploaded };
    }
    if (Date.now() > deadline) {
      throw new DemoError(
        `the demo dataset has no promoted model after ${Math.round((opts.timeoutMs ?? 1_200_000) / 60_000)} min; ` +
          `see the log above (GET /datasets/${DEMO_DATASET} shows its state)`,
      );
    }
    try {
      const r = await checkReadiness(s3, bucket, DEMO_DATASET);
      if (r.pending > 0 || !training) {
        const done = r.ready + r.failed;
        if (done !== lastReady)
          opts.onProgress?.({ phase: 'features', done, total: r.total, failed: r.failed });
        lastReady = done;
      }
      if (r.pending === 0 && r.total > 0 && !training) {
        training = true;
        opts.onProgress?.({ phase: 'training' });
        // Nothing left to extract on the first look: no feature message will start a training.
        if (!uploaded && firstCheck && opts.startTraining) await opts.startTraining(DEMO_DATASET);
      }
      firstCheck = false;
    } catch (err) {
      log.debug('demo: readiness check failed', { error: describeError(err) });
    }
    await sleep(pollMs, opts.signal);
  }
  return undefined;
}

/**
 * The text shown when the demo model is ready: which weights, accuracy, confusion matrix,
 * per-class table, and a curl that predicts the held-out sample.
 */
export function formatDemoOutcome(outcome: DemoOutcome, opts: { apiUrl: string; apiKey?: string }): string {
  const r = outcome.report;
  const random = isRandomWeights(r.spec);
  const lines: string[] = [];
  lines.push(`demo model ${outcome.version} (dataset '${outcome.dataset}', spec ${r.spec})`);
  if (random) {
    lines.push('  RANDOM WEIGHTS: the features come from a seeded random VGG16, not ImageNet weights;');
    lines.push('  the numbers below only show that the pipeline works.');
  }
  lines.push(
    `  trained on ${r.counts.train} images, evaluated on ${r.counts.test} held out (seed ${r.split.seed}); ` +
      `accuracy ${formatPercent(r.accuracy)}${r.logLoss === null ? '' : `, log loss ${r.logLoss.toFixed(3)}`}`,
  );
  if (r.confusionMatrix) {
    lines.push('', indent(formatConfusionMatrix(r.confusionMatrix, r.classes)));
  }
  if (r.accuracy !== null && r.macroAvg && r.weightedAvg) {
    lines.push(
      indent(
        formatClassificationReport({
          perClass: r.perClass,
          accuracy: r.accuracy,
          macroAvg: r.macroAvg,
          weightedAvg: r.weightedAvg,
          ...(r.microAvg ? { microAvg: r.microAvg } : {}),
        }),
      ),
    );
  } else if (r.note) {
    lines.push(`  ${r.note}`);
  }
  const rel = relative(process.cwd(), outcome.sampleFile);
  const file = rel === '' || rel.startsWith('..') ? outcome.sampleFile : rel;
  const key = opts.apiKey ? ` -H 'x-api-key: ${opts.apiKey}'` : '';
  lines.push('try a prediction (a held-out demo image):');
  lines.push(
    `  curl -s --data-binary @${file} -H 'content-type: image/png'${key} ${opts.apiUrl}/datasets/${outcome.dataset}/predictions`,
  );
  return lines.join('\n');
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
