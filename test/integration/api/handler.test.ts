import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { makeImage } from '../../helpers/images.ts';
import { bodyOf, errorOf, loadEvent, makeHead, predictBinary, promote, seedModel } from './support.ts';

const V1 = '20261128T100000Z-aaaaaa';

const context: Context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'tlearn-api',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:tlearn-api',
  memoryLimitInMB: '3008',
  awsRequestId: 'f00dfeed-0000-4000-8000-000000000001',
  logGroupName: '/aws/lambda/tlearn-api',
  logStreamName: '2026/11/28/[$LATEST]abcdef',
  getRemainingTimeInMillis: () => 29_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
};

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

/** Runs `fn` and returns what was written to stdout meanwhile (Powertools logs and EMF metrics). */
async function captureStdout<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; lines: Record<string, unknown>[] }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  try {
    const result = await fn();
    return { result, lines: parseJsonLines(chunks.join('')) };
  } finally {
    process.stdout.write = write;
  }
}

function parseJsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('functions/api/handler (middy + Powertools around lib/api)', () => {
  let em: Emulator;
  let handler: Handler;
  let keysDir: string;

  beforeAll(async () => {
    em = await startEmulator();
    // The events' API key id (events/api-*.json) as an admin key of a local key file: API
    // Gateway's own keys are what the function reads on AWS (lib/api/keys-aws.ts).
    keysDir = await mkdtemp(join(tmpdir(), 'tlearn-keys-'));
    const keysFile = join(keysDir, 'api-keys.json');
    const adminKey = { id: 'k1l2m3n4o5', name: 'events', role: 'admin', datasets: [], enabled: true };
    await writeFile(keysFile, JSON.stringify([{ ...adminKey, createdAt: null, value: 'secret' }]));
    Object.assign(process.env, {
      TLEARN_API_KEYS_FILE: keysFile,
      TLEARN_BUCKET: em.bucket,
      AWS_REGION: em.region,
      AWS_ENDPOINT_URL: em.endpoint,
      TLEARN_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:train-test',
      TLEARN_WEIGHTS: 'random:1',
      TLEARN_INPUT_SIZE: '32',
      TLEARN_POOLING: 'avg',
      TLEARN_MODEL_REFRESH_SECONDS: '0',
      POWERTOOLS_LOG_LEVEL: 'INFO',
    });
    // The module loads the extractor (and warms it up) at import, like a Lambda cold start.
    ({ handler } = (await import('../../../functions/api/handler.ts')) as { handler: Handler });
  });

  afterAll(async () => {
    await em?.stop();
    await rm(keysDir, { recursive: true, force: true });
  });

  it('answers /health with the extractor loaded at init', async () => {
    const res = await handler(loadEvent('api-health'), context);
    expect(res.statusCode).toBe(200);
    expect(bodyOf(res)).toMatchObject({
      status: 'ok',
      spec: 'vgg16/random-1/32x32/avg/caffe/bilinear',
      randomWeights: true,
    });
  });

  it('predicts and publishes Predictions and PredictionLatencyMs', async () => {
    // Prepare
    const spec = 'vgg16/random-1/32x32/avg/caffe/bilinear';
    await seedModel(em.clients.s3, em.bucket, 'pets', V1, makeHead(['cat', 'dog'], 512, spec, 5));
    await promote(em.clients.s3, em.bucket, 'pets', V1);
    const png = await makeImage('png', { width: 32, height: 32, color: [200, 30, 30] });
    // Act
    const { result, lines } = await captureStdout(() => handler(predictBinary('pets', png), context));
    // Assess
    expect(result.statusCode).toBe(200);
    expect(bodyOf<{ model: { version: string } }>(result).model.version).toBe(V1);
    const emf = lines.find((l) => '_aws' in l && 'Predictions' in l);
    expect(emf).toMatchObject({ Predictions: 1, service: 'api' });
    expect(typeof emf?.PredictionLatencyMs).toBe('number');
  });

  it('counts a client error, logs it at info with the Lambda context, and answers JSON', async () => {
    const { result, lines } = await captureStdout(() =>
      handler(predictBinary('Nope', Buffer.from('x')), context),
    );
    expect(result.statusCode).toBe(400);
    expect(errorOf(result).code).toBe('InvalidDatasetName');
    expect(lines.find((l) => '_aws' in l)).toMatchObject({ ClientErrors: 1 });
    const rejected = lines.find((l) => l.message === 'request rejected');
    expect(rejected).toMatchObject({ level: 'INFO', function_request_id: context.awsRequestId, status: 400 });
    // The API Gateway request id is the correlation id of every line the request logs.
    const event = predictBinary('Nope', Buffer.from('x'));
    expect(rejected?.correlation_id).toBe(event.requestContext.requestId);
    expect(lines.some((l) => l.level === 'ERROR')).toBe(false);
  });

  it('manages scoped keys from the sample events, and refuses a key outside its scope', async () => {
    const created = await handler(loadEvent('api-create-key'), context);
    const key = bodyOf<{ id: string; value: string; role: string; datasets: string[] }>(created);
    const listed = await handler(loadEvent('api-list-keys'), context);
    const unknown = await handler(loadEvent('api-revoke-key'), context);
    // The sample training request made with the new predict key's id: 403.
    const training = loadEvent('api-start-training');
    training.requestContext.identity.apiKeyId = key.id;
    const refused = await handler(training, context);

    expect(created.statusCode).toBe(201);
    expect(key).toMatchObject({ role: 'predict', datasets: ['pets'] });
    expect(bodyOf<{ keys: Array<{ id: string }> }>(listed).keys.map((k) => k.id)).toContain(key.id);
    expect(unknown.statusCode).toBe(404);
    expect(errorOf(unknown).code).toBe('KeyNotFound');
    expect(refused.statusCode).toBe(403);
    expect(errorOf(refused).code).toBe('Forbidden');
  });
});
