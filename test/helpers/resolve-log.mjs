// A module resolve hook (node:module `register`) that appends every URL Node resolves for an
// `import` to the file named in its data, one per line: test/helpers/no-tfjs-child.ts reads it to
// tell which packages the local stack loaded. Appending synchronously keeps the list complete
// when the main thread reads it (messages from the hooks thread would arrive later).
import { appendFileSync } from 'node:fs';

let logFile;

export function initialize(data) {
  logFile = data.logFile;
}

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  appendFileSync(logFile, `${result.url}\n`);
  return result;
}
