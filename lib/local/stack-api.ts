/**
 * The HTTP API of the local stack (lib/local/stack.ts). It listens as soon as the stack starts (a
 * taken port fails fast); requests wait for the api handler, which loads with the others.
 */

import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createLocalKeyStore, LOCAL_KEYS_FILE } from '../api/keys.ts';
import type { Log } from '../util/log.ts';
import { type Deferred, deferred } from './deferred.ts';
import { type HttpApi, startHttpApi } from './http-api.ts';
import type { LambdaHandler } from './lambda-context.ts';
import type { StackShutdown } from './stack-shutdown.ts';

/** The api function's handler. */
export type ApiHandler = LambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>;

/** Starts the API (stopped first by the shutdown); resolve `handler` to let its requests through. */
export async function startStackApi(opts: {
  port: number;
  region: string;
  apiKey?: string;
  dataDir: string;
  shutdown: StackShutdown;
  log: Log;
}): Promise<{ api: HttpApi; handler: Deferred<ApiHandler> }> {
  const handler = deferred<ApiHandler>();
  handler.promise.catch(() => undefined);
  const api = await startHttpApi({
    port: opts.port,
    handler: async (event, context) => (await handler.promise)(event, context),
    region: opts.region,
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    keys: createLocalKeyStore({ file: join(opts.dataDir, LOCAL_KEYS_FILE), adminKey: opts.apiKey }),
    log: opts.log,
  });
  opts.shutdown.addFront('the HTTP API', async () => {
    handler.reject(new Error('the local stack stopped'));
    await api.stop(10_000);
  });
  return { api, handler };
}
