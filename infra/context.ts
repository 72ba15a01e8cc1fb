import { RemovalPolicy } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
import { POOLINGS, type Pooling, PRECISIONS, type Precision } from '../lib/model/spec.ts';
import type { TlearnStackProps } from './stack.ts';

/**
 * The `tlearn:*` context keys `infra/app.ts` reads (`cdk synth -c tlearn:removalPolicy=destroy`,
 * or cdk.json's `context`). Values given on the command line arrive as strings.
 */
export const CONTEXT_KEYS = {
  stackName: 'tlearn:stackName',
  removalPolicy: 'tlearn:removalPolicy',
  logRetentionDays: 'tlearn:logRetentionDays',
  noncurrentVersionDays: 'tlearn:noncurrentVersionDays',
  captureDays: 'tlearn:captureDays',
  pooling: 'tlearn:pooling',
  precision: 'tlearn:precision',
  inputSize: 'tlearn:inputSize',
  baseModelUri: 'tlearn:baseModelUri',
  extractConcurrency: 'tlearn:extractConcurrency',
  settleSeconds: 'tlearn:settleSeconds',
  pollSeconds: 'tlearn:pollSeconds',
  maxRounds: 'tlearn:maxRounds',
  maxRetrains: 'tlearn:maxRetrains',
  refitOnAll: 'tlearn:refitOnAll',
  apiRateLimit: 'tlearn:apiRateLimit',
  apiBurstLimit: 'tlearn:apiBurstLimit',
  apiQuotaPerDay: 'tlearn:apiQuotaPerDay',
  apiStageRateLimit: 'tlearn:apiStageRateLimit',
  apiStageBurstLimit: 'tlearn:apiStageBurstLimit',
  manageApiCloudWatchRole: 'tlearn:manageApiCloudWatchRole',
  alarmTopicArn: 'tlearn:alarmTopicArn',
  monitoring: 'tlearn:monitoring',
  inboxPrefix: 'tlearn:inboxPrefix',
} as const;

/** @default stack name */
export const DEFAULT_STACK_NAME = 'Tlearn';

/** The stack name and props the context asks for; unset keys keep the stack's defaults. */
export function stackSettingsFromContext(node: Node): { stackName: string; props: TlearnStackProps } {
  const get = (key: string): unknown => {
    const v: unknown = node.tryGetContext(key);
    return v === '' ? undefined : v;
  };
  const str = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new Error(`context ${key} must be a string (got ${JSON.stringify(v)})`);
    return v;
  };
  const num = (key: string): number | undefined => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    const n = typeof v === 'number' ? v : Number(v);
    if (typeof v === 'boolean' || !Number.isFinite(n)) {
      throw new Error(`context ${key} must be a number (got ${JSON.stringify(v)})`);
    }
    return n;
  };
  const bool = (key: string): boolean | undefined => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    throw new Error(`context ${key} must be true or false (got ${JSON.stringify(v)})`);
  };

  const stackName = str(CONTEXT_KEYS.stackName) ?? DEFAULT_STACK_NAME;
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stackName)) {
    throw new Error(
      `context ${CONTEXT_KEYS.stackName} must be a CloudFormation stack name (got '${stackName}')`,
    );
  }
  const removal = str(CONTEXT_KEYS.removalPolicy) ?? 'retain';
  if (removal !== 'retain' && removal !== 'destroy') {
    throw new Error(`context ${CONTEXT_KEYS.removalPolicy} must be 'retain' or 'destroy' (got '${removal}')`);
  }
  const retentionDays = num(CONTEXT_KEYS.logRetentionDays);
  if (retentionDays !== undefined && !Object.values(logs.RetentionDays).includes(retentionDays)) {
    throw new Error(
      `context ${CONTEXT_KEYS.logRetentionDays} must be a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, 60, 90, …) (got ${retentionDays})`,
    );
  }
  const pooling = str(CONTEXT_KEYS.pooling);
  if (pooling !== undefined && !(POOLINGS as readonly string[]).includes(pooling)) {
    throw new Error(
      `context ${CONTEXT_KEYS.pooling} must be one of ${POOLINGS.join(', ')} (got '${pooling}')`,
    );
  }
  const precision = str(CONTEXT_KEYS.precision);
  if (precision !== undefined && !(PRECISIONS as readonly string[]).includes(precision)) {
    throw new Error(
      `context ${CONTEXT_KEYS.precision} must be one of ${PRECISIONS.join(', ')} (got '${precision}')`,
    );
  }

  return {
    stackName,
    props: {
      removalPolicy: removal === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      logRetention: retentionDays as logs.RetentionDays | undefined,
      noncurrentVersionDays: num(CONTEXT_KEYS.noncurrentVersionDays),
      captureDays: num(CONTEXT_KEYS.captureDays),
      pooling: pooling as Pooling | undefined,
      precision: precision as Precision | undefined,
      inputSize: num(CONTEXT_KEYS.inputSize),
      baseModelUri: str(CONTEXT_KEYS.baseModelUri),
      ingest: { maxConcurrency: num(CONTEXT_KEYS.extractConcurrency) },
      training: {
        settleSeconds: num(CONTEXT_KEYS.settleSeconds),
        pollSeconds: num(CONTEXT_KEYS.pollSeconds),
        maxRounds: num(CONTEXT_KEYS.maxRounds),
        maxRetrains: num(CONTEXT_KEYS.maxRetrains),
        refitOnAll: bool(CONTEXT_KEYS.refitOnAll),
      },
      api: {
        rateLimit: num(CONTEXT_KEYS.apiRateLimit),
        burstLimit: num(CONTEXT_KEYS.apiBurstLimit),
        quotaPerDay: num(CONTEXT_KEYS.apiQuotaPerDay),
        stageRateLimit: num(CONTEXT_KEYS.apiStageRateLimit),
        stageBurstLimit: num(CONTEXT_KEYS.apiStageBurstLimit),
        manageCloudWatchRole: bool(CONTEXT_KEYS.manageApiCloudWatchRole),
      },
      alarmTopicArn: str(CONTEXT_KEYS.alarmTopicArn),
      monitoring: bool(CONTEXT_KEYS.monitoring),
      inboxPrefix: str(CONTEXT_KEYS.inboxPrefix),
    },
  };
}
