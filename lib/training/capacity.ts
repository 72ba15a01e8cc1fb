import { TlearnError } from '../errors.ts';
import type { Pooling } from '../model/spec.ts';
import { compactRowBytes } from './compact-matrix.ts';
import { N_BLOCKS } from './parallel.ts';

/**
 * How many images the trainer can hold, from its configured memory, the feature width and the
 * measured share of non-zero feature values (the compact matrix keeps only those: 6 bytes each).
 * The numbers behind it are measured by `npm run bench -- --only scale` (docs/BENCHMARKS.md).
 */

/**
 * Share of non-zero values in VGG16 features per pooling, measured on 60 generated 200x150
 * JPEGs (10 classes) through the ONNX engine with seeded random weights (`random-1`):
 * flatten 0.616 (0.606-0.626 per image), avg 0.882, max 0.88 (rounded up here). ImageNet
 * weights give sparser features; the limit is computed from these, so it errs on the safe side.
 */
export const MEASURED_DENSITY: Readonly<Record<Pooling, number>> = { flatten: 0.63, avg: 0.9, max: 0.9 };

/** Memory the trainer process needs besides the features: Node, the SDK, code, listings' slack. */
export const TRAINER_BASE_BYTES = 256 * 2 ** 20;

/** Per image besides its features: the listing entry (keys, ETag), its label, row bookkeeping. */
export const TRAINER_BYTES_PER_IMAGE = 1024;

/** Share of the configured memory the trainer plans to use (the rest: GC and allocator slack). */
export const TRAINER_MEMORY_SHARE = 0.9;

/** The sizes a training's memory depends on. */
export interface TrainerShape {
  /** Values per feature vector (8192 for flatten at 150x150, 512 for avg/max). */
  d: number;
  /** Classes of the fit (the labels of the dataset). */
  classes: number;
  /** Share of non-zero values. @default 1 */
  density?: number;
}

/** Bytes of the compact matrix of n images. */
export function compactMatrixBytes(n: number, d: number, density = 1): number {
  return n * compactRowBytes(Math.ceil(density * d));
}

/**
 * Bytes of the fit's work arrays (L-BFGS history of 10 pairs plus a few vectors, per-block
 * gradients, worker threads), independent of the image count.
 */
export function fitWorkBytes(d: number, classes: number): number {
  const len = (classes <= 2 ? 1 : classes) * (d + 1) * 8;
  return len * (2 * 10 + 8 + N_BLOCKS + 1) + 8 * 16 * 2 ** 20;
}

/** Estimated peak bytes of a training of n images. */
export function trainerBytes(n: number, shape: TrainerShape): number {
  return (
    TRAINER_BASE_BYTES +
    fitWorkBytes(shape.d, shape.classes) +
    n * TRAINER_BYTES_PER_IMAGE +
    compactMatrixBytes(n, shape.d, shape.density)
  );
}

/** Bytes the compact matrix may take in a trainer with `memoryBytes`, besides everything else. */
export function matrixBudgetBytes(memoryBytes: number, n: number, shape: TrainerShape): number {
  return (
    memoryBytes * TRAINER_MEMORY_SHARE -
    TRAINER_BASE_BYTES -
    fitWorkBytes(shape.d, shape.classes) -
    n * TRAINER_BYTES_PER_IMAGE
  );
}

/** The most images a trainer with `memoryBytes` can train on (the hard limit). */
export function trainerImageLimit(memoryBytes: number, shape: TrainerShape): number {
  const fixed = TRAINER_BASE_BYTES + fitWorkBytes(shape.d, shape.classes);
  const perImage = TRAINER_BYTES_PER_IMAGE + compactRowBytes(Math.ceil((shape.density ?? 1) * shape.d));
  return Math.max(0, Math.floor((memoryBytes * TRAINER_MEMORY_SHARE - fixed) / perImage));
}

/** A training that cannot fit the trainer's memory; says the limit and what to do. */
export class TrainingTooLargeError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TrainingTooLarge', message, 413, options);
  }
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20).toLocaleString('en-US');

/** What to do about a training too large for the trainer (the end of every such message). */
export function tooLargeRemedies(memoryBytes: number, shape: TrainerShape): string {
  const avgLimit = trainerImageLimit(memoryBytes, { ...shape, d: 512, density: MEASURED_DENSITY.avg });
  return (
    `Train on pooled features (512 per image, about ${avgLimit.toLocaleString('en-US')} images at this memory): ` +
    '`tlearn extract --pooling avg` offline, or deploy with `-c tlearn:pooling=avg` and reindex; ' +
    'or give train-head more memory (functions.train-head.memorySize, up to 10,240 MB on Lambda), or train on fewer images.'
  );
}

/** The message of {@link TrainingTooLargeError} before loading: the numbers, the limit, the remedies. */
export function tooLargeMessage(n: number, memoryBytes: number, shape: TrainerShape): string {
  const limit = trainerImageLimit(memoryBytes, shape);
  return (
    `${n.toLocaleString('en-US')} images of ${shape.d} features need about ${mb(trainerBytes(n, shape))} MB in the trainer, ` +
    `which plans with ${mb(memoryBytes * TRAINER_MEMORY_SHARE)} MB of its ${mb(memoryBytes)} MB: ` +
    `its limit is about ${limit.toLocaleString('en-US')} images of ${shape.d} features. ` +
    tooLargeRemedies(memoryBytes, shape)
  );
}

/** The message of {@link TrainingTooLargeError} when the matrix outgrows its budget while loading. */
export function denserThanMeasuredMessage(
  n: number,
  memoryBytes: number,
  shape: TrainerShape,
  budgetBytes: number,
): string {
  return (
    `the features of these ${n.toLocaleString('en-US')} images are denser than the ${shape.density ?? 1} non-zero share the limit assumes: ` +
    `their compact matrix outgrew its ${mb(budgetBytes)} MB of the trainer's ${mb(memoryBytes)} MB while loading. ` +
    tooLargeRemedies(memoryBytes, shape)
  );
}

/**
 * Fails fast, before any feature is loaded, when n images of this shape cannot fit
 * `memoryBytes` (at the measured density).
 *
 * @throws TrainingTooLargeError naming the limit and the remedies (`--pooling avg`, more memory)
 */
export function checkTrainerCapacity(n: number, memoryBytes: number, shape: TrainerShape): void {
  if (n > trainerImageLimit(memoryBytes, shape))
    throw new TrainingTooLargeError(tooLargeMessage(n, memoryBytes, shape));
}
