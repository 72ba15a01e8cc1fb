import { z } from 'zod';
import { MODEL_VERSION_RE } from '../storage/keys.ts';

/**
 * `models/{d}/current.json`: which model version the API serves. Written by the promote step (and
 * by a rollback); read by the API and the CLI. `previous` is the version it replaced (null for
 * the first promotion), so a rollback is one rewrite.
 */
export const CurrentPointer = z.object({
  version: z.string().regex(MODEL_VERSION_RE, 'a model version like 20260101T000000Z-abc123'),
  promotedAt: z.string().datetime(),
  previous: z.string().regex(MODEL_VERSION_RE).nullable(),
});
export type CurrentPointer = z.infer<typeof CurrentPointer>;

/**
 * Orders model versions: they start with a UTC timestamp (`YYYYMMDDTHHMMSSZ-{shortid}`), so
 * string order is time order (versions of the same second order by their random suffix).
 */
export function compareVersions(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
