/**
 * The prediction API in a process of its own, for the cold-start and latency benchmarks
 * (`test/bench/api.ts` spawns it with an IPC channel and the usual environment variables).
 *
 *   node bin/run-ts.js test/bench/api-server.ts handler|onnx
 *
 * - `handler`: imports the API Lambda handler (`functions/api/handler.ts`) exactly as deployed: its
 *   module init reads the config, loads the weights and runs the warm-up pass; then serves it
 *   through the local API Gateway stand-in (`lib/local/http-api.ts`), as the local stack does.
 * - `onnx`: the same `createApi` over the onnxruntime engine (lib/model/onnx), to measure what
 *   that engine changes for the API before (or without) it being wired into the handler.
 *
 * Messages: sends `{type:'ready', port, uptimeMs}` once listening; answers `{type:'usage'}` with
 * `{type:'usage', usage}`; exits on `{type:'stop'}` or when the parent goes away.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { LambdaHandler } from '../../lib/local/lambda-context.ts';
import type { FeatureSpec } from '../../lib/model/spec.ts';
import type { FeatureExtractor } from '../../lib/model/types.ts';
import type { NamedWeight } from '../../lib/model/weights.ts';
import { silentLog } from '../../lib/util/log.ts';
import { ownUsage } from './lib/child.ts';

type Handler = LambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>;

const ONNX_MODULE = new URL('../../lib/model/onnx/onnx-extractor.ts', import.meta.url).href;
interface OnnxModule {
  loadOnnxExtractor(opts: {
    weights: readonly NamedWeight[];
    spec: FeatureSpec;
    warmUp?: boolean;
  }): Promise<FeatureExtractor>;
}

async function onnxHandler(): Promise<Handler> {
  const { createApi, createModelCache, loadApiConfig } = await import('../../lib/api/index.ts');
  const { loadModelConfig, loadStorageConfig } = await import('../../lib/config.ts');
  const { createAwsClients } = await import('../../lib/storage/clients.ts');
  const { loadWeights } = await import('../../lib/model/weights.ts');
  const onnx = (await import(ONNX_MODULE)) as OnnxModule;
  // Same order as the Lambda handler: config, clients, weights + warm-up at init, then the API.
  const config = loadApiConfig(process.env);
  const model = loadModelConfig(process.env);
  const clients = createAwsClients(loadStorageConfig(process.env));
  const loaded = await loadWeights(model.weights, { s3: clients.s3 });
  const extractor = await onnx.loadOnnxExtractor({
    weights: loaded.weights,
    spec: {
      model: 'vgg16',
      weights: loaded.weightsId,
      input: [model.inputSize, model.inputSize],
      pooling: model.pooling,
      preprocessing: 'caffe',
      resize: 'bilinear',
    },
    warmUp: true,
  });
  const api = createApi({
    s3: clients.s3,
    sfn: clients.sfn,
    extractor: Promise.resolve(extractor),
    cache: createModelCache({
      s3: clients.s3,
      bucket: config.bucket,
      refreshSeconds: config.modelRefreshSeconds,
    }),
    config,
    log: silentLog,
  });
  return (event, context) => api(event, context);
}

async function main(): Promise<void> {
  const mode = process.argv[2] ?? 'handler';
  let handler: Handler;
  if (mode === 'handler') {
    handler = (await import('../../functions/api/handler.ts')).handler as unknown as Handler;
  } else if (mode === 'onnx') {
    handler = await onnxHandler();
  } else {
    throw new Error(`unknown mode '${mode}' (handler | onnx)`);
  }
  const { startHttpApi } = await import('../../lib/local/http-api.ts');
  const region = process.env.AWS_REGION ?? '';
  const api = await startHttpApi({ port: 0, handler, region, log: silentLog });
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'usage') process.send?.({ type: 'usage', usage: ownUsage() });
    if (m.type === 'stop') void api.stop(1000).finally(() => process.exit(0));
  });
  // The benchmark went away (crash, Ctrl-C): do not linger.
  process.on('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', port: api.port, uptimeMs: performance.now() });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
