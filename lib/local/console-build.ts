import { join } from 'node:path';
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';

/**
 * Builds the web console (console/build.ts: preact + esbuild, both dev dependencies) into
 * `{dataDir}/console/` for the local API's `GET /`, as the container image build does for Lambda.
 * Returns the folder, or undefined (logged) when it cannot be built, e.g. without dev
 * dependencies: the rest of the stack runs without a console.
 *
 * @example env.set(ENV.CONSOLE_DIR, await buildLocalConsole('.tlearn', log));
 */
export async function buildLocalConsole(dataDir: string, log: Log): Promise<string | undefined> {
  try {
    const { buildConsole } = await import('../../console/build.ts');
    const built = await buildConsole(join(dataDir, 'console'));
    log.debug('console built', { dir: built.dir, gzipBytes: built.gzipBytes });
    return built.dir;
  } catch (err) {
    log.warn(`the web console could not be built (GET / will answer 404): ${describeError(err)}`);
    return undefined;
  }
}
