/**
 * What the local stack (lib/local/stack.ts) runs: the handlers of `functions/<name>/handler.ts`
 * (or of their bundles) and the training state machine the CDK app synthesizes.
 */
import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError, describeError } from '../errors.ts';
import type { FunctionName } from '../functions.ts';
import { importBundleHandlers, importHandler } from './bundles.ts';
import type { LambdaHandler } from './lambda-context.ts';

const execFileAsync = promisify(execFile);

/** The functions of the stack, as `functions/<name>/handler.ts` names them. */
/** The functions of the stack (lib/functions.ts), as `functions/<name>/handler.ts` names them. */
export type { FunctionName };

/** Every handler the stack runs. */
export type LocalHandlers = Record<FunctionName, LambdaHandler>;

/** The training state machine as `infra/definition.ts` synthesizes it. */
export interface TrainingDefinitionLike {
  definition: Record<string, unknown>;
  /** Task `Resource` → the function it stands for. */
  taskFunctions: Record<string, string>;
}

/** The state machine's wait and loop settings the local stack synthesizes it with. */
export interface TrainingLoopSettings {
  settleSeconds: number;
  pollSeconds: number;
  maxRounds: number;
  maxRetrains: number;
}

/**
 * Imports the real handlers. Stack `instance` > 1 imports fresh module instances (a query on the
 * URL), since a handler binds its configuration at import and an earlier stack in this process had
 * other ports.
 */
async function importHandlers(
  names: readonly FunctionName[],
  instance: number,
): Promise<Partial<LocalHandlers>> {
  const out: Partial<LocalHandlers> = {};
  for (const name of names) {
    const url = new URL(`../../functions/${name}/handler.ts`, import.meta.url);
    out[name] = await importHandler(url, instance, `the ${name} handler`);
  }
  return out;
}

/**
 * The handlers of `wanted`: the given ones, the others imported (from the bundles of `bundles`
 * when set) as stack number `instance` of this process. Import after the environment is set: a
 * handler reads its configuration at import.
 */
export async function loadHandlers(
  wanted: readonly FunctionName[],
  given: { handlers?: Partial<LocalHandlers>; bundles?: string },
  instance: number,
): Promise<LocalHandlers> {
  const toImport = wanted.filter((n) => given.handlers?.[n] === undefined);
  return {
    ...(given.bundles === undefined
      ? await importHandlers(toImport, instance)
      : await importBundleHandlers(resolve(given.bundles), toImport, instance)),
    ...given.handlers,
  } as LocalHandlers;
}

/**
 * The CDK app's state machine, synthesized in a child process (infra/print-definition.ts):
 * aws-cdk-lib would otherwise stay loaded in the stack's process for its whole life (~80 MB).
 */
async function defaultDefinition(opts: TrainingLoopSettings): Promise<TrainingDefinitionLike> {
  const root = dirname(dirname(fileURLToPath(new URL('../../infra/definition.ts', import.meta.url))));
  const { stdout } = await execFileAsync(
    process.execPath,
    [join(root, 'bin', 'run-ts.js'), join(root, 'infra', 'print-definition.ts'), JSON.stringify(opts)],
    { cwd: root, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 },
  );
  return JSON.parse(stdout) as TrainingDefinitionLike;
}

/**
 * The training state machine with these settings, from `definition` (default: infra/, see
 * {@link defaultDefinition}); ConfigError when it cannot be had.
 */
export async function synthesizeTraining(
  settings: TrainingLoopSettings,
  definition: (opts: TrainingLoopSettings) => Promise<TrainingDefinitionLike> = defaultDefinition,
): Promise<TrainingDefinitionLike> {
  try {
    return await definition(settings);
  } catch (err) {
    throw new ConfigError(`cannot synthesize the training state machine from infra/: ${describeError(err)}`, {
      cause: err,
    });
  }
}
