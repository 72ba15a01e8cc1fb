/**
 * Inputs shared by the benchmarks, generated deterministically and cached under the work folder
 * (`.tlearn/bench/`, gitignored) so a second run does not pay for them.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeLabelledImages } from '../../test/helpers/images.ts';
import { runWorker } from './child.ts';
import type { BenchFixtures, EngineAvailability } from './types.ts';

/** Seed of the benchmark's VGG16 weights (random values, real size: 14,714,688 float32). */
export const WEIGHTS_SEED = 1;

function memo<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
}

/** Creates the fixture provider of a run. */
export function createFixtures(opts: {
  root: string;
  workDir: string;
  verbose: boolean;
  progress: (m: string) => void;
}): BenchFixtures {
  const { root, workDir, verbose, progress } = opts;
  return {
    weights: memo(async () => {
      const dir = join(workDir, `base-model-seed${WEIGHTS_SEED}`);
      const modelJson = join(dir, 'model.json');
      if (existsSync(modelJson)) {
        const doc = JSON.parse(await readFile(modelJson, 'utf8')) as {
          userDefinedMetadata?: { tlearn?: { weightsId?: unknown } };
        };
        const id = doc.userDefinedMetadata?.tlearn?.weightsId;
        if (typeof id === 'string') return { dir, weightsId: id };
      }
      progress('writing real-size VGG16 weights (seeded random values, 59 MB) once');
      await rm(dir, { recursive: true, force: true });
      const saved = await runWorker<{ weightsId: string }>(
        'prepare-weights',
        { dir, seed: WEIGHTS_SEED },
        { cwd: root, timeoutMs: 300_000, verbose },
      );
      return { dir, weightsId: saved.weightsId };
    }),
    engines: memo(async () => {
      const probe = await runWorker<EngineAvailability>(
        'probe-engines',
        {},
        { cwd: root, timeoutMs: 120_000, verbose },
      );
      return { available: probe.available, unavailable: probe.unavailable };
    }),
  };
}

/**
 * A folder of `count` labelled ~500x375 JPEGs (two labels, photo-sized), made once and reused.
 * Returns the folder.
 */
export async function labelledJpegFolder(workDir: string, count: number): Promise<string> {
  const dir = join(workDir, `images-${count}`);
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return dir;
  await rm(dir, { recursive: true, force: true });
  const perClass = Math.ceil(count / 2);
  await writeLabelledImages(dir, {
    labels: ['cat', 'dog'],
    perClass,
    width: 500,
    height: 375,
    format: 'jpeg',
    seed: 6,
  });
  // An odd count: drop the last dog so the folder holds exactly `count` images.
  if (perClass * 2 > count) {
    const dogs = (await readdir(join(dir, 'dog'))).sort();
    const last = dogs[dogs.length - 1];
    if (last !== undefined) await rm(join(dir, 'dog', last));
  }
  await writeFile(marker, `${count}\n`);
  return dir;
}

/** Files ending in `suffix` under a folder, recursively. */
export async function countFiles(dir: string, suffix: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.filter((e) => e.endsWith(suffix)).length;
}
