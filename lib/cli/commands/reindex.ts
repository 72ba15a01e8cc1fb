import { ReindexPageSchema } from '../../api/schemas.ts';
import { parseCommandArgs } from '../args.ts';
import { ApiError } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import { apiClientFor, type CliContext, datasetArg, processContext, reportRemoteError } from '../remote.ts';
import { resolveTarget, TARGET_HELP, TARGET_OPTIONS, targetFlags, timeoutMsFlag } from '../target.ts';

const HELP = `tlearn reindex D [--all] [--json]

Backfill: sends every image of dataset D that has no current feature (images that were in the
bucket before the stack was deployed, or whose extraction was lost) to the extractor again
(POST /datasets/D/reindex, page by page, with a progress line), and reports how many. The
trainings that follow run by themselves (one at a time per dataset).

options:
  --all                send every image, also those with a current feature: after new base
                       weights or another feature spec (the extractor skips what is current)
  --json               print the totals as JSON

${TARGET_HELP}

examples:
  tlearn reindex pets
  tlearn reindex pets --all

exit codes: 0 ok, 1 the API said no (e.g. no such dataset), 2 usage, 4 the stack could not be reached`;

/** `tlearn reindex` with an explicit context (tests). */
export async function runReindex(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    all: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const dataset = datasetArg(positionals[0]);
  const timeoutMs = timeoutMsFlag(values);
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMs, ctx);
  const stream = ctx.progress ?? process.stderr;
  const totals = { dataset, scanned: 0, enqueued: 0, current: 0, skipped: 0, pages: 0 };
  const line = () =>
    `reindex ${dataset}: ${totals.scanned} images looked at, ${totals.enqueued} queued for extraction, ${totals.current} current`;
  try {
    let token: string | null = null;
    do {
      const body = await api.call('POST /datasets/{d}/reindex', {
        params: { d: dataset },
        body: { ...(values.all === true ? { all: true } : {}), ...(token ? { token } : {}) },
      });
      const parsed = ReindexPageSchema.safeParse(body);
      if (!parsed.success)
        throw new ApiError(
          'UnexpectedResponse',
          'reindex answered in an unexpected shape; is the CLI as new as the stack?',
          502,
        );
      const page = parsed.data;
      totals.scanned += page.scanned;
      totals.enqueued += page.enqueued;
      totals.current += page.current;
      totals.skipped += page.skipped;
      totals.pages += 1;
      token = page.nextToken;
      if (stream.isTTY) stream.write(`\r${line()}`);
      else if (totals.pages % 10 === 1) stream.write(`${line()}\n`);
    } while (token !== null);
    if (stream.isTTY) stream.write('\n');
  } catch (err) {
    if (stream.isTTY && totals.pages > 0) stream.write('\n');
    return reportRemoteError('reindex', target, 'api', err, ctx);
  }
  if (values.json === true) ctx.out(JSON.stringify(totals));
  else {
    ctx.out(line());
    if (totals.skipped > 0) ctx.out(`${totals.skipped} keys are not usable image names (skipped)`);
    ctx.out(
      totals.enqueued > 0
        ? `trainings follow by themselves: tlearn status ${dataset}`
        : 'nothing to do: every image has a current feature',
    );
  }
  return EXIT.OK;
}

export const command: Command = {
  summary: 'send the images of a dataset without a current feature to the extractor (backfill)',
  help: HELP,
  run: (argv) => runReindex(argv, processContext()),
};
