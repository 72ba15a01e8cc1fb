import { z } from 'zod';
import { ValidationError } from '../errors.ts';

/**
 * `models/{d}/{version}/quality.json`: what the quality pass found in a training's
 * data. The fields from `format` to `notes` are the contract the console and the CLI read;
 * everything after `notes` extends it (settings, split, accuracy, totals, timings). Lists are
 * capped (see `totals` for the full counts).
 *
 * In `duplicates` and `conflicts`, `labels[i]` is the label of `keys[i]`.
 */

const key = z.string().min(1);
const unit = z.number().min(0).max(1);

export const DuplicateSchema = z.object({
  kind: z.enum(['exact', 'near']),
  /** 1 for exact copies; for a near group, the lowest verified cosine similarity of its pairs. */
  similarity: unit,
  keys: z.array(key).min(2),
  labels: z.array(z.string()),
});
export type Duplicate = z.infer<typeof DuplicateSchema>;

export const ConflictSchema = z.object({ keys: z.array(key).min(2), labels: z.array(z.string()) });
export type Conflict = z.infer<typeof ConflictSchema>;

export const LeakSchema = z.object({ trainKey: key, heldOutKey: key, similarity: unit });
export type Leak = z.infer<typeof LeakSchema>;

export const LabelErrorSchema = z.object({
  key,
  label: z.string(),
  suggested: z.string(),
  probabilityOfLabel: unit,
  probabilityOfSuggested: unit,
});
export type LabelError = z.infer<typeof LabelErrorSchema>;

const count = z.number().int().nonnegative();

export const QualityDocumentSchema = z.object({
  format: z.literal('tlearn-quality'),
  formatVersion: z.literal(1),
  /** Null offline (`tlearn fit`): the folder name is not a dataset. */
  dataset: z.string().nullable(),
  /** Model version; null offline. */
  version: z.string().nullable(),
  /** Images (feature rows) the pass looked at. */
  images: count,
  duplicates: z.array(DuplicateSchema),
  conflicts: z.array(ConflictSchema),
  leaks: z.array(LeakSchema),
  /** Most suspicious first. */
  labelErrors: z.array(LabelErrorSchema),
  imbalance: z.object({ counts: z.record(z.string(), count), ratio: z.number().nonnegative() }),
  notes: z.array(z.string()),
  // ---- how the findings were made (extensions after the contract's fields) ----
  /** How the findings were computed (thresholds, sketch, LSH, folds). */
  settings: z.object({
    nearThreshold: unit,
    sketchDims: count,
    lshTables: count,
    lshBits: count,
    folds: count,
    /** Seed of the sketch, the hyperplanes and the folds. */
    seed: z.number().int(),
    /** Longest list kept in the document (see totals). */
    maxListed: count,
  }),
  /** Whether the train/held-out split kept every duplicate group on one side. */
  split: z.object({
    groupAware: z.boolean(),
    /** Duplicate groups (exact or near, 2+ images) the split kept together. */
    groups: count,
    groupedImages: count,
    train: count,
    heldOut: count,
  }),
  /** Held-out accuracy as reported, and without the held-out images that leak from train. */
  accuracy: z.object({
    plain: unit.nullable(),
    withoutLeaks: unit.nullable(),
    heldOutRemoved: count,
  }),
  /** Counts before the lists were capped. */
  totals: z.object({ duplicates: count, conflicts: count, leaks: count, labelErrors: count }),
  /** Which parts ran ('skipped': over the size limit or failed; see notes). */
  parts: z.object({
    exact: z.enum(['done', 'skipped']),
    near: z.enum(['done', 'skipped']),
    labelErrors: z.enum(['done', 'skipped']),
  }),
  timingsMs: z.record(z.string(), z.number().nonnegative()),
});
export type QualityDocument = z.infer<typeof QualityDocumentSchema>;

/** Parses a quality.json (a string or parsed JSON); throws ValidationError saying what is wrong. */
export function parseQualityDocument(json: unknown): QualityDocument {
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new ValidationError(`quality.json is not JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  const r = QualityDocumentSchema.safeParse(value);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ValidationError(`quality.json is not valid: ${issues}`, { cause: r.error });
  }
  return r.data;
}
