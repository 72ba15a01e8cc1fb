import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { TlearnError } from '../errors.ts';
import { LOCAL_DEFAULTS } from '../local/defaults.ts';
import { createS3Client } from '../storage/clients.ts';
import { numberFlag, UsageError } from './args.ts';

/**
 * Which stack the remote commands (`upload`, `status`, `train`, `predict D`, `model`) talk to:
 * the local stack by default, an AWS stack from `cdk-outputs.json`, or whatever flags / env name.
 */

/** Where the local stack listens: the defaults of every remote command. */
export { LOCAL_DEFAULTS };

/** What `npm run deploy` writes (`cdk deploy --outputs-file cdk-outputs.json`). */
export const CDK_OUTPUTS_FILE = 'cdk-outputs.json';

/** Environment variables the remote commands read (after flags, before cdk-outputs.json). */
export const TARGET_ENV = {
  API_URL: 'TLEARN_API_URL',
  API_KEY: 'TLEARN_API_KEY',
  BUCKET: 'TLEARN_BUCKET',
  REGION: 'AWS_REGION',
  S3_ENDPOINT: 'AWS_ENDPOINT_URL',
} as const;

/** Default timeout of every request, seconds (`--timeout`). */
export const DEFAULT_TIMEOUT_SECONDS = 30;

/** parseArgs options every remote command accepts. */
export const TARGET_OPTIONS = {
  endpoint: { type: 'string' },
  'api-key': { type: 'string' },
  bucket: { type: 'string' },
  region: { type: 'string' },
  's3-endpoint': { type: 'string' },
  stack: { type: 'string' },
  local: { type: 'boolean' },
  timeout: { type: 'string' },
} as const;

/** Help text for TARGET_OPTIONS, appended to every remote command's help. */
export const TARGET_HELP = `target (first that applies: flags, then env, then ./${CDK_OUTPUTS_FILE}, else the local stack):
  --endpoint URL       API base URL (env ${TARGET_ENV.API_URL})
  --api-key KEY        API key, sent as x-api-key; required for AWS (env ${TARGET_ENV.API_KEY})
  --bucket NAME        the stack's bucket, for upload and model --rollback (env ${TARGET_ENV.BUCKET})
  --region REGION      AWS region (env ${TARGET_ENV.REGION}; else taken from ${CDK_OUTPUTS_FILE})
  --s3-endpoint URL    S3 endpoint override (env ${TARGET_ENV.S3_ENDPOINT})
  --stack NAME         which stack of ${CDK_OUTPUTS_FILE} when it holds several
  --local              ignore env and ${CDK_OUTPUTS_FILE}: the local stack (${LOCAL_DEFAULTS.apiUrl})
  --timeout SECONDS    timeout of every request (default ${DEFAULT_TIMEOUT_SECONDS})`;

/** The stack a command talks to. */
export interface Target {
  /** `local` when the API is on loopback (the local stack), `aws` otherwise. */
  kind: 'local' | 'aws';
  /** API base URL without a trailing slash (API Gateway URLs keep their stage: `…/prod`). */
  apiUrl: string;
  apiKey?: string;
  /** The API key's id from cdk-outputs.json (its value is not in the outputs). */
  apiKeyId?: string;
  /** Bucket for S3 operations; undefined for an AWS stack named only by `--endpoint`. */
  bucket?: string;
  /** Undefined only when nothing names it (an AWS endpoint on a custom domain, no AWS_REGION). */
  region?: string;
  s3Endpoint?: string;
  /** Where the API URL came from: `--endpoint`, `TLEARN_API_URL`, `cdk-outputs.json (stack X)`, `--local` or `default`. */
  source: string;
  /** Where the bucket came from (same vocabulary as `source`). */
  bucketSource?: string;
  /** Where the S3 endpoint came from: `--s3-endpoint`, `AWS_ENDPOINT_URL` or `default`. */
  s3EndpointSource?: string;
  /** Stack name when cdk-outputs.json was used. */
  stackName?: string;
}

/** Flags as parsed from TARGET_OPTIONS. */
export interface TargetFlags {
  endpoint?: string;
  apiKey?: string;
  bucket?: string;
  region?: string;
  s3Endpoint?: string;
  stack?: string;
  local?: boolean;
}

/** The target cannot be resolved or lacks what a command needs; the message says what to pass. */
export class TargetError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TargetConfig', message, 400, options);
  }
}

type Env = Record<string, string | undefined>;

/** Picks the target flags out of parseArgs values. */
export function targetFlags(values: Record<string, unknown>): TargetFlags {
  const str = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  return {
    endpoint: str('endpoint'),
    apiKey: str('api-key'),
    bucket: str('bucket'),
    region: str('region'),
    s3Endpoint: str('s3-endpoint'),
    stack: str('stack'),
    local: values.local === true,
  };
}

/** `--timeout` in milliseconds (default 30 s). */
export function timeoutMsFlag(values: Record<string, unknown>): number {
  return Math.round(
    numberFlag('timeout', values.timeout, DEFAULT_TIMEOUT_SECONDS, { min: 0.1, max: 3600 }) * 1000,
  );
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Whether a URL points at this machine. */
export function isLoopbackUrl(url: string): boolean {
  return LOOPBACK_HOSTS.has(new URL(url).hostname);
}

function checkUrl(value: string, origin: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (err) {
    const msg = `${origin} must be an http(s) URL (got '${value}')`;
    throw origin.startsWith('--') ? new UsageError(msg) : new TargetError(msg, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    const msg = `${origin} must be an http(s) URL (got '${value}')`;
    throw origin.startsWith('--') ? new UsageError(msg) : new TargetError(msg);
  }
  // API Gateway URLs end in the stage with a slash; paths are appended, so drop it.
  return value.replace(/\/+$/, '');
}

/** One stack's outputs from cdk-outputs.json. */
export interface StackOutputs {
  stackName: string;
  apiUrl: string;
  bucket?: string;
  apiKeyId?: string;
  stateMachineArn?: string;
}

/**
 * Looks up an output by logical id. CfnOutputs declared inside a construct get an 8-hex-digit
 * suffix (`ApiUrl1A2B3C4D`), so that form is accepted too.
 */
function output(outputs: Record<string, unknown>, name: string): string | undefined {
  const exact = outputs[name];
  if (typeof exact === 'string') return exact;
  const re = new RegExp(`^${name}[0-9A-F]{8}$`);
  for (const [k, v] of Object.entries(outputs)) if (re.test(k) && typeof v === 'string') return v;
  return undefined;
}

/**
 * Reads the stacks with an `ApiUrl` output from `cwd/cdk-outputs.json`.
 * Returns undefined when the file does not exist; throws TargetError when it does not parse.
 */
export function readCdkOutputs(cwd: string): StackOutputs[] | undefined {
  const file = join(cwd, CDK_OUTPUTS_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TargetError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new TargetError(`${file} is not valid JSON; re-run \`npm run deploy\` or delete it`, {
      cause: err,
    });
  }
  if (typeof parsed !== 'object' || parsed === null) return [];
  const stacks: StackOutputs[] = [];
  for (const [stackName, outputs] of Object.entries(parsed)) {
    if (typeof outputs !== 'object' || outputs === null) continue;
    const o = outputs as Record<string, unknown>;
    const apiUrl = output(o, 'ApiUrl');
    if (apiUrl === undefined) continue;
    stacks.push({
      stackName,
      apiUrl,
      bucket: output(o, 'BucketName'),
      apiKeyId: output(o, 'ApiKeyId'),
      stateMachineArn: output(o, 'StateMachineArn'),
    });
  }
  return stacks;
}

/** Region from `https://x.execute-api.REGION.amazonaws.com/…` or `arn:aws:states:REGION:…`. */
export function regionFromAws(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const arn = /^arn:aws[a-z-]*:[a-z0-9-]+:([a-z]{2}(?:-[a-z]+)+-\d):/.exec(value);
  if (arn) return arn[1];
  const host = /^https?:\/\/[^/]*?\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com/.exec(value);
  return host?.[1];
}

function pickStack(stacks: StackOutputs[], wanted: string | undefined): StackOutputs {
  const names = stacks.map((s) => s.stackName).join(', ');
  if (wanted !== undefined) {
    const s = stacks.find((x) => x.stackName === wanted);
    if (!s)
      throw new TargetError(
        `${CDK_OUTPUTS_FILE} has no stack '${wanted}' with an ApiUrl (has: ${names || 'none'})`,
      );
    return s;
  }
  const [only, ...more] = stacks;
  if (only === undefined)
    throw new TargetError(
      `${CDK_OUTPUTS_FILE} has no stack with an ApiUrl output; re-run \`npm run deploy\`, pass --endpoint, or --local`,
    );
  if (more.length > 0)
    throw new TargetError(`${CDK_OUTPUTS_FILE} has several stacks (${names}): pass --stack NAME`);
  return only;
}

const sameUrl = (a: string, b: string): boolean => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/**
 * Resolves the stack to talk to. Each setting takes the first of: flags (`--endpoint`,
 * `--api-key`, `--bucket`, `--region`, `--s3-endpoint`), env (`TLEARN_API_URL`, `TLEARN_API_KEY`,
 * `TLEARN_BUCKET`, `AWS_REGION`, `AWS_ENDPOINT_URL`), `cwd/cdk-outputs.json`, then the local stack
 * defaults (LOCAL_DEFAULTS). `--local` skips env and cdk-outputs.json for the API URL.
 *
 * The stack's outputs (bucket, API key id, region) are used only when the API URL is the
 * stack's own, so an explicit `--endpoint` never writes into another stack's bucket.
 * Missing API key or bucket are not errors here (not every command needs them): see
 * `requireApiKey` and `requireS3`.
 *
 * @example resolveTarget({}, {}, '/tmp/empty') // { kind: 'local', apiUrl: 'http://127.0.0.1:3000', source: 'default', … }
 */
export function resolveTarget(flags: TargetFlags, env: Env, cwd: string): Target {
  const fromEnv = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };

  let apiUrl: string;
  let source: string;
  let stack: StackOutputs | undefined;
  if (flags.endpoint !== undefined) {
    apiUrl = checkUrl(flags.endpoint, '--endpoint');
    source = '--endpoint';
  } else if (flags.local) {
    apiUrl = LOCAL_DEFAULTS.apiUrl;
    source = '--local';
  } else if (fromEnv(TARGET_ENV.API_URL) !== undefined) {
    apiUrl = checkUrl(fromEnv(TARGET_ENV.API_URL) ?? '', TARGET_ENV.API_URL);
    source = TARGET_ENV.API_URL;
  } else {
    const stacks = readCdkOutputs(cwd);
    if (stacks !== undefined) {
      stack = pickStack(stacks, flags.stack);
      apiUrl = checkUrl(stack.apiUrl, `ApiUrl of stack ${stack.stackName} in ${CDK_OUTPUTS_FILE}`);
      source = `${CDK_OUTPUTS_FILE} (stack ${stack.stackName})`;
    } else {
      apiUrl = LOCAL_DEFAULTS.apiUrl;
      source = 'default';
    }
  }
  const kind = isLoopbackUrl(apiUrl) ? 'local' : 'aws';

  // An explicit AWS URL still picks up its stack's bucket when it is the same stack.
  if (stack === undefined && kind === 'aws' && !flags.local) {
    let stacks: StackOutputs[] | undefined;
    try {
      stacks = readCdkOutputs(cwd);
    } catch {
      stacks = undefined; // an unreadable file only matters when it is the source
    }
    stack = stacks?.find(
      (s) => sameUrl(s.apiUrl, apiUrl) && (flags.stack === undefined || s.stackName === flags.stack),
    );
  }
  const stackSource = stack ? `${CDK_OUTPUTS_FILE} (stack ${stack.stackName})` : undefined;

  const apiKey = flags.apiKey ?? fromEnv(TARGET_ENV.API_KEY);

  let bucket: string | undefined;
  let bucketSource: string | undefined;
  if (flags.bucket !== undefined) [bucket, bucketSource] = [flags.bucket, '--bucket'];
  else if (fromEnv(TARGET_ENV.BUCKET) !== undefined)
    [bucket, bucketSource] = [fromEnv(TARGET_ENV.BUCKET), TARGET_ENV.BUCKET];
  else if (stack?.bucket !== undefined) [bucket, bucketSource] = [stack.bucket, stackSource];
  else if (kind === 'local') [bucket, bucketSource] = [LOCAL_DEFAULTS.bucket, 'default'];

  const region =
    flags.region ??
    fromEnv(TARGET_ENV.REGION) ??
    regionFromAws(stack?.stateMachineArn) ??
    regionFromAws(stack?.apiUrl) ??
    (kind === 'aws' ? regionFromAws(apiUrl) : LOCAL_DEFAULTS.region);

  let s3Endpoint: string | undefined;
  let s3EndpointSource: string | undefined;
  if (flags.s3Endpoint !== undefined)
    [s3Endpoint, s3EndpointSource] = [checkUrl(flags.s3Endpoint, '--s3-endpoint'), '--s3-endpoint'];
  else if (fromEnv(TARGET_ENV.S3_ENDPOINT) !== undefined)
    [s3Endpoint, s3EndpointSource] = [
      checkUrl(fromEnv(TARGET_ENV.S3_ENDPOINT) ?? '', TARGET_ENV.S3_ENDPOINT),
      TARGET_ENV.S3_ENDPOINT,
    ];
  else if (kind === 'local') [s3Endpoint, s3EndpointSource] = [LOCAL_DEFAULTS.s3Endpoint, 'default'];

  const target: Target = { kind, apiUrl, source };
  if (apiKey !== undefined) target.apiKey = apiKey;
  if (stack?.apiKeyId !== undefined) target.apiKeyId = stack.apiKeyId;
  if (bucket !== undefined) target.bucket = bucket;
  if (bucketSource !== undefined) target.bucketSource = bucketSource;
  if (region !== undefined) target.region = region;
  if (s3Endpoint !== undefined) target.s3Endpoint = s3Endpoint;
  if (s3EndpointSource !== undefined) target.s3EndpointSource = s3EndpointSource;
  if (stack !== undefined) target.stackName = stack.stackName;
  return target;
}

function origin(source: string, kind: Target['kind']): string {
  if (source === 'default') return kind === 'local' ? 'default; start it with `npm start`' : 'default';
  const from = `from ${source}`;
  return kind === 'local' ? `${from}; start it with \`npm start\`` : from;
}

/**
 * Names the API side of a target for messages.
 * @example describeTarget(t) // 'the local stack at http://127.0.0.1:3000 (default; start it with `npm start`)'
 */
export function describeTarget(t: Target): string {
  const what = t.kind === 'local' ? 'the local stack' : 'the AWS stack';
  return `${what} at ${t.apiUrl} (${origin(t.source, t.kind)})`;
}

/**
 * Names the S3 side of a target for messages, with where the bucket and endpoint came from.
 * @example describeS3Target(t) // 's3://tlearn-local at http://127.0.0.1:4566, the local stack (default; start it with `npm start`)'
 */
export function describeS3Target(t: Target): string {
  const where = t.s3Endpoint ? ` at ${t.s3Endpoint}` : t.region ? ` in ${t.region}` : '';
  const what = t.kind === 'local' ? 'the local stack' : 'the AWS stack';
  const bucketFrom = t.bucketSource ?? t.source;
  const endpointFrom = t.s3EndpointSource;
  const parts: string[] = [];
  if (endpointFrom === undefined || endpointFrom === bucketFrom)
    parts.push(bucketFrom === 'default' ? 'default' : `from ${bucketFrom}`);
  else {
    if (bucketFrom !== 'default') parts.push(`bucket from ${bucketFrom}`);
    if (endpointFrom !== 'default') parts.push(`endpoint from ${endpointFrom}`);
  }
  if (t.kind === 'local') parts.push('start it with `npm start`');
  return `s3://${t.bucket ?? '?'}${where}, ${what} (${parts.join('; ')})`;
}

/**
 * The API key the target needs: none for the local stack (unless one was given), required for
 * AWS. The error shows the exact command that prints the key's value.
 */
export function requireApiKey(t: Target): string | undefined {
  if (t.apiKey !== undefined || t.kind === 'local') return t.apiKey;
  const id = t.apiKeyId ?? '<api-key-id>';
  const region = t.region ? ` --region ${t.region}` : '';
  const cmd = `aws apigateway get-api-key --api-key ${id} --include-value --query value --output text${region}`;
  const where = t.apiKeyId
    ? `its id ${t.apiKeyId} is in ${CDK_OUTPUTS_FILE}`
    : `find the id with \`aws apigateway get-api-keys\` or in ${CDK_OUTPUTS_FILE} (ApiKeyId)`;
  throw new TargetError(
    `${describeTarget(t)} needs an API key: pass --api-key KEY or set ${TARGET_ENV.API_KEY} (${where}):\n` +
      `  export ${TARGET_ENV.API_KEY}=$(${cmd})`,
  );
}

/** What S3 operations need. */
export interface S3Target {
  bucket: string;
  region: string;
  endpoint: string | undefined;
}

/** Bucket, region and endpoint for S3 operations; TargetError naming the flags when missing. */
export function requireS3(t: Target): S3Target {
  if (t.bucket === undefined)
    throw new TargetError(
      `no bucket for ${describeTarget(t)}: pass --bucket NAME or set ${TARGET_ENV.BUCKET} ` +
        `(or run where ${CDK_OUTPUTS_FILE} of this stack is)`,
    );
  if (t.region === undefined)
    throw new TargetError(
      `no AWS region for ${describeTarget(t)}: pass --region or set ${TARGET_ENV.REGION}`,
    );
  return { bucket: t.bucket, region: t.region, endpoint: t.s3Endpoint };
}

/**
 * An S3 client for the target with a timeout on every call. Loopback endpoints (the local
 * stack) get path-style addressing and fixed dummy credentials; AWS uses the default
 * credential chain and follows region redirects (AWS_REGION may name another region than the stack's).
 */
export function createTargetS3Client(s3: S3Target, timeoutMs: number): S3Client {
  const loopback = s3.endpoint !== undefined && isLoopbackUrl(s3.endpoint);
  return createS3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    timeoutMs,
    maxConnectMs: 5_000,
    localCredentials: loopback,
    followRegionRedirects: !loopback,
  });
}
