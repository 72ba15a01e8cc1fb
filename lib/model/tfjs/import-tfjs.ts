/** The @tensorflow/tfjs module (the type of `import * as tf from '@tensorflow/tfjs'`). */
export type Tfjs = typeof import('@tensorflow/tfjs');

/**
 * Imports @tensorflow/tfjs when a caller needs it rather than with the caller's module. tfjs holds
 * ~80 MB resident once loaded (docs/BENCHMARKS.md, "The local stack: memory and time-to-model"),
 * and the modules on every extractor's path (lib/model/backend.ts, lib/model/io-handlers.ts) need
 * it only for a tfjs backend or to save a model.json; the onnx engine needs neither.
 * test/integration/local/no-tfjs.test.ts fails if the onnx path loads it again.
 */
export function importTfjs(): Promise<Tfjs> {
  return import('@tensorflow/tfjs');
}
