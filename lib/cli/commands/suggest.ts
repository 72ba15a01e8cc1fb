import type { ResponseOf } from '../../api/client.ts';
import { formatPercent } from '../../util/format.ts';
import { parseCommandArgs, UsageError } from '../args.ts';
import type { Command } from '../main.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  formatTable,
  processContext,
  showFromApi,
} from '../remote.ts';
import { resolveTarget, TARGET_HELP, TARGET_OPTIONS, targetFlags, timeoutMsFlag } from '../target.ts';

const HELP = `tlearn suggest D [--n N] [--json]

Which images of dataset D's unlabelled pool to label next (GET /datasets/D/suggestions): the ones
the promoted model is least sure of (smallest margin between its two top classes) and least alike,
so a few labels teach it the most. The pool is any image under unlabelled/D/ in the bucket (upload
with 'aws s3 cp' or 'aws s3 sync'); its features are extracted like training images but never
trained on. Label a suggestion in the console's Review tab or with
POST /datasets/D/suggestions/label {"key": "unlabelled/D/…", "label": "cat"}.

options:
  --n N                how many (default 50, at most 200)
  --json               print the API's answer as JSON

${TARGET_HELP}

examples:
  tlearn suggest pets --n 20
  tlearn suggest pets --json | jq -r '.suggestions[].key'

exit codes: 0 ok, 1 the API said no (e.g. no model yet), 2 usage, 4 the stack could not be reached`;

type Suggestions = ResponseOf<'GET /datasets/{d}/suggestions'>;

/** The lines `tlearn suggest` prints. */
export function formatSuggestions(s: Suggestions): string[] {
  const head = `${s.suggestions.length} suggestion(s) from ${s.pool.images} pool image(s) (${s.pool.scored} scored by model ${s.model.version}${s.pool.withFeatures < s.pool.images ? `; ${s.pool.images - s.pool.withFeatures} still without features` : ''})`;
  if (s.suggestions.length === 0)
    return [head, `(put images under unlabelled/${s.dataset}/ to get suggestions)`];
  const rows = s.suggestions.map((x, i) => [
    String(i + 1),
    x.key,
    x.label,
    formatPercent(x.confidence),
    x.margin.toFixed(3),
  ]);
  return [
    head,
    ...formatTable(['#', 'image', 'model says', 'confidence', 'margin'], rows, [
      true,
      false,
      false,
      true,
      true,
    ]),
  ];
}

/** `tlearn suggest` with an explicit context (tests). */
export async function runSuggest(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    json: { type: 'boolean' },
    n: { type: 'string' },
  });
  const dataset = datasetArg(positionals[0]);
  const n = values.n === undefined ? 50 : Number(values.n);
  if (!Number.isInteger(n) || n < 1 || n > 200)
    throw new UsageError('--n must be a whole number from 1 to 200');
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMsFlag(values), ctx);
  return showFromApi(
    'suggest',
    target,
    async () => {
      const body = await api.call('GET /datasets/{d}/suggestions', { params: { d: dataset }, query: { n } });
      return { parsed: body, raw: body };
    },
    formatSuggestions,
    values.json === true,
    ctx,
  );
}

export const command: Command = {
  summary: 'which unlabelled images to label next (uncertain and varied)',
  help: HELP,
  run: (argv) => runSuggest(argv, processContext()),
};
