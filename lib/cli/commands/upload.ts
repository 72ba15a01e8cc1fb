import { stat } from 'node:fs/promises';
import { IMAGE_EXTENSIONS } from '../../storage/keys.ts';
import { type ScanResult, SKIP_REASON_TEXT, type SkippedFile, scanUploadSources } from '../../upload/scan.ts';
import { listExisting, type UploadOutcome, uploadFiles } from '../../upload/upload.ts';
import { numberFlag, parseCommandArgs, UsageError } from '../args.ts';
import { unreachableReason } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import { createProgress } from '../progress.ts';
import { type CliContext, datasetArg, processContext, reportRemoteError } from '../remote.ts';
import {
  createTargetS3Client,
  describeS3Target,
  requireS3,
  resolveTarget,
  TARGET_HELP,
  TARGET_OPTIONS,
  targetFlags,
  timeoutMsFlag,
} from '../target.ts';

const HELP = `tlearn upload DIR… --dataset D [--concurrency 8] [--dry-run] [--max-size MB]

Uploads labelled images to a dataset of a stack (s3://BUCKET/datasets/D/LABEL/FILE). The stack
extracts features as they arrive and trains when they are ready.

Labels come from the first folder under DIR (DIR/cat/1.jpg → cat; deeper folders stay in the
file name), or, for files directly in DIR, from the name up to the first '.' (Kaggle style:
cat.12.jpg → cat). Files whose bytes are in the bucket already (same MD5) are not sent again, so
re-running after an interruption or after adding images is cheap.

Skipped, with the reason in the summary: hidden files and folders (.DS_Store, .git), files
without an image extension (${IMAGE_EXTENSIONS.join(' ')}), files without a valid label,
empty files, and files over --max-size.

options:
  --dataset D          dataset name (lower-case letters, digits, '-'; required)
  --concurrency N      uploads in flight (default 8, 1-64)
  --dry-run            list what would be uploaded; write nothing
  --max-size MB        skip larger files (default 50; at most 5000, S3's single-upload limit)

${TARGET_HELP}

examples:
  tlearn upload ./pets --dataset pets                       # ./pets/cat/*.jpg, ./pets/dog/*.jpg
  tlearn upload ./kaggle/train --dataset cats-vs-dogs       # cat.0.jpg, dog.0.jpg, …
  tlearn upload ./pets --dataset pets --dry-run
  TLEARN_BUCKET=my-bucket tlearn upload ./pets --dataset pets --region eu-west-1

exit codes: 0 all uploaded or unchanged (skipped files are only reported), 1 nothing could be
uploaded, 2 usage, 3 some uploads failed (listed), 4 the bucket could not be reached`;

/** Folder names that are usually a split, not a label: hint when they become labels. */
const SPLIT_NAMES = new Set(['train', 'test', 'val', 'valid', 'validation', 'training', 'testing']);

function skippedSummary(skipped: readonly SkippedFile[]): string[] {
  const groups = new Map<string, SkippedFile[]>();
  for (const s of skipped) groups.set(s.reason, [...(groups.get(s.reason) ?? []), s]);
  const lines: string[] = [];
  for (const [reason, items] of groups) {
    const text = SKIP_REASON_TEXT[reason as SkippedFile['reason']];
    lines.push(`  ${text}: ${items.length}`);
    for (const s of items.slice(0, 5)) lines.push(`    ${s.display}: ${s.detail}`);
    if (items.length > 5) lines.push(`    … and ${items.length - 5} more`);
  }
  return lines;
}

/** `tlearn upload` with an explicit context (tests); the command below uses the process's. */
export async function runUpload(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    dataset: { type: 'string', short: 'd' },
    concurrency: { type: 'string' },
    'dry-run': { type: 'boolean' },
    'max-size': { type: 'string' },
  });
  if (positionals.length === 0) throw new UsageError('missing DIR: the folder(s) of images to upload');
  const dataset = datasetArg(values.dataset, '--dataset D');
  const concurrency = numberFlag('concurrency', values.concurrency, 8, { min: 1, max: 64, integer: true });
  const maxBytes = Math.round(numberFlag('max-size', values['max-size'], 50, { min: 1e-6, max: 5000 }) * 1e6);
  const dryRun = values['dry-run'] === true;
  const timeoutMs = timeoutMsFlag(values);
  for (const p of positionals) {
    const st = await stat(p).catch(() => undefined);
    if (!st) throw new UsageError(`'${p}' does not exist`);
  }
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const s3Target = requireS3(target);
  const where = describeS3Target(target);

  const scan: ScanResult = await scanUploadSources(positionals, dataset, { maxBytes });
  const labels = new Map<string, number>();
  for (const f of scan.files) labels.set(f.label, (labels.get(f.label) ?? 0) + 1);

  if (scan.files.length === 0) {
    ctx.err(`tlearn upload: nothing to upload from ${positionals.join(', ')}`);
    if (scan.skipped.length > 0)
      ctx.err([`skipped ${scan.skipped.length}:`, ...skippedSummary(scan.skipped)].join('\n'));
    return EXIT.FAILURE;
  }

  const s3 = createTargetS3Client(s3Target, timeoutMs);
  const outcomes: UploadOutcome[] = [];
  try {
    ctx.err(
      `${dryRun ? 'checking' : 'uploading'} ${scan.files.length} files to dataset '${dataset}' in ${where}`,
    );
    let existing: Awaited<ReturnType<typeof listExisting>>;
    try {
      existing = await listExisting(s3, s3Target.bucket, dataset);
    } catch (err) {
      return reportRemoteError('upload', target, 's3', err, ctx);
    }
    const progress = createProgress(dryRun ? 'compare' : 'upload', scan.files.length, ctx.progress);
    await uploadFiles(s3, s3Target.bucket, scan.files, existing, {
      concurrency,
      dryRun,
      onOutcome: (o) => {
        outcomes.push(o);
        progress.tick(1);
      },
    });
    progress.done();
  } finally {
    s3.destroy();
  }

  const by = (s: UploadOutcome['status']) => outcomes.filter((o) => o.status === s);
  const uploaded = by('uploaded');
  const would = by('would-upload');
  const unchanged = by('unchanged');
  const failed = outcomes.filter(
    (o): o is Extract<UploadOutcome, { status: 'failed' }> => o.status === 'failed',
  );

  const counts = dryRun
    ? `would upload ${would.length}, unchanged ${unchanged.length}`
    : `uploaded ${uploaded.length}, unchanged ${unchanged.length}`;
  ctx.out(
    `${dryRun ? 'dry run: ' : ''}${counts}, skipped ${scan.skipped.length}, failed ${failed.length} ` +
      `(dataset '${dataset}', s3://${s3Target.bucket}/datasets/${dataset}/)`,
  );
  const labelList = [...labels].sort(([a], [b]) => (a < b ? -1 : 1)).map(([l, n]) => `${l} ${n}`);
  ctx.out(`labels (${labels.size}): ${labelList.slice(0, 20).join(', ')}${labels.size > 20 ? ', …' : ''}`);
  const splits = [...labels.keys()].filter((l) => SPLIT_NAMES.has(l.toLowerCase()));
  if (splits.length > 0)
    ctx.err(
      `note: label(s) ${splits.map((s) => `'${s}'`).join(', ')} look like split folders; if the labels are one level deeper, upload DIR/${splits[0]} instead`,
    );
  if (labels.size === 1) ctx.err('note: training needs at least 2 labels with 2 images each');
  if (scan.skipped.length > 0)
    ctx.out([`skipped ${scan.skipped.length}:`, ...skippedSummary(scan.skipped)].join('\n'));
  if (failed.length > 0) {
    ctx.err(`failed ${failed.length}:`);
    for (const f of failed.slice(0, 20)) ctx.err(`  ${f.file.display}: ${f.message}`);
    if (failed.length > 20) ctx.err(`  … and ${failed.length - 20} more`);
  }

  if (failed.length === 0) {
    if (!dryRun && uploaded.length > 0)
      ctx.err(`features are extracted as images arrive; follow with: tlearn status ${dataset}`);
    return EXIT.OK;
  }
  if (uploaded.length + unchanged.length + would.length > 0) return EXIT.PARTIAL;
  // Nothing succeeded: if every failure was the network, say where we could not reach.
  const firstFailure = failed[0];
  if (firstFailure !== undefined && failed.every((f) => unreachableReason(f.error) !== undefined))
    return reportRemoteError('upload', target, 's3', firstFailure.error, ctx);
  return EXIT.FAILURE;
}

export const command: Command = {
  summary: 'upload a folder of labelled images to a dataset',
  help: HELP,
  run: (argv) => runUpload(argv, processContext()),
};
