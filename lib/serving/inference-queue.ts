/**
 * Serializes forward passes through the one extractor of a container, batching what queues up.
 *
 * Why: tfjs has one engine per process; two `extractBatch` calls awaiting `data()` at once would
 * interleave their work and double peak memory. Requests that arrive while a pass runs wait and
 * go together in the next pass (micro-batching), which also uses the backend better than one
 * image at a time. There is no timer: an idle queue runs a lone request at once.
 */
import type { FeatureExtractor } from '../model/types.ts';

interface Pending {
  input: Float32Array;
  resolve: (features: Float32Array) => void;
  reject: (err: unknown) => void;
}

/** A queue in front of an extractor. */
export interface InferenceQueue {
  /** Features of one preprocessed image (HWC float32 of the extractor's input size). */
  extract(input: Float32Array): Promise<Float32Array>;
  /** Requests waiting (not counting the pass in flight). */
  readonly waiting: number;
  /** Forward passes run so far and images in them (for /health and tests). */
  readonly stats: { passes: number; images: number; largestBatch: number };
}

/**
 * Wraps an extractor so at most one forward pass runs at a time, with up to `maxBatch` queued
 * images per pass.
 *
 * @example
 * const queue = createInferenceQueue(extractor, { maxBatch: 8 });
 * const features = await queue.extract(await preprocessImage(bytes, { size: extractor.spec.input }));
 */
export function createInferenceQueue(
  extractor: Pick<FeatureExtractor, 'extractBatch'>,
  opts: { maxBatch: number },
): InferenceQueue {
  const maxBatch = Math.max(1, Math.floor(opts.maxBatch));
  const pending: Pending[] = [];
  const stats = { passes: 0, images: 0, largestBatch: 0 };
  let running = false;

  async function drain(): Promise<void> {
    try {
      while (pending.length > 0) {
        const batch = pending.splice(0, maxBatch);
        stats.passes += 1;
        stats.images += batch.length;
        stats.largestBatch = Math.max(stats.largestBatch, batch.length);
        try {
          const out = await extractor.extractBatch(batch.map((p) => p.input));
          if (out.length !== batch.length) {
            throw new Error(`extractor returned ${out.length} vectors for ${batch.length} images`);
          }
          batch.forEach((p, i) => {
            p.resolve(out[i] as Float32Array);
          });
        } catch (err) {
          // One failed pass fails only its own requests; the queue goes on with the next ones.
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      running = false;
    }
  }

  return {
    extract(input) {
      return new Promise<Float32Array>((resolve, reject) => {
        pending.push({ input, resolve, reject });
        if (!running) {
          running = true;
          // Start on a microtask so requests queued in the same tick share the first pass.
          queueMicrotask(() => void drain());
        }
      });
    },
    get waiting() {
      return pending.length;
    },
    stats,
  };
}
