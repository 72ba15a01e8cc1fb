/**
 * What the local stack needs to call a Lambda handler in-process: the handler's call shape and a
 * context object with the fields Lambda gives (Powertools' `injectLambdaContext` reads them).
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { defaultMemoryMb, isFunctionName } from '../functions.ts';

/** A Lambda handler as `functions/<name>/handler.ts` exports it (middy-wrapped, promise style). */
export type LambdaHandler<E = unknown, R = unknown> = (event: E, context: Context) => Promise<R>;

/** Account id the local emulator puts in every ARN (fauxqs uses the same). */
export const LOCAL_ACCOUNT_ID = '000000000000';

/** Lambda's own default memory, for a handler that is none of the app's functions (tests). */
const LAMBDA_DEFAULT_MEMORY_MB = 128;

/**
 * Makes a fresh Lambda context for one invocation of `functionName`.
 * `getRemainingTimeInMillis()` counts down from `timeoutMs` like Lambda's does; the memory is the
 * function's as the stack deploys it (lib/functions.ts), unless given.
 */
export function createLambdaContext(
  functionName: string,
  opts: { region: string; timeoutMs?: number; memoryMb?: number },
): Context {
  const timeoutMs = opts.timeoutMs ?? 900_000;
  const deadline = Date.now() + timeoutMs;
  const requestId = randomUUID();
  const unsupported = (what: string) => () => {
    throw new Error(`context.${what}() is the legacy callback API; local handlers return promises`);
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${opts.region}:${LOCAL_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: String(
      opts.memoryMb ??
        (isFunctionName(functionName) ? defaultMemoryMb(functionName) : LAMBDA_DEFAULT_MEMORY_MB),
    ),
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/[$LATEST]${requestId.replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported('done'),
    fail: unsupported('fail'),
    succeed: unsupported('succeed'),
  };
}
