/**
 * What a client may see of a failure recorded elsewhere (a training execution's Fail state): a
 * code and one line, never a stack trace, a bucket name or an S3 path. Step Functions keeps the
 * full cause for operators (`aws stepfunctions describe-execution`).
 */

const MAX_REASON = 300;

/** An error code as clients see it: an identifier, else `Error`. */
export function publicErrorCode(error: string | null | undefined): string | null {
  if (error === null || error === undefined || error === '') return null;
  return /^[A-Za-z][A-Za-z0-9_.-]{0,99}$/.test(error) ? error : 'Error';
}

/**
 * One readable line out of an execution's cause: the `errorMessage` of a Lambda error JSON, or the
 * first line of the text; stack frames dropped; `s3://bucket/key` and `arn:…` shortened to what
 * they are; at most 300 characters.
 *
 * @example publicReason('{"errorType":"X","errorMessage":"no labels in s3://b/features/p/","trace":["at …"]}')
 * // → 'no labels in (an S3 object)'
 */
export function publicReason(cause: string | null | undefined): string | null {
  if (cause === null || cause === undefined || cause.trim() === '') return null;
  let text = cause;
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown; message?: unknown };
    const message = parsed.errorMessage ?? parsed.message;
    if (typeof message === 'string') text = message;
  } catch {
    // Not JSON: the text itself.
  }
  const line =
    text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find((l) => l !== '' && !/^at\s/.test(l)) ?? '';
  const cleaned = line
    .replace(/s3:\/\/\S+/g, '(an S3 object)')
    .replace(/arn:aws[a-z-]*:\S+/g, '(an AWS resource)')
    .replace(/\b(?:datasets|features|models|base-models|batches)\/\S+/g, '(an S3 object)')
    .replace(/(?:\/[\w.@-]+){2,}\.(?:[cm]?[jt]s|node)(?::\d+){0,2}/g, '(a source file)');
  return cleaned.length > MAX_REASON ? `${cleaned.slice(0, MAX_REASON - 1)}…` : cleaned;
}
