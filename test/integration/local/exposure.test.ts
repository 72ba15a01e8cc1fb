/**
 * The local stack's ports as a web page in the developer's browser could reach them (the keyless
 * API treats every request as admin): cross-site requests, `text/plain` bodies and DNS rebinding
 * (a `Host` the page controls) are refused on the API, the S3 + SQS endpoint and the Step
 * Functions endpoint, while same-origin pages, SDK clients and curl keep working.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../../lib/local/stack.ts';
import { startTestStack } from '../../helpers/stack.ts';

interface Answer {
  status: number;
  text: string;
}

/** A request with full control over Host and Origin (fetch forbids setting Host). */
function send(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, base),
      { method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const codeOf = (a: Answer): string | undefined => {
  try {
    return (JSON.parse(a.text) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
};

describe('the local stack against pages in the browser', () => {
  let stack: LocalStack;
  let dataDir: string;
  let apiPort: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tlearn-exposure-'));
    stack = await startTestStack(dataDir);
    apiPort = new URL(stack.apiUrl).port;
  });

  afterAll(async () => {
    await stack?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  describe('the API', () => {
    it('refuses a text/plain POST from a page on another origin', async () => {
      // act
      const res = await send(stack.apiUrl, '/datasets/pets/batches', {
        method: 'POST',
        headers: { origin: 'https://evil.example', 'content-type': 'text/plain;charset=UTF-8' },
        body: '{"prefix":"datasets/pets/"}',
      });

      // assess
      expect(res.status).toBe(403);
      expect(codeOf(res)).toBe('CrossOriginRequest');
    });

    it('refuses a bodiless POST from another origin and a no-cors GET from another site', async () => {
      // act
      const training = await send(stack.apiUrl, '/datasets/pets/trainings', {
        method: 'POST',
        headers: { origin: 'null' },
      });
      const image = await send(stack.apiUrl, '/datasets/pets', {
        headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' },
      });
      const link = await send(stack.apiUrl, '/', {
        headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
      });

      // assess
      expect(training.status).toBe(403);
      expect(codeOf(training)).toBe('CrossOriginRequest');
      expect(image.status).toBe(403);
      expect(codeOf(image)).toBe('CrossOriginRequest');
      expect(codeOf(link)).not.toBe('CrossOriginRequest');
    });

    it('answers 415 to a JSON body sent as text/plain even without an Origin', async () => {
      // act
      const res = await send(stack.apiUrl, '/datasets/pets/batches', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: '{"prefix":"datasets/pets/"}',
      });

      // assess
      expect(res.status).toBe(415);
      expect(codeOf(res)).toBe('UnsupportedMediaType');
    });

    it('refuses a Host that is not loopback (DNS rebinding) with 421 in the API error shape', async () => {
      // act
      const rebound = await send(stack.apiUrl, '/datasets', { headers: { host: `evil.example:${apiPort}` } });
      const localhost = await send(stack.apiUrl, '/datasets', { headers: { host: `localhost:${apiPort}` } });
      const v6 = await send(stack.apiUrl, '/datasets', { headers: { host: `[::1]:${apiPort}` } });
      const tunnel = await send(stack.apiUrl, '/datasets', { headers: { host: 'localhost:8000' } });

      // assess
      expect(rebound.status).toBe(421);
      expect(JSON.parse(rebound.text)).toEqual({
        error: { code: 'MisdirectedRequest', message: expect.stringContaining(`127.0.0.1:${apiPort}`) },
      });
      expect(localhost.status).toBe(200);
      expect(v6.status).toBe(200);
      expect(tunnel.status).toBe(200);
    });

    it('still serves its own page: a same-origin JSON POST works', async () => {
      // act
      const res = await send(stack.apiUrl, '/datasets/pets/uploads', {
        method: 'POST',
        headers: {
          origin: stack.apiUrl,
          'sec-fetch-site': 'same-origin',
          'content-type': 'application/json',
        },
        body: JSON.stringify({ files: [{ label: 'cat', name: 'a.png', size: 10 }] }),
      });

      // assess
      expect(res.status).toBe(200);
    });
  });

  describe('the S3 + SQS endpoint', () => {
    it('refuses a rebound Host, a page of another origin, and a form POST from any page', async () => {
      // prepare
      const awsPort = new URL(stack.awsEndpoint).port;
      const queue = '/000000000000/tlearn-ingest';
      const form = 'Action=SendMessage&MessageBody=x';

      // act
      const rebound = await send(stack.awsEndpoint, `/${stack.bucket}?list-type=2`, {
        headers: { host: `evil.example:${awsPort}` },
      });
      const foreign = await send(stack.awsEndpoint, `/${stack.bucket}/datasets/pets/cat/x.png`, {
        method: 'PUT',
        headers: { origin: 'https://evil.example', 'content-type': 'image/png' },
        body: 'x',
      });
      const sqs = await send(stack.awsEndpoint, queue, {
        method: 'POST',
        headers: { origin: 'http://localhost:8080', 'content-type': 'application/x-www-form-urlencoded' },
        body: form,
      });
      const unsigned = await send(stack.awsEndpoint, `/${stack.bucket}/datasets/pets/cat/y.png`, {
        method: 'PUT',
        headers: { origin: stack.apiUrl, 'content-type': 'image/png' },
        body: 'y',
      });
      const sdkLike = await send(stack.awsEndpoint, `/${stack.bucket}?list-type=2`);

      // assess
      expect(rebound.status).toBe(421);
      expect(foreign.status).toBe(403);
      expect(sqs.status).toBe(403);
      expect(unsigned.status).toBe(403);
      expect(sdkLike.status).toBe(200);
    });
  });

  describe('the Step Functions endpoint', () => {
    it('refuses a text/plain POST, any Origin and a rebound Host', async () => {
      // prepare
      const sfnPort = new URL(stack.sfnEndpoint).port;
      const body = JSON.stringify({
        stateMachineArn: stack.stateMachineArn,
        input: JSON.stringify({ dataset: 'pets', trigger: 'manual', requestedAt: new Date().toISOString() }),
      });
      const target = { 'x-amz-target': 'AWSStepFunctions.StartExecution' };

      // act
      const plain = await send(stack.sfnEndpoint, '/', {
        method: 'POST',
        headers: { ...target, 'content-type': 'text/plain' },
        body,
      });
      const page = await send(stack.sfnEndpoint, '/', {
        method: 'POST',
        headers: { ...target, 'content-type': 'application/x-amz-json-1.0', origin: 'http://127.0.0.1:3000' },
        body,
      });
      const rebound = await send(stack.sfnEndpoint, '/', {
        method: 'POST',
        headers: { ...target, 'content-type': 'application/x-amz-json-1.0', host: `evil.example:${sfnPort}` },
        body: JSON.stringify({ stateMachineArn: stack.stateMachineArn }),
      });
      const sdkLike = await send(stack.sfnEndpoint, '/', {
        method: 'POST',
        headers: {
          'x-amz-target': 'AWSStepFunctions.ListExecutions',
          'content-type': 'application/x-amz-json-1.0',
        },
        body: JSON.stringify({ stateMachineArn: stack.stateMachineArn }),
      });

      // assess
      expect(plain.status).toBe(415);
      expect(page.status).toBe(403);
      expect(rebound.status).toBe(421);
      expect(sdkLike.status).toBe(200);
      expect(JSON.parse(sdkLike.text)).toEqual({ executions: [] });
    });
  });
});
