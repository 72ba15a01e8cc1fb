import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../lib/cli/args.ts';
import {
  CDK_OUTPUTS_FILE,
  describeS3Target,
  describeTarget,
  LOCAL_DEFAULTS,
  regionFromAws,
  requireApiKey,
  requireS3,
  resolveTarget,
  TargetError,
  targetFlags,
} from '../../../lib/cli/target.ts';

const AWS_URL = 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/';
const OUTPUTS = {
  TlearnStack: {
    ApiUrl: AWS_URL,
    BucketName: 'tlearn-bucket-xyz',
    ApiKeyId: 'k3y1d',
    StateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:train-TlearnStack',
  },
};

describe('resolveTarget', () => {
  let cwd: string;
  beforeEach(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'tlearn-target-'));
  });
  afterEach(async () => {
    await rm(cwd, { recursive: true, force: true });
  });
  const writeOutputs = (value: unknown) => writeFile(join(cwd, CDK_OUTPUTS_FILE), JSON.stringify(value));

  it('falls back to the local stack defaults when nothing is configured', () => {
    const t = resolveTarget({}, {}, cwd);

    expect(t).toEqual({
      kind: 'local',
      apiUrl: LOCAL_DEFAULTS.apiUrl,
      bucket: LOCAL_DEFAULTS.bucket,
      bucketSource: 'default',
      region: LOCAL_DEFAULTS.region,
      s3Endpoint: LOCAL_DEFAULTS.s3Endpoint,
      s3EndpointSource: 'default',
      source: 'default',
    });
    expect(describeTarget(t)).toBe(
      'the local stack at http://127.0.0.1:3000 (default; start it with `npm start`)',
    );
    expect(requireApiKey(t)).toBeUndefined();
  });

  it('uses cdk-outputs.json over the defaults, taking the region from the state machine ARN', async () => {
    await writeOutputs(OUTPUTS);

    const t = resolveTarget({}, {}, cwd);

    expect(t.kind).toBe('aws');
    expect(t.apiUrl).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/prod');
    expect(t.bucket).toBe('tlearn-bucket-xyz');
    expect(t.region).toBe('eu-west-1');
    expect(t.apiKeyId).toBe('k3y1d');
    expect(t.s3Endpoint).toBeUndefined();
    expect(t.source).toBe('cdk-outputs.json (stack TlearnStack)');
    expect(describeTarget(t)).toContain('from cdk-outputs.json (stack TlearnStack)');
  });

  it('uses env over cdk-outputs.json', async () => {
    await writeOutputs(OUTPUTS);
    const env = {
      TLEARN_API_URL: 'https://other.example.com/v1',
      TLEARN_API_KEY: 'env-key',
      TLEARN_BUCKET: 'env-bucket',
      AWS_REGION: 'us-west-2',
    };

    const t = resolveTarget({}, env, cwd);

    expect(t).toMatchObject({
      kind: 'aws',
      apiUrl: 'https://other.example.com/v1',
      apiKey: 'env-key',
      bucket: 'env-bucket',
      bucketSource: 'TLEARN_BUCKET',
      region: 'us-west-2',
      source: 'TLEARN_API_URL',
    });
    // Another stack's URL: the outputs' key id must not leak into it.
    expect(t.apiKeyId).toBeUndefined();
  });

  it('uses flags over env and cdk-outputs.json', async () => {
    await writeOutputs(OUTPUTS);
    const env = {
      TLEARN_API_URL: 'https://env.example.com',
      TLEARN_API_KEY: 'env-key',
      TLEARN_BUCKET: 'env-b',
    };
    const flags = targetFlags({
      endpoint: 'http://127.0.0.1:3999/',
      'api-key': 'flag-key',
      bucket: 'flag-bucket',
      region: 'ap-south-1',
      's3-endpoint': 'http://127.0.0.1:4999',
    });

    const t = resolveTarget(flags, env, cwd);

    expect(t).toEqual({
      kind: 'local',
      apiUrl: 'http://127.0.0.1:3999',
      apiKey: 'flag-key',
      bucket: 'flag-bucket',
      bucketSource: '--bucket',
      region: 'ap-south-1',
      s3Endpoint: 'http://127.0.0.1:4999',
      s3EndpointSource: '--s3-endpoint',
      source: '--endpoint',
    });
  });

  it('takes each setting separately: an env API key with the stack from cdk-outputs.json', async () => {
    await writeOutputs(OUTPUTS);

    const t = resolveTarget({}, { TLEARN_API_KEY: 'secret' }, cwd);

    expect(t.apiUrl).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/prod');
    expect(requireApiKey(t)).toBe('secret');
    expect(requireS3(t)).toEqual({ bucket: 'tlearn-bucket-xyz', region: 'eu-west-1', endpoint: undefined });
  });

  it('keeps the stack bucket for an explicit --endpoint that is the same stack, not for another', async () => {
    await writeOutputs(OUTPUTS);

    const same = resolveTarget(targetFlags({ endpoint: AWS_URL }), {}, cwd);
    const other = resolveTarget(
      targetFlags({ endpoint: 'https://zzz.execute-api.eu-west-1.amazonaws.com/prod' }),
      {},
      cwd,
    );

    expect(same.bucket).toBe('tlearn-bucket-xyz');
    expect(other.bucket).toBeUndefined();
    expect(other.region).toBe('eu-west-1');
    expect(() => requireS3(other)).toThrow(/pass --bucket NAME or set TLEARN_BUCKET/);
  });

  it('ignores env and cdk-outputs.json for the API with --local', async () => {
    await writeOutputs(OUTPUTS);

    const t = resolveTarget(targetFlags({ local: true }), { TLEARN_API_URL: 'https://env.example.com' }, cwd);

    expect(t.kind).toBe('local');
    expect(t.apiUrl).toBe(LOCAL_DEFAULTS.apiUrl);
    expect(t.bucket).toBe(LOCAL_DEFAULTS.bucket);
    expect(t.source).toBe('--local');
  });

  it('asks for --stack when cdk-outputs.json holds several stacks, and picks the one named', async () => {
    await writeOutputs({
      A: { ApiUrl: 'https://a.execute-api.us-east-1.amazonaws.com/prod', BucketName: 'a' },
      B: { ApiUrlDEADBEEF: 'https://b.execute-api.us-east-2.amazonaws.com/prod', BucketNameCAFEF00D: 'b' },
      Unrelated: { Something: 'x' },
    });

    expect(() => resolveTarget({}, {}, cwd)).toThrow(/several stacks \(A, B\): pass --stack NAME/);
    const b = resolveTarget(targetFlags({ stack: 'B' }), {}, cwd);
    expect(b).toMatchObject({ bucket: 'b', region: 'us-east-2', stackName: 'B' });
  });

  it('names the file when cdk-outputs.json does not parse', async () => {
    await writeFile(join(cwd, CDK_OUTPUTS_FILE), '{ not json');

    expect(() => resolveTarget({}, {}, cwd)).toThrow(TargetError);
    expect(() => resolveTarget({}, {}, cwd)).toThrow(/cdk-outputs\.json is not valid JSON/);
  });

  it('requires an API key for AWS and prints the command that reads its value', async () => {
    await writeOutputs(OUTPUTS);
    const t = resolveTarget({}, {}, cwd);

    expect(() => requireApiKey(t)).toThrow(
      'aws apigateway get-api-key --api-key k3y1d --include-value --query value --output text --region eu-west-1',
    );
  });

  it('rejects a malformed --endpoint as a usage error and a malformed env URL naming the variable', () => {
    expect(() => resolveTarget(targetFlags({ endpoint: 'not a url' }), {}, cwd)).toThrow(UsageError);
    expect(() => resolveTarget({}, { TLEARN_API_URL: 'ftp://x' }, cwd)).toThrow(
      /TLEARN_API_URL must be an http\(s\) URL/,
    );
  });

  it('describes the S3 side with its endpoint and where bucket and endpoint came from', () => {
    const envBucket = resolveTarget({}, { TLEARN_BUCKET: 'mine' }, cwd);
    const both = resolveTarget(targetFlags({ bucket: 'b' }), { AWS_ENDPOINT_URL: 'http://127.0.0.1:9' }, cwd);
    const defaults = resolveTarget({}, {}, cwd);

    expect(describeS3Target(envBucket)).toBe(
      's3://mine at http://127.0.0.1:4566, the local stack (bucket from TLEARN_BUCKET; start it with `npm start`)',
    );
    expect(describeS3Target(both)).toBe(
      's3://b at http://127.0.0.1:9, the local stack (bucket from --bucket; endpoint from AWS_ENDPOINT_URL; start it with `npm start`)',
    );
    expect(describeS3Target(defaults)).toBe(
      's3://tlearn-local at http://127.0.0.1:4566, the local stack (default; start it with `npm start`)',
    );
  });
});

describe('regionFromAws', () => {
  it('reads regions from ARNs and execute-api URLs and nothing else', () => {
    expect(regionFromAws('arn:aws:states:ap-southeast-2:1:stateMachine:x')).toBe('ap-southeast-2');
    expect(regionFromAws('https://a1.execute-api.us-gov-west-1.amazonaws.com/prod')).toBe('us-gov-west-1');
    expect(regionFromAws('https://api.example.com/prod')).toBeUndefined();
    expect(regionFromAws(undefined)).toBeUndefined();
  });
});
