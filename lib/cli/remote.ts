import { S3ServiceException } from '@aws-sdk/client-s3';
import { isValidDatasetName } from '../storage/keys.ts';
import { UsageError } from './args.ts';
import { type ApiClient, ApiError, createApiClient, UnreachableError, unreachableReason } from './client.ts';
import { EXIT } from './exit-codes.ts';
import { describeS3Target, describeTarget, requireApiKey, type Target } from './target.ts';

/**
 * Plumbing shared by the commands that talk to a stack: where output goes, how errors become
 * messages and exit codes, small table formatting.
 */

/** What a remote command reads and writes besides its argv; tests pass their own. */
export interface CliContext {
  env: Record<string, string | undefined>;
  cwd: string;
  /** One line of result output (stdout). */
  out(line: string): void;
  /** One line of diagnostics (stderr). */
  err(line: string): void;
  /** Where progress bars draw. @default process.stderr */
  progress?: NodeJS.WriteStream;
  fetch?: typeof fetch;
  /** Clock and sleep, injected by tests of polling. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** The notice shown wherever a model of seeded random base weights appears (status, model, predict, train). */
export const RANDOM_WEIGHTS_WARNING =
  'WARNING: trained on features of seeded RANDOM base weights (no real VGG16 weights): predictions are not meaningful';

/** The real process: env, cwd, stdout, stderr. */
export function processContext(): CliContext {
  return {
    env: process.env,
    cwd: process.cwd(),
    out: (line) => console.log(line),
    err: (line) => console.error(line),
  };
}

/** The dataset positional, validated (UsageError → exit 2 with the rule spelled out). */
export function datasetArg(raw: string | undefined, what = 'a dataset name'): string {
  if (raw === undefined) throw new UsageError(`missing ${what}`);
  if (!isValidDatasetName(raw))
    throw new UsageError(
      `'${raw}' is not a valid dataset name: use 1-63 lower-case letters, digits and '-', starting with a letter or digit (e.g. 'pets', 'cats-vs-dogs')`,
    );
  return raw;
}

/** An API client for the target (throws TargetError when AWS needs a key that is missing). */
export function apiClientFor(target: Target, timeoutMs: number, ctx: CliContext): ApiClient {
  return createApiClient({
    baseUrl: target.apiUrl,
    apiKey: requireApiKey(target),
    timeoutMs,
    ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
  });
}

/**
 * Prints a remote failure and returns its exit code: nothing answered → 4, naming the target
 * and where it came from; API errors → `code: message`, 1; S3 errors → 1 naming the bucket.
 * Anything else (usage, target config, bugs) is rethrown for `main` to report.
 */
export function reportRemoteError(
  command: string,
  target: Target,
  side: 'api' | 's3',
  err: unknown,
  ctx: CliContext,
): number {
  const where = side === 'api' ? describeTarget(target) : describeS3Target(target);
  const reason = err instanceof UnreachableError ? err.message : unreachableReason(err);
  if (reason !== undefined) {
    ctx.err(`tlearn ${command}: using ${where}: ${reason}`);
    return EXIT.UNAVAILABLE;
  }
  if (err instanceof ApiError) {
    ctx.err(`tlearn ${command}: ${err.code}: ${err.message}`);
    if (err.status === 403 || err.status >= 500) ctx.err(`  (from ${where})`);
    return EXIT.FAILURE;
  }
  if (err instanceof S3ServiceException) {
    ctx.err(`tlearn ${command}: using ${where}: ${err.name}: ${err.message}`);
    return EXIT.FAILURE;
  }
  if (err instanceof Error && err.name === 'CredentialsProviderError') {
    ctx.err(
      `tlearn ${command}: using ${where}: no AWS credentials (${err.message}); configure the AWS CLI or set AWS_PROFILE`,
    );
    return EXIT.FAILURE;
  }
  throw err;
}

/**
 * The shape of `status` and `model`: one GET through the API, printed as JSON (`--json`, the body
 * as the API sent it) or as formatted lines, followed by the target on stderr.
 */
export async function showFromApi<T>(
  command: string,
  target: Target,
  get: () => Promise<{ parsed: T; raw: unknown }>,
  format: (parsed: T) => string[],
  json: boolean,
  ctx: CliContext,
): Promise<number> {
  try {
    const { parsed, raw } = await get();
    if (json) ctx.out(JSON.stringify(raw, null, 2));
    else {
      for (const line of format(parsed)) ctx.out(line);
      ctx.err(`(${describeTarget(target)})`);
    }
    return EXIT.OK;
  } catch (err) {
    return reportRemoteError(command, target, 'api', err, ctx);
  }
}

/** Formats rows as aligned columns; `right` marks numeric columns. */
export function formatTable(header: string[], rows: string[][], right: boolean[] = []): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
