import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import { TlearnError } from '../errors.ts';
import { type Log, silentLog } from '../util/log.ts';
import { importTfjs } from './tfjs/import-tfjs.ts';
import type { TfjsBackendName as BackendName } from './types.ts';

/** Fallback order when no backend is forced: libtensorflow → wasm (SIMD) → pure-JS cpu. */
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** A forced backend (TLEARN_BACKEND) that cannot be initialised on this machine. */
export class BackendUnavailableError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BackendUnavailable', message, 500, options);
  }
}

// tfjs-node is an optional dependency that is absent on machines without internet at install
// time; a non-literal specifier keeps TypeScript and bundlers from resolving it statically.
const TFJS_NODE = '@tensorflow/tfjs-node';
const TFJS_WASM = '@tensorflow/tfjs-backend-wasm';

/**
 * The choice is process-wide state of tfjs (one engine per process), so it is remembered on
 * `globalThis` rather than in this module: a second copy of this module (vitest isolation, two
 * bundles) must see the same choice and must not initialise a backend again.
 */
const STATE_KEY = Symbol.for('tlearn.model.backend');
interface BackendState {
  chosen?: BackendName;
  pending?: Promise<BackendName>;
}
function state(): BackendState {
  const g = globalThis as unknown as Record<symbol, BackendState | undefined>;
  let s = g[STATE_KEY];
  if (s === undefined) {
    s = {};
    g[STATE_KEY] = s;
  }
  return s;
}

/** The backend chosen by `selectBackend` in this process, if any yet. */
export function currentBackend(): BackendName | undefined {
  return state().chosen;
}

async function tryTensorflow(log: Log): Promise<void> {
  try {
    // Importing tfjs-node registers the 'tensorflow' backend with the shared tfjs-core engine.
    await import(TFJS_NODE);
  } catch (err) {
    throw new BackendUnavailableError(`${TFJS_NODE} is not installed or does not load on this machine`, {
      cause: err,
    });
  }
  const tf = await importTfjs();
  if (!(await tf.setBackend('tensorflow'))) {
    throw new BackendUnavailableError(`${TFJS_NODE} loaded but its backend failed to initialise`);
  }
  log.debug('tensorflow backend ready');
}

async function tryWasm(log: Log): Promise<void> {
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  let distDir: string;
  try {
    wasm = await import(TFJS_WASM);
    // In Node the .wasm binaries are read from disk, not fetched: point tfjs at the package's
    // dist folder (where the node build lives) as a plain path prefix ending with a separator.
    const require = createRequire(import.meta.url);
    distDir = `${dirname(require.resolve(TFJS_WASM))}${sep}`;
  } catch (err) {
    throw new BackendUnavailableError(`${TFJS_WASM} is not installed`, { cause: err });
  }
  wasm.setWasmPaths(distDir);
  const tf = await importTfjs();
  let ok: boolean;
  try {
    ok = await tf.setBackend('wasm');
  } catch (err) {
    throw new BackendUnavailableError(`the wasm backend failed to initialise from ${distDir}`, {
      cause: err,
    });
  }
  if (!ok) throw new BackendUnavailableError(`the wasm backend failed to initialise from ${distDir}`);
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  log.debug('wasm backend ready', { simd, threads });
}

async function tryCpu(): Promise<void> {
  const tf = await importTfjs();
  // The cpu backend prints a banner urging tfjs-node on first use; our own log line already says
  // which backend runs, and tfjs' PROD flag only silences its console warnings.
  tf.env().set('PROD', true);
  if (!(await tf.setBackend('cpu')))
    throw new BackendUnavailableError('the cpu backend failed to initialise');
}

const INIT: Record<BackendName, (log: Log) => Promise<void>> = {
  tensorflow: tryTensorflow,
  wasm: tryWasm,
  cpu: tryCpu,
};

async function choose(preferred: BackendName | undefined, log: Log): Promise<BackendName> {
  if (preferred !== undefined) {
    try {
      await INIT[preferred](log);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new BackendUnavailableError(
        `backend '${preferred}' was asked for (TLEARN_BACKEND) but is not available here: ${why}; ` +
          `unset TLEARN_BACKEND to use the first that loads (${BACKEND_ORDER.join(' → ')})`,
        { cause: err },
      );
    }
    return preferred;
  }
  const skipped: string[] = [];
  for (const name of BACKEND_ORDER) {
    try {
      await INIT[name](log);
      if (skipped.length > 0) log.debug('backends skipped', { skipped });
      return name;
    } catch (err) {
      skipped.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new BackendUnavailableError(`no tensor backend could be initialised (${skipped.join('; ')})`);
}

/**
 * Picks and initialises the tfjs backend once per process and logs the choice.
 *
 * Without `preferred` the first that loads wins: `tensorflow` (tfjs-node) → `wasm` → `cpu`.
 * With `preferred` (from TLEARN_BACKEND via `loadModelConfig`) that backend or a
 * BackendUnavailableError saying so. Calling again returns the backend already chosen without
 * initialising anything; a later call that forces a *different* backend switches tfjs to it
 * (tfjs moves existing tensors on first use), which only tests and benchmarks should do.
 *
 * @example const backend = await selectBackend(loadModelConfig().backend, log); // 'wasm'
 */
export async function selectBackend(preferred?: BackendName, log: Log = silentLog): Promise<BackendName> {
  const s = state();
  if (s.pending) {
    const chosen = await s.pending.catch(() => undefined);
    if (chosen !== undefined && (preferred === undefined || preferred === chosen)) return chosen;
  }
  const pending = choose(preferred, log);
  s.pending = pending;
  try {
    const chosen = await pending;
    s.chosen = chosen;
    log.info('tensor backend selected', { backend: chosen, forced: preferred !== undefined });
    return chosen;
  } catch (err) {
    // A failed forced choice must not poison later calls: the previous choice (if any) stands.
    s.pending = s.chosen === undefined ? undefined : Promise.resolve(s.chosen);
    throw err;
  }
}
