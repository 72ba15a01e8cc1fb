/**
 * `tlearn predict D --batch DIR_OR_S3_PREFIX [--out results.csv]`: a batch prediction on a stack
 * (POST /datasets/D/batches, lib/batch/). A local folder is uploaded under
 * `batches/D/{id}/input/` first; then the batch is polled with a progress bar and, with `--out`,
 * its results.csv is downloaded.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { z } from 'zod';
import { newBatchId } from '../../batch/start.ts';
import { listImageFiles } from '../../features/local-dataset.ts';
import { batchInputPrefix } from '../../storage/keys.ts';
import { getObject, putObject } from '../../storage/s3.ts';
import { parseThresholdParam, type ThresholdChoice } from '../../training/thresholds.ts';
import { imageContentType } from '../../upload/content-type.ts';
import { mapWithConcurrency } from '../../util/concurrency.ts';
import { numberFlag, parseCommandArgs, UsageError } from '../args.ts';
import { EXIT } from '../exit-codes.ts';
import { createProgress } from '../progress.ts';
import { apiClientFor, type CliContext, datasetArg, reportRemoteError } from '../remote.ts';
import {
  createTargetS3Client,
  requireS3,
  resolveTarget,
  TARGET_HELP,
  TARGET_OPTIONS,
  targetFlags,
  timeoutMsFlag,
} from '../target.ts';

/** Help of the batch form; predict-remote.ts appends it to its own. */
export const BATCH_PREDICT_HELP = `tlearn predict D --batch DIR_OR_S3_PREFIX [--out results.csv] [--threshold auto|0..1]

Scores every image of a folder (uploaded first under batches/D/{id}/input/) or of a prefix of the
stack's bucket (datasets/D/…, or s3://BUCKET/datasets/D/…; images of no dataset under the stack's
inbox prefix, inbox/… by default) with the current model of D, on the stack's own scaling (a queue
of chunks and the batch-predict function). Shows progress while it runs.

options:
  --batch X            a local folder of images, or an S3 prefix of the bucket
  --out FILE           write results.csv there (key, label, confidence, abstained, p:CLASS…, error)
  --threshold T        auto or 0..1: rows below it are abstained (label empty)
  --interval S         seconds between status checks (default 1)

${TARGET_HELP}

examples:
  tlearn predict pets --batch ./to-score --out results.csv
  tlearn predict pets --batch s3://my-bucket/datasets/pets/cat/
  tlearn predict pets --batch inbox/2026-12-07/

exit codes: 0 every image scored, 1 the batch failed or no image was usable, 2 usage, 3 some images
failed (rows with an error), 4 the stack could not be reached`;

const StartedSchema = z.object({ id: z.string(), status: z.string() });
const CountsSchema = z.object({ total: z.number(), done: z.number(), failed: z.number() });
const StatusSchema = z.object({
  id: z.string(),
  status: z.enum(['running', 'succeeded', 'failed']),
  counts: CountsSchema,
  results: z.object({ jsonl: z.string(), csv: z.string(), summary: z.string() }),
  modelVersion: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
type BatchStatus = z.infer<typeof StatusSchema>;

/** Whether argv asks for the batch form. */
export function wantsBatch(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--batch' || a.startsWith('--batch='));
}

/** `tlearn predict D --batch …`; returns the exit code. */
export async function runBatchPredict(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    batch: { type: 'string' },
    out: { type: 'string', short: 'o' },
    threshold: { type: 'string' },
    interval: { type: 'string' },
  });
  const dataset = datasetArg(positionals[0], 'a dataset name');
  if (positionals.length > 1)
    throw new UsageError('--batch takes no IMAGE arguments: give a folder or a prefix');
  const source = values.batch;
  if (source === undefined || source === '') throw new UsageError('--batch needs a folder or an S3 prefix');
  const threshold = parseThresholdFlag(values.threshold);
  const intervalMs = numberFlag('interval', values.interval, 1, { min: 0.1, max: 60 }) * 1000;
  const timeoutMs = timeoutMsFlag(values);
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMs, ctx);
  const sleep = ctx.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  const local = await stat(source).catch(() => undefined);
  let prefix: string;
  const s3Target = local !== undefined || values.out !== undefined ? requireS3(target) : undefined;
  const s3 = s3Target ? createTargetS3Client(s3Target, timeoutMs) : undefined;
  try {
    if (local !== undefined) {
      if (!local.isDirectory())
        throw new UsageError(`--batch '${source}' is a file; give a folder of images`);
      if (s3 === undefined || s3Target === undefined) throw new UsageError('no bucket to upload to');
      const { files } = await listImageFiles([source]);
      if (files.length === 0) {
        ctx.err(`tlearn predict: no images under ${source}`);
        return EXIT.FAILURE;
      }
      const id = newBatchId();
      prefix = batchInputPrefix(dataset, id);
      const bar = createProgress('uploading', files.length, ctx.progress);
      try {
        await mapWithConcurrency(files, 8, async (file) => {
          const rel = relative(source, file).split(/[\\/]/).join('/');
          await putObject(s3, s3Target.bucket, `${prefix}${rel}`, await readFile(file), {
            contentType: imageContentType(file) ?? 'application/octet-stream',
          });
          bar.tick();
        });
      } catch (err) {
        return reportRemoteError('predict', target, 's3', err, ctx);
      }
      bar.done();
    } else {
      prefix = source.replace(/^s3:\/\/[^/]+\//, '');
    }

    let started: { id: string };
    try {
      const res = await api.request('POST', `/datasets/${encodeURIComponent(dataset)}/batches`, {
        body: JSON.stringify({ prefix, ...(threshold !== undefined ? { threshold } : {}) }),
        contentType: 'application/json',
      });
      started = StartedSchema.parse(res.body);
    } catch (err) {
      return reportRemoteError('predict', target, 'api', err, ctx);
    }
    ctx.err(`batch ${started.id} of '${dataset}' started (prefix ${prefix})`);

    let status: BatchStatus;
    let bar: ReturnType<typeof createProgress> | undefined;
    let shown = 0;
    for (;;) {
      try {
        const res = await api.request(
          'GET',
          `/datasets/${encodeURIComponent(dataset)}/batches/${started.id}`,
        );
        status = StatusSchema.parse(res.body);
      } catch (err) {
        return reportRemoteError('predict', target, 'api', err, ctx);
      }
      bar ??= createProgress('scoring', status.counts.total, ctx.progress);
      const done = status.status === 'succeeded' ? status.counts.total : status.counts.done;
      if (done > shown) {
        bar.tick(done - shown, status.counts.failed > 0 ? `(${status.counts.failed} failed)` : undefined);
        shown = done;
      }
      if (status.status !== 'running') break;
      await sleep(intervalMs);
    }
    bar.done();
    if (status.status === 'failed') {
      ctx.err(`tlearn predict: batch ${status.id} failed: ${status.error?.code}: ${status.error?.message}`);
      return EXIT.FAILURE;
    }
    const { total, failed } = status.counts;
    ctx.out(`${total - failed}/${total} images scored, ${failed} failed (model ${status.modelVersion})`);
    const bucketName = s3Target?.bucket ?? target.bucket ?? 'BUCKET';
    ctx.out(`results: s3://${bucketName}/${status.results.csv}`);
    ctx.out(`         s3://${bucketName}/${status.results.jsonl}`);
    ctx.out(`summary: s3://${bucketName}/${status.results.summary}`);
    if (values.out !== undefined && s3 !== undefined && s3Target !== undefined) {
      try {
        const csv = await getObject(s3, s3Target.bucket, status.results.csv);
        await writeFile(values.out, csv.body);
      } catch (err) {
        return reportRemoteError('predict', target, 's3', err, ctx);
      }
      ctx.out(`wrote ${values.out}`);
    }
    if (failed === 0) return EXIT.OK;
    return failed === total ? EXIT.FAILURE : EXIT.PARTIAL;
  } finally {
    s3?.destroy();
  }
}

/** `--threshold` as the batch body's field (the same rules as a prediction's `?threshold=`). */
function parseThresholdFlag(raw: string | undefined): 'auto' | number | undefined {
  let choice: ThresholdChoice;
  try {
    choice = parseThresholdParam(raw);
  } catch {
    throw new UsageError(`--threshold must be 'auto' or a number from 0 to 1 (got '${raw}')`);
  }
  return choice.kind === 'none' ? undefined : choice.kind === 'auto' ? 'auto' : choice.value;
}
