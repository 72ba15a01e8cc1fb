import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, currentBackend, selectBackend } from '../../../lib/model/backend.ts';
import type { Log } from '../../../lib/util/log.ts';
import { tfjsNodeAvailability } from '../../helpers/engines.ts';

// The first engine that loads: tfjs-node where it is installed (the Lambda image), else wasm.
const tfjsNode = await tfjsNodeAvailability();
const FIRST = tfjsNode.available ? 'tensorflow' : 'wasm';

function recordingLog(): Log & { infos: Array<[string, Record<string, unknown> | undefined]> } {
  const infos: Array<[string, Record<string, unknown> | undefined]> = [];
  return { infos, debug() {}, info: (m, e) => infos.push([m, e]), warn() {}, error() {} };
}

// One process per test file (vitest forks), so these tests see a fresh tfjs engine and run in order.
describe('selectBackend', () => {
  it('picks tfjs-node where it loads, else wasm, and logs the choice', async () => {
    // Prepare
    const log = recordingLog();
    expect(currentBackend()).toBeUndefined();
    // Act
    const backend = await selectBackend(undefined, log);
    // Assess
    expect(backend).toBe(FIRST);
    expect(tf.getBackend()).toBe(FIRST);
    expect(log.infos).toEqual([['tensor backend selected', { backend: FIRST, forced: false }]]);
    if (FIRST === 'wasm') expect(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')).toBe(true);
  });

  it('returns the same backend on a second call without initialising again', async () => {
    const log = recordingLog();
    const engineBackend = tf.engine().backend;
    expect(await selectBackend(undefined, log)).toBe(FIRST);
    expect(await selectBackend(FIRST, log)).toBe(FIRST);
    expect(tf.engine().backend).toBe(engineBackend);
    expect(log.infos).toEqual([]);
  });

  it.skipIf(tfjsNode.available)(
    'fails with a message naming the forced backend when it is not available',
    async () => {
      const err = await selectBackend('tensorflow').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect((err as Error).message).toMatch(
        /backend 'tensorflow' was asked for \(TLEARN_BACKEND\) but is not available/,
      );
      expect((err as Error).message).toMatch(/@tensorflow\/tfjs-node is not installed/);
      // The failed attempt leaves the earlier choice in place.
      expect(currentBackend()).toBe('wasm');
      expect(await selectBackend()).toBe('wasm');
    },
  );

  // The engine the Lambda image loads first; skipped (with the reason printed) where it does not load.
  it.runIf(tfjsNode.available)('runs on tfjs-node when forced and computes what wasm computes', async () => {
    const x = [
      [1, -2],
      [3, 4],
    ];
    expect(await selectBackend('wasm')).toBe('wasm');
    const onWasm = tf.tidy(() => tf.matMul(tf.tensor(x), tf.relu(tf.tensor(x))).arraySync());
    expect(await selectBackend('tensorflow')).toBe('tensorflow');
    expect(tf.getBackend()).toBe('tensorflow');
    expect(tf.tidy(() => tf.matMul(tf.tensor(x), tf.relu(tf.tensor(x))).arraySync())).toEqual(onWasm);
  });

  it('switches to a forced backend that is available (cpu) and computes the same', async () => {
    const x = [1, -2, 3, 4];
    const onWasm = tf.tidy(() => tf.relu(tf.tensor(x)).arraySync());
    expect(await selectBackend('cpu')).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(currentBackend()).toBe('cpu');
    expect(tf.tidy(() => tf.relu(tf.tensor(x)).arraySync())).toEqual(onWasm);
  });
});
