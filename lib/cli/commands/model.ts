import { PutObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { ConflictError, NotFoundError, TlearnError } from '../../errors.ts';
import { currentModelKey, modelFileKey } from '../../storage/keys.ts';
import { getObject, headObject } from '../../storage/s3.ts';
import { parseCommandArgs } from '../args.ts';
import type { ModelInfo } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  formatTable,
  percent,
  processContext,
  reportRemoteError,
} from '../remote.ts';
import {
  createTargetS3Client,
  describeS3Target,
  describeTarget,
  requireS3,
  resolveTarget,
  TARGET_HELP,
  TARGET_OPTIONS,
  targetFlags,
  timeoutMsFlag,
} from '../target.ts';

const HELP = `tlearn model D [--json]
tlearn model D --rollback

Shows a dataset's current model (GET /datasets/D/model): version, when it was trained, accuracy
on the held-out images, the confusion matrix and precision / recall / F1 per label.

--rollback makes the previous model current again: it rewrites models/D/current.json in the
stack's bucket (directly in S3, so it needs S3 write access: AWS credentials for an AWS stack)
to point at the version the current one replaced. Rolling back twice returns to where you were.

options:
  --json               print the API's answer (or, with --rollback, the new pointer) as JSON
  --rollback           serve the previous model version again

${TARGET_HELP}

examples:
  tlearn model pets
  tlearn model pets --json | jq .report.accuracy
  tlearn model pets --rollback

exit codes: 0 ok, 1 no model / nothing to roll back to / the API said no, 2 usage,
4 the stack could not be reached`;

/** `models/{d}/current.json` (DESIGN.md "S3 layout"). */
export const CurrentPointerSchema = z
  .object({
    version: z.string().min(1),
    promotedAt: z.string(),
    previous: z.string().min(1).nullable().optional(),
  })
  .passthrough();
export type CurrentPointer = z.infer<typeof CurrentPointerSchema>;

/** What a rollback did. */
export interface RollbackResult {
  from: string;
  to: string;
  pointer: { version: string; promotedAt: string; previous: string };
}

/**
 * Points `models/{d}/current.json` back at its `previous` version after checking that version's
 * model.json exists; the new pointer's `previous` is the version rolled back from. The write is
 * conditional on the pointer read (S3 If-Match), so a promote that lands in between is not
 * silently undone: that case is a ConflictError asking to run again.
 * Throws NotFoundError (no model / previous model.json missing) or ConflictError (no previous).
 *
 * @example await rollbackModel(s3, 'tlearn-local', 'pets', new Date()) // { from: 'v2', to: 'v1', … }
 */
export async function rollbackModel(
  s3: S3Client,
  bucket: string,
  dataset: string,
  now: Date,
): Promise<RollbackResult> {
  const key = currentModelKey(dataset);
  let obj: Awaited<ReturnType<typeof getObject>>;
  try {
    obj = await getObject(s3, bucket, key);
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new NotFoundError(
        `dataset '${dataset}' has no promoted model (no ${key}); nothing to roll back`,
        {
          cause: err,
        },
      );
    throw err;
  }
  let current: CurrentPointer;
  try {
    current = CurrentPointerSchema.parse(JSON.parse(Buffer.from(obj.body).toString('utf8')));
  } catch (err) {
    throw new TlearnError('CorruptObject', `s3://${bucket}/${key} is not a valid model pointer`, 500, {
      cause: err,
    });
  }
  const previous = current.previous;
  if (previous === undefined || previous === null)
    throw new ConflictError(
      `dataset '${dataset}' has no previous model to roll back to: ${current.version} is the only one promoted`,
    );
  const previousModel = modelFileKey(dataset, previous, 'model.json');
  if ((await headObject(s3, bucket, previousModel)) === undefined)
    throw new NotFoundError(
      `cannot roll back '${dataset}' to ${previous}: s3://${bucket}/${previousModel} does not exist (deleted?)`,
    );
  const pointer = { version: previous, promotedAt: now.toISOString(), previous: current.version };
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: `${JSON.stringify(pointer, null, 2)}\n`,
        ContentType: 'application/json',
        IfMatch: obj.etag,
      }),
    );
  } catch (err) {
    if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 412)
      throw new ConflictError(
        `models/${dataset}/current.json changed while rolling back (a new model was promoted?); run again`,
        { cause: err },
      );
    throw err;
  }
  return { from: current.version, to: previous, pointer };
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
const str = (...vs: unknown[]): string | undefined => vs.find((v): v is string => typeof v === 'string');
const num = (...vs: unknown[]): number | undefined => vs.find((v): v is number => typeof v === 'number');

/** One row of the per-class table. */
export interface ClassRow {
  label: string;
  precision: number | undefined;
  recall: number | undefined;
  f1: number | undefined;
  support: number | undefined;
}

/** The parts of GET /datasets/{d}/model the CLI shows. */
export interface ModelView {
  version: string | undefined;
  trainedAt: string | undefined;
  promotedAt: string | undefined;
  previous: string | undefined;
  accuracy: number | undefined;
  logLoss: number | undefined;
  labels: string[] | undefined;
  confusion: number[][] | undefined;
  perClass: ClassRow[];
}

function classRow(label: string, v: unknown): ClassRow {
  const o = obj(v) ?? {};
  return {
    label,
    precision: num(o.precision),
    recall: num(o.recall),
    f1: num(o.f1, o.f1Score, o['f1-score']),
    support: num(o.support),
  };
}

/**
 * Reads GET /datasets/{d}/model leniently: metadata at the top or under `model` / `current`,
 * evaluation under `report` (report.json: accuracy, logLoss, labels, confusionMatrix, perClass as
 * a list of rows or a map label → scores, scikit-learn's `f1-score` spelling accepted).
 */
export function modelView(body: ModelInfo): ModelView {
  const model = obj(body.model) ?? {};
  const current = obj(body.current) ?? {};
  const report = obj(body.report) ?? body;
  const metrics = obj(model.metrics) ?? obj(body.metrics) ?? {};
  const cm = report.confusionMatrix ?? report.confusion_matrix;
  const cmObj = obj(cm);
  const labelsRaw = report.labels ?? cmObj?.labels ?? model.classes ?? body.classes;
  const matrixRaw = cmObj ? cmObj.matrix : cm;
  const labels =
    Array.isArray(labelsRaw) && labelsRaw.every((l) => typeof l === 'string')
      ? (labelsRaw as string[])
      : undefined;
  const confusion =
    Array.isArray(matrixRaw) &&
    matrixRaw.every((r) => Array.isArray(r) && r.every((x) => typeof x === 'number'))
      ? (matrixRaw as number[][])
      : undefined;
  const pcRaw = report.perClass ?? report.classificationReport ?? report.classification_report;
  let perClass: ClassRow[] = [];
  if (Array.isArray(pcRaw)) perClass = pcRaw.map((r) => classRow(str(obj(r)?.label) ?? '?', r));
  else if (obj(pcRaw))
    perClass = Object.entries(obj(pcRaw) ?? {})
      // scikit-learn's report mixes averages in with the classes.
      .filter(([k]) => !['accuracy', 'macro avg', 'weighted avg', 'micro avg'].includes(k))
      .map(([k, v]) => classRow(k, v));
  return {
    version: str(body.version, model.version, current.version),
    trainedAt: str(body.trainedAt, model.trainedAt, report.trainedAt),
    promotedAt: str(body.promotedAt, current.promotedAt),
    previous: str(body.previous, current.previous),
    accuracy: num(report.accuracy, metrics.accuracy, body.accuracy),
    logLoss: num(report.logLoss, metrics.logLoss),
    labels,
    confusion,
    perClass,
  };
}

/** Lines describing a model, for humans. */
export function formatModel(dataset: string, v: ModelView): string[] {
  const lines = [`dataset   ${dataset}`, `model     ${v.version ?? '?'}`];
  if (v.trainedAt) lines.push(`trained   ${v.trainedAt}`);
  if (v.promotedAt) lines.push(`promoted  ${v.promotedAt}`);
  if (v.previous) lines.push(`previous  ${v.previous} (tlearn model ${dataset} --rollback)`);
  if (v.accuracy !== undefined)
    lines.push(
      `accuracy  ${percent(v.accuracy)}${v.logLoss !== undefined ? `   log loss ${v.logLoss.toFixed(4)}` : ''}`,
    );
  if (v.confusion) {
    const labels = v.labels ?? v.confusion.map((_, i) => String(i));
    lines.push('', 'confusion matrix (rows: true label, columns: predicted)');
    lines.push(
      ...formatTable(
        ['', ...labels],
        v.confusion.map((row, i) => [labels[i] ?? String(i), ...row.map(String)]),
        [false, ...labels.map(() => true)],
      ),
    );
  }
  if (v.perClass.length > 0) {
    const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(3));
    lines.push('');
    lines.push(
      ...formatTable(
        ['label', 'precision', 'recall', 'f1', 'support'],
        v.perClass.map((r) => [
          r.label,
          f(r.precision),
          f(r.recall),
          f(r.f1),
          r.support === undefined ? '-' : String(r.support),
        ]),
        [false, true, true, true, true],
      ),
    );
  }
  return lines;
}

async function runRollback(
  dataset: string,
  values: Record<string, unknown>,
  ctx: CliContext,
): Promise<number> {
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const s3Target = requireS3(target);
  const s3 = createTargetS3Client(s3Target, timeoutMsFlag(values));
  try {
    const r = await rollbackModel(s3, s3Target.bucket, dataset, new Date());
    if (values.json) ctx.out(JSON.stringify(r.pointer, null, 2));
    else
      ctx.out(
        `rolled back '${dataset}' from ${r.from} to ${r.to}; undo with: tlearn model ${dataset} --rollback`,
      );
    ctx.err(`(${describeS3Target(target)})`);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof ConflictError) {
      ctx.err(`tlearn model: ${err.message}`);
      return EXIT.FAILURE;
    }
    return reportRemoteError('model', target, 's3', err, ctx);
  } finally {
    s3.destroy();
  }
}

/** `tlearn model` with an explicit context (tests). */
export async function runModel(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    json: { type: 'boolean' },
    rollback: { type: 'boolean' },
  });
  const dataset = datasetArg(positionals[0]);
  if (values.rollback) return runRollback(dataset, values, ctx);
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMsFlag(values), ctx);
  try {
    const body = await api.getModel(dataset);
    if (values.json) ctx.out(JSON.stringify(body, null, 2));
    else {
      for (const line of formatModel(dataset, modelView(body))) ctx.out(line);
      ctx.err(`(${describeTarget(target)})`);
    }
    return EXIT.OK;
  } catch (err) {
    return reportRemoteError('model', target, 'api', err, ctx);
  }
}

export const command: Command = {
  summary: "show a dataset's current model, or --rollback to the previous one",
  help: HELP,
  run: (argv) => runModel(argv, processContext()),
};
