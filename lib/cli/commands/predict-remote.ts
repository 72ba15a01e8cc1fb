import { readFile } from 'node:fs/promises';
import { IMAGE_EXTENSIONS } from '../../storage/keys.ts';
import { parseThresholdParam } from '../../training/thresholds.ts';
import { imageContentType } from '../../upload/content-type.ts';
import { mapWithConcurrency } from '../../util/concurrency.ts';
import { formatPercent } from '../../util/format.ts';
import { numberFlag, parseCommandArgs, UsageError } from '../args.ts';
import { ApiError, type Prediction, UnreachableError, unreachableReason } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  formatTable,
  processContext,
  RANDOM_WEIGHTS_WARNING,
  reportRemoteError,
} from '../remote.ts';
import { resolveTarget, TARGET_HELP, TARGET_OPTIONS, targetFlags, timeoutMsFlag } from '../target.ts';
import { BATCH_PREDICT_HELP, runBatchPredict, wantsBatch } from './predict-batch.ts';

/** Help of `tlearn predict D IMAGE…`; predict.ts shows it next to the offline form. */
export const REMOTE_PREDICT_HELP = `tlearn predict D IMAGE… [--top K] [--json] [--concurrency 4]

Predicts images with the current model of dataset D on a stack (POST /datasets/D/predictions,
each image sent as raw bytes with its content type).

options:
  --top K              how many scores to return per image (default: the server's)
  --json               print a JSON array: [{ file, prediction } | { file, error: { code, message } }]
  --concurrency N      requests in flight (default 4, 1-32)
  --threshold T        auto (the model's per-class thresholds) or 0..1: below it the image
                       is shown as (abstained), its scores still listed

${TARGET_HELP}

examples:
  tlearn predict pets cat.jpg
  tlearn predict pets photos/*.jpg --top 3
  tlearn predict pets cat.jpg --json | jq '.[0].prediction.label'

exit codes: 0 all predicted, 1 none predicted or no model yet, 2 usage, 3 some images failed
(listed), 4 the stack could not be reached

batch form: ${BATCH_PREDICT_HELP}`;

type Result =
  | { file: string; prediction: Prediction }
  | { file: string; error: { code: string; message: string }; cause: unknown };

/** Lines for one prediction: `file  label  97.3%  (cat 97.3%, dog 2.7%)`. */
function predictionRows(results: readonly Result[]): string[][] {
  return results.map((r) =>
    'prediction' in r
      ? [
          r.file,
          r.prediction.label ?? '(abstained)',
          formatPercent(r.prediction.confidence),
          r.prediction.scores.map((s) => `${s.label} ${formatPercent(s.probability)}`).join(', '),
        ]
      : [r.file, 'error', '', `${r.error.code}: ${r.error.message}`],
  );
}

/**
 * `tlearn predict D IMAGE…` against a stack. The offline `predict` command calls this when
 * `--model` is absent, with its argv (without the command name). Returns the exit code.
 */
export async function runRemotePredict(argv: string[], ctx: CliContext = processContext()): Promise<number> {
  if (wantsBatch(argv)) return runBatchPredict(argv, ctx);
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    top: { type: 'string', short: 'k' },
    json: { type: 'boolean' },
    concurrency: { type: 'string' },
    threshold: { type: 'string' },
  });
  const [rawDataset, ...files] = positionals;
  const dataset = datasetArg(rawDataset, 'a dataset name (or --model DIR for an offline prediction)');
  if (files.length === 0) throw new UsageError('missing IMAGE: one or more image files to predict');
  const top =
    values.top === undefined
      ? undefined
      : numberFlag('top', values.top, 5, { min: 1, max: 1000, integer: true });
  const concurrency = numberFlag('concurrency', values.concurrency, 4, { min: 1, max: 32, integer: true });
  const threshold = values.threshold;
  if (threshold !== undefined) {
    try {
      parseThresholdParam(threshold);
    } catch {
      throw new UsageError(`--threshold must be 'auto' or a number from 0 to 1 (got '${threshold}')`);
    }
  }
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMsFlag(values), ctx);

  // A 409 (no model yet) or an unreachable stack ends the run: every other image would fail the same way.
  let fatal: unknown;
  const results = await mapWithConcurrency(files, concurrency, async (file): Promise<Result | undefined> => {
    if (fatal !== undefined) return undefined;
    const contentType = imageContentType(file);
    if (contentType === undefined)
      return {
        file,
        error: {
          code: 'NotAnImage',
          message: `not an image by its extension (${IMAGE_EXTENSIONS.join(' ')})`,
        },
        cause: undefined,
      };
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      return { file, error: { code: 'ReadError', message: (err as Error).message }, cause: err };
    }
    try {
      return { file, prediction: await api.predict(dataset, bytes, contentType, top, threshold) };
    } catch (err) {
      if (
        (err instanceof ApiError && err.status === 409) ||
        unreachableReason(err) !== undefined ||
        err instanceof UnreachableError
      ) {
        fatal ??= err;
        return undefined;
      }
      if (err instanceof ApiError)
        return { file, error: { code: err.code, message: err.message }, cause: err };
      throw err;
    }
  });
  if (fatal !== undefined) return reportRemoteError('predict', target, 'api', fatal, ctx);

  const done = results.filter((r): r is Result => r !== undefined);
  if (values.json) {
    ctx.out(
      JSON.stringify(
        done.map((r) =>
          'prediction' in r ? { file: r.file, prediction: r.prediction } : { file: r.file, error: r.error },
        ),
        null,
        2,
      ),
    );
  } else {
    for (const line of formatTable(['image', 'label', 'confidence', 'scores'], predictionRows(done), [
      false,
      false,
      true,
      false,
    ]))
      ctx.out(line);
  }
  const models = new Map<string, Prediction['model']>();
  for (const r of done) if ('prediction' in r) models.set(r.prediction.model.version, r.prediction.model);
  // A promotion can land between two requests: then the images were not all seen by one model.
  if (models.size > 0) ctx.err(`(model ${[...models.keys()].join(', ')} of '${dataset}')`);
  if ([...models.values()].some((m) => m.randomWeights)) ctx.err(RANDOM_WEIGHTS_WARNING);
  const failed = done.filter((r) => 'error' in r).length;
  if (failed === 0) return EXIT.OK;
  return failed === done.length ? EXIT.FAILURE : EXIT.PARTIAL;
}
