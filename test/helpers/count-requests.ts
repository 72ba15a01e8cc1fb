import type { S3Client } from '@aws-sdk/client-s3';

/** Counts the requests of one command (e.g. `HeadObjectCommand`) made through a client. */
export function countRequests(s3: S3Client, command: string): { count: () => number; remove: () => void } {
  let n = 0;
  const name = `count-${command}-${Math.random()}`;
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === command) n += 1;
      return next(args);
    },
    { step: 'initialize', name },
  );
  return { count: () => n, remove: () => s3.middlewareStack.remove(name) };
}
