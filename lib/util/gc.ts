/**
 * A full garbage collection, now. For the rare moment a process has just dropped a large amount
 * of memory it will not need again (VGG16's weights and their ONNX serialization, ~120 MB, once the
 * engine has its own copy: lib/model/shared-extractor.ts): V8 would otherwise keep them until a
 * later GC that, with a quiet heap, may not come for minutes, and the process's resident memory
 * would count them twice (docs/BENCHMARKS.md, "The local stack").
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/** Runs a full GC (through V8's `gc`, made available once); false if this V8 does not offer it. */
export function collectGarbageNow(): boolean {
  if (gc === undefined) {
    // --expose-gc installs `gc` in contexts created afterwards: a fresh one hands it over.
    setFlagsFromString('--expose-gc');
    const found: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    if (typeof found !== 'function') return false;
    gc = found as () => void;
  }
  gc();
  return true;
}
