/**
 * Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order.
 * Rejects with the first error after in-flight calls settle (no unhandled rejections).
 */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined) {
      const i = next++;
      if (i >= items.length) return;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  const n = Math.max(1, Math.min(limit, items.length));
  await Promise.all(Array.from({ length: n }, worker));
  if (failed !== undefined) throw failed.error;
  return results;
}

/** A counting semaphore: {@link Gate.acquire} waits (first come, first served) while `size` are held. */
export interface Gate {
  acquire(): Promise<void>;
  release(): void;
}

/**
 * A gate of `size` slots, for bounding one stage of a pipeline whose other stages run freely
 * (e.g. decodes, while forward passes queue behind them).
 *
 * @example
 * const gate = createGate(4);
 * await gate.acquire();
 * try { await decode(); } finally { gate.release(); }
 */
export function createGate(size: number): Gate {
  let free = Math.max(1, Math.floor(size));
  const waiting: (() => void)[] = [];
  return {
    acquire() {
      if (free > 0) {
        free--;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        waiting.push(resolve);
      });
    },
    release() {
      const next = waiting.shift();
      if (next) next();
      else free++;
    },
  };
}
