import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ValidationError } from '../errors.ts';
import type { Precision } from '../model/spec.ts';
import type { BackendName } from '../model/types.ts';

/** Thrown for bad command-line usage; main prints the message and the command's help, exit 2. */
export class UsageError extends ValidationError {
  constructor(message: string) {
    super(message, { code: 'Usage' });
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses argv strictly with node's `util.parseArgs`; unknown flags become UsageError.
 * `--help`/`-h` is always accepted and reported as `help: true`.
 */
export function parseCommandArgs<O extends Options>(argv: string[], options: O) {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values, positionals, help: (values as Record<string, unknown>).help === true };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** Parses a number flag with bounds; throws UsageError naming the flag. */
export function numberFlag(
  name: string,
  raw: unknown,
  dflt: number,
  opts: { min?: number; max?: number; integer?: boolean } = {},
): number {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || (opts.integer && !Number.isInteger(v)))
    throw new UsageError(`--${name} must be a ${opts.integer ? 'whole ' : ''}number (got '${String(raw)}')`);
  if (opts.min !== undefined && v < opts.min)
    throw new UsageError(`--${name} must be at least ${opts.min} (got ${v})`);
  if (opts.max !== undefined && v > opts.max)
    throw new UsageError(`--${name} must be at most ${opts.max} (got ${v})`);
  return v;
}

/**
 * Parses `--precision` (fp32 | int8; default fp32). int8 runs on onnxruntime only, so a
 * `--backend` other than onnx is refused here rather than after the weights are loaded.
 */
export function precisionFlag(raw: unknown, backend?: BackendName): Precision {
  if (raw === undefined) return 'fp32';
  const p = String(raw);
  if (p !== 'fp32' && p !== 'int8') throw new UsageError(`--precision must be fp32 or int8 (got '${p}')`);
  if (p === 'int8' && backend !== undefined && backend !== 'onnx') {
    throw new UsageError(`--precision int8 runs on the onnx engine only; drop --backend ${backend}`);
  }
  return p;
}
