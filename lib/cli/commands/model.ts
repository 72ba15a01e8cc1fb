import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { ConflictError, NotFoundError, TlearnError } from '../../errors.ts';
import { CurrentPointer, PointerChangedError, writeCurrentPointer } from '../../serving/current-pointer.ts';
import { currentModelKey, modelFileKey } from '../../storage/keys.ts';
import { getObject, headObject } from '../../storage/s3.ts';
import { HeldOutPredictionSchema, REPORT_LIMITS } from '../../training/report-summary.ts';
import { formatPercent } from '../../util/format.ts';
import { parseCommandArgs } from '../args.ts';
import type { ModelInfo } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  formatTable,
  processContext,
  RANDOM_WEIGHTS_WARNING,
  reportRemoteError,
  showFromApi,
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
tlearn model D --predictions [--true LABEL] [--predicted LABEL] [--json]
tlearn model D --rollback

Shows a dataset's current model (GET /datasets/D/model): version, when it was trained and
promoted, classes, spec (with a warning when the base weights were random), accuracy on the
held-out images, the confusion matrix and precision / recall / F1 per label.

--predictions lists the held-out images of the evaluation (GET /datasets/D/model/predictions,
page by page): key, true label, predicted label and its probability; --true / --predicted keep
one row, column or cell of the confusion matrix. --json prints one JSON object per line.

--rollback makes the previous model current again: it rewrites models/D/current.json in the
stack's bucket (directly in S3, so it needs S3 write access: AWS credentials for an AWS stack)
to point at the version the current one replaced. Rolling back twice returns to where you were.

options:
  --json               print the API's answer (or, with --rollback, the new pointer) as JSON
  --predictions        list the held-out predictions (all pages)
  --true LABEL         with --predictions: only images of this true label
  --predicted LABEL    with --predictions: only images predicted as this label
  --rollback           serve the previous model version again

${TARGET_HELP}

examples:
  tlearn model pets
  tlearn model pets --json | jq .report.accuracy
  tlearn model pets --predictions --true cat --predicted dog
  tlearn model pets --rollback

exit codes: 0 ok, 1 no model / nothing to roll back to / the API said no, 2 usage,
4 the stack could not be reached`;

/** `models/{d}/current.json`: the pipeline's own schema (lib/serving/current-pointer.ts). */
export const CurrentPointerSchema = CurrentPointer;
export type { CurrentPointer };

/** What a rollback did. */
export interface RollbackResult {
  from: string;
  to: string;
  pointer: CurrentPointer;
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
  if (previous === null)
    throw new ConflictError(
      `dataset '${dataset}' has no previous model to roll back to: ${current.version} is the only one promoted`,
    );
  const previousModel = modelFileKey(dataset, previous, 'model.json');
  if ((await headObject(s3, bucket, previousModel)) === undefined)
    throw new NotFoundError(
      `cannot roll back '${dataset}' to ${previous}: s3://${bucket}/${previousModel} does not exist (deleted?)`,
    );
  let pointer: CurrentPointer;
  try {
    pointer = await writeCurrentPointer(s3, bucket, dataset, {
      version: previous,
      now,
      read: { pointer: current, etag: obj.etag },
    });
  } catch (err) {
    if (err instanceof PointerChangedError)
      throw new ConflictError(
        `models/${dataset}/current.json changed while rolling back (a new model was promoted?); run again`,
        { cause: err },
      );
    throw err;
  }
  return { from: current.version, to: previous, pointer };
}

/** Lines describing a model (GET /datasets/{d}/model), for humans. */
export function formatModel(info: ModelInfo): string[] {
  const { model: m, report } = info;
  const lines = [
    `dataset   ${info.dataset}`,
    `model     ${m.version}`,
    `trained   ${m.trainedAt}`,
    `promoted  ${m.promotedAt}`,
  ];
  if (m.previous) lines.push(`previous  ${m.previous} (tlearn model ${info.dataset} --rollback)`);
  lines.push(`classes   ${m.classes.join(', ')}`, `spec      ${m.spec}`);
  if (m.randomWeights) lines.push(`          ${RANDOM_WEIGHTS_WARNING}`);
  // The report has the details; model.json's metrics summary stands in when it is missing or older.
  const accuracy = report ? report.accuracy : m.metrics.accuracy;
  const logLoss = report ? report.logLoss : m.metrics.logLoss;
  const nTrain = report ? report.counts.train : m.metrics.nTrain;
  const nTest = report ? report.counts.test : m.metrics.nTest;
  if (accuracy !== null)
    lines.push(
      `accuracy  ${formatPercent(accuracy)} on ${nTest} held-out images${logLoss !== null ? `   log loss ${logLoss.toFixed(4)}` : ''}`,
    );
  else lines.push(`accuracy  not measured (trained on all ${nTrain} images, no held-out part)`);
  lines.push(`images    ${nTrain} train, ${nTest} test`);
  if (info.reportIssue) lines.push(`report    not shown: ${info.reportIssue}; see --json`);
  if (report === null) return lines;
  if (report.note) lines.push(`note      ${report.note}`);
  if (report.confusionMatrix) {
    const labels = report.classes;
    lines.push('', 'confusion matrix (rows: true label, columns: predicted)');
    lines.push(
      ...formatTable(
        ['', ...labels],
        report.confusionMatrix.map((row, i) => [labels[i] ?? String(i), ...row.map(String)]),
        [false, ...labels.map(() => true)],
      ),
    );
  }
  if (report.perClass.length > 0) {
    type Scores = { precision: number; recall: number; f1: number; support: number };
    const row = (label: string, r: Scores) => [
      label,
      r.precision.toFixed(3),
      r.recall.toFixed(3),
      r.f1.toFixed(3),
      String(r.support),
    ];
    const rows = report.perClass.map((r) => row(r.label, r));
    if (report.macroAvg) rows.push(row('macro avg', report.macroAvg));
    if (report.weightedAvg) rows.push(row('weighted avg', report.weightedAvg));
    lines.push('');
    lines.push(
      ...formatTable(['label', 'precision', 'recall', 'f1', 'support'], rows, [
        false,
        true,
        true,
        true,
        true,
      ]),
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

/** A page of GET /datasets/{d}/model/predictions as the CLI reads it. */
const PredictionsPageSchema = z.object({
  version: z.string(),
  classes: z.array(z.string()),
  items: z.array(HeldOutPredictionSchema),
  total: z.number().int().nonnegative(),
  nextToken: z.string().nullable(),
});

/** Prints every held-out prediction (of one cell with --true/--predicted), following `nextToken`. */
async function runPredictions(
  dataset: string,
  values: Record<string, unknown>,
  ctx: CliContext,
): Promise<number> {
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMsFlag(values), ctx);
  const filter: Record<string, string> = {};
  if (typeof values.true === 'string') filter.true = values.true;
  if (typeof values.predicted === 'string') filter.predicted = values.predicted;
  const path = `/datasets/${encodeURIComponent(dataset)}/model/predictions`;
  try {
    let token: string | null = null;
    let shown = 0;
    let version = '';
    do {
      const query: Record<string, string> = {
        ...filter,
        limit: String(REPORT_LIMITS.predictionsPerPage.max),
      };
      if (token !== null) query.token = token;
      const { body } = await api.request('GET', path, { query });
      const page = PredictionsPageSchema.parse(body);
      version = page.version;
      if (shown === 0 && !values.json) ctx.out(['key', 'true', 'predicted', 'probability'].join('\t'));
      for (const p of page.items) {
        if (values.json) ctx.out(JSON.stringify(p));
        else {
          const prob = p.probabilities[page.classes.indexOf(p.predicted)] ?? 0;
          ctx.out([p.key, p.true, p.predicted, prob.toFixed(4)].join('\t'));
        }
      }
      shown += page.items.length;
      token = page.nextToken;
    } while (token !== null);
    ctx.err(
      `(${shown} held-out prediction${shown === 1 ? '' : 's'} of model ${version}; ${describeTarget(target)})`,
    );
    return EXIT.OK;
  } catch (err) {
    return reportRemoteError('model', target, 'api', err, ctx);
  }
}

/** `tlearn model` with an explicit context (tests). */
export async function runModel(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    json: { type: 'boolean' },
    rollback: { type: 'boolean' },
    predictions: { type: 'boolean' },
    true: { type: 'string' },
    predicted: { type: 'string' },
  });
  const dataset = datasetArg(positionals[0]);
  if (values.rollback) return runRollback(dataset, values, ctx);
  if (values.predictions) return runPredictions(dataset, values, ctx);
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMsFlag(values), ctx);
  return showFromApi('model', target, () => api.getModel(dataset), formatModel, values.json === true, ctx);
}

export const command: Command = {
  summary: "show a dataset's current model, or --rollback to the previous one",
  help: HELP,
  run: (argv) => runModel(argv, processContext()),
};
