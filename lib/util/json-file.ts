import type { z } from 'zod';
import { ValidationError } from '../errors.ts';

/** Why a JSON text was refused: it does not parse (`syntax`), or the schema rejects it (`schema`). */
export interface JsonProblem {
  kind: 'syntax' | 'schema';
  /** For `schema`: every issue as `field.path: problem`, joined with `; `. */
  detail: string;
  cause: unknown;
}

/**
 * `JSON.parse` followed by the schema's `safeParse`; the caller turns a problem into its own error
 * (a user's file is a 400, a stored object a 500).
 *
 * @example parseJson(text, CurrentPointer, (p) => new TlearnError('CorruptObject', `${key}: ${p.kind}`, 500))
 */
export function parseJson<S extends z.ZodTypeAny>(
  text: string,
  schema: S,
  fail: (problem: JsonProblem) => Error,
): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail({ kind: 'syntax', detail: (err as Error).message, cause: err });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const detail = parsed.error.issues
      .map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message))
      .join('; ');
    throw fail({ kind: 'schema', detail, cause: parsed.error });
  }
  return parsed.data;
}

/**
 * Parses the text of a JSON file a user handed in and validates it with a schema. Throws
 * ValidationError naming the file: `PATH is not valid JSON`, or `PATH is not WHAT: field: problem; …`.
 *
 * @example parseJsonFile(await readFile(path, 'utf8'), HeadFile, path, 'a tlearn model')
 */
export function parseJsonFile<S extends z.ZodTypeAny>(
  text: string,
  schema: S,
  path: string,
  what: string,
): z.output<S> {
  return parseJson(
    text,
    schema,
    (p) =>
      new ValidationError(
        p.kind === 'syntax' ? `${path} is not valid JSON` : `${path} is not ${what}: ${p.detail}`,
        {
          cause: p.cause,
        },
      ),
  );
}
