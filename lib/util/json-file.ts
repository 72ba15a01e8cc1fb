import type { z } from 'zod';
import { ValidationError } from '../errors.ts';

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
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`${path} is not valid JSON`, { cause: err });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    throw new ValidationError(
      `${path} is not ${what}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      { cause: parsed.error },
    );
  return parsed.data;
}
