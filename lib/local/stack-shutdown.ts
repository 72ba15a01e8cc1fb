/**
 * The order the local stack (lib/local/stack.ts) stops its parts in: what takes requests from
 * outside first, so no new work arrives while the rest drains; then the rest in reverse order of
 * start, so the emulator (everyone's store) stops last.
 */
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';

/** Stops started parts, in order. */
export interface StackShutdown {
  /** A part that takes requests from outside (the API, the demo): stopped before the others. */
  addFront(name: string, run: () => Promise<void>): void;
  /** Any other part: stopped after the front, the last started first. */
  add(name: string, run: () => Promise<void>): void;
  /** Stops every part (a failure is a warning), then calls `afterAll`. */
  stopAll(): Promise<void>;
}

/** A {@link StackShutdown}; `afterAll` runs once every part has stopped (e.g. restoring the environment). */
export function createStackShutdown(log: Log, afterAll: () => void): StackShutdown {
  type Cleanup = { name: string; run: () => Promise<void> };
  const front: Cleanup[] = [];
  const cleanups: Cleanup[] = [];
  return {
    addFront: (name, run) => void front.push({ name, run }),
    add: (name, run) => void cleanups.push({ name, run }),
    async stopAll() {
      for (const c of [...front.reverse(), ...cleanups.reverse()]) {
        try {
          await c.run();
        } catch (err) {
          log.warn(`stopping ${c.name} failed`, { error: describeError(err) });
        }
      }
      front.length = 0;
      cleanups.length = 0;
      afterAll();
    },
  };
}
