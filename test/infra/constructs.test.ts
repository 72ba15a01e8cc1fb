import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { DataBucket } from '../../infra/constructs/data-bucket.ts';
import { PredictionApi } from '../../infra/constructs/prediction-api.ts';
import { QueueConsumer, type QueueConsumerProps } from '../../infra/constructs/queue-consumer.ts';
import { TlearnFunction } from '../../infra/constructs/tlearn-function.ts';
import {
  TrainingStateMachine,
  type TrainingStateMachineProps,
} from '../../infra/constructs/training-state-machine.ts';
import { CONTEXT_KEYS, stackSettingsFromContext } from '../../infra/context.ts';
import { REPO_ROOT } from '../../infra/paths.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

const ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:';

function scope(): Stack {
  // CloudFormation template validation takes seconds per synth; `cdk synth` keeps it on.
  const app = new App({ builtinCloudFormationValidation: false });
  return new Stack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
}

function importedFunction(stack: Stack, name: string): lambda.IFunction {
  return lambda.Function.fromFunctionAttributes(stack, name, {
    functionArn: `${ARN}${name}`,
    sameEnvironment: true,
  });
}

describe('QueueConsumer', () => {
  const props = (stack: Stack, over: Partial<QueueConsumerProps>): QueueConsumerProps => ({
    consumer: importedFunction(stack, 'consumer'),
    consumerTimeout: Duration.seconds(60),
    ...over,
  });

  it('defaults the visibility timeout to 6x the consumer timeout plus the batching window', () => {
    const stack = scope();
    const c = new QueueConsumer(stack, 'Q', props(stack, { maxBatchingWindow: Duration.seconds(10) }));
    Template.fromStack(stack).hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 6 * 60 + 10,
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() },
    });
    expect(c.eventSource.eventSourceMappingId).toBeDefined();
  });

  it.each([
    ['a visibility timeout under 6x the consumer timeout', { visibilityTimeout: Duration.seconds(359) }],
    ['batchSize 0', { batchSize: 0 }],
    ['batchSize above 10000', { batchSize: 10_001 }],
    ['batchSize above 10 without a batching window', { batchSize: 11 }],
    ['a batching window above 300 s', { maxBatchingWindow: Duration.seconds(301) }],
    ['maxConcurrency 1', { maxConcurrency: 1 }],
    ['maxConcurrency above 1000', { maxConcurrency: 1001 }],
    ['maxReceiveCount 0', { maxReceiveCount: 0 }],
  ] as const)('rejects %s', (_, over) => {
    const stack = scope();
    expect(() => new QueueConsumer(stack, 'Q', props(stack, over))).toThrow(/Q: /);
  });
});

describe('TlearnFunction', () => {
  const make = (over: Record<string, unknown>) => () =>
    new TlearnFunction(scope(), 'F', {
      kind: 'bundled',
      name: 'promote-model',
      entry: `${REPO_ROOT}/functions/promote-model/handler.ts`,
      projectRoot: REPO_ROOT,
      ...over,
    });

  it.each([
    ['memory under 128 MB', { memorySize: 127 }, /memorySize/],
    ['memory above 10240 MB', { memorySize: 10_241 }, /memorySize/],
    ['a timeout above 15 min', { timeout: Duration.minutes(16) }, /timeout/],
    ['negative reserved concurrency', { reservedConcurrentExecutions: -1 }, /reservedConcurrentExecutions/],
  ] as const)('rejects %s', (_, over, message) => {
    expect(make(over)).toThrow(message);
  });
});

describe('DataBucket', () => {
  it.each([
    ['noncurrentVersionDays 0', { noncurrentVersionDays: 0 }],
    ['fractional abortIncompleteUploadDays', { abortIncompleteUploadDays: 1.5 }],
    ['the SNAPSHOT removal policy', { removalPolicy: RemovalPolicy.SNAPSHOT }],
  ] as const)('rejects %s', (_, over) => {
    expect(() => new DataBucket(scope(), 'D', over)).toThrow(/D: /);
  });
});

describe('TrainingStateMachine', () => {
  const props = (stack: Stack, over: Partial<TrainingStateMachineProps>): TrainingStateMachineProps => ({
    checkReadiness: { function: importedFunction(stack, 'check'), timeout: Duration.seconds(30) },
    trainHead: { function: importedFunction(stack, 'train'), timeout: Duration.minutes(15) },
    promoteModel: { function: importedFunction(stack, 'promote'), timeout: Duration.seconds(30) },
    finishTraining: { function: importedFunction(stack, 'finish'), timeout: Duration.seconds(30) },
    ...over,
  });

  it('keeps the wait times and round limit it was given', () => {
    const stack = scope();
    const m = new TrainingStateMachine(
      stack,
      'T',
      props(stack, { settleSeconds: 0, pollSeconds: 5, maxRounds: 0 }),
    );
    expect([m.settleSeconds, m.pollSeconds, m.maxRounds]).toEqual([0, 5, 0]);
  });

  it.each([
    ['negative settleSeconds', { settleSeconds: -1 }],
    ['pollSeconds 0', { pollSeconds: 0 }],
    ['fractional pollSeconds', { pollSeconds: 1.5 }],
    ['maxRounds above 1000', { maxRounds: 1001 }],
    ['more than 10 retry attempts', { taskRetryAttempts: 11 }],
    ['a state machine name with spaces', { stateMachineName: 'train me' }],
  ] as const)('rejects %s', (_, over) => {
    const stack = scope();
    expect(() => new TrainingStateMachine(stack, 'T', props(stack, over))).toThrow(/T: /);
  });
});

describe('PredictionApi', () => {
  it.each([
    ['rateLimit 0', { rateLimit: 0 }],
    ['a fractional burstLimit', { burstLimit: 2.5 }],
    ['quotaPerDay 0', { quotaPerDay: 0 }],
    ['a stage name with a slash', { stageName: 'v1/beta' }],
    ['a stage rate limit equal to one key’s', { rateLimit: 10, stageRateLimit: 10 }],
    ['a stage burst below twice one key’s', { burstLimit: 20, stageBurstLimit: 39 }],
  ] as const)('rejects %s', (_, over) => {
    const stack = scope();
    expect(() => new PredictionApi(stack, 'A', { handler: importedFunction(stack, 'api'), ...over })).toThrow(
      /A: /,
    );
  });
});

describe('TlearnStack props', () => {
  let testApp: TestApp | undefined;
  afterEach(() => testApp?.cleanup());

  it.each([
    ['an unknown pooling', { pooling: 'mean' as never }, /pooling/],
    ['an input size under 32', { inputSize: 16 }, /inputSize/],
    [
      'an api timeout over API Gateway’s 29 s',
      { functions: { api: { timeout: Duration.seconds(30) } } },
      /29 s/,
    ],
    ['an unknown function', { functions: { 'resize-images': {} } as never }, /unknown function/],
    ['extractBatchSize 0', { extractBatchSize: 0 }, /extractBatchSize/],
  ] as const)('rejects %s', (_, props, message) => {
    testApp = createTestApp();
    const app = testApp.app;
    expect(() => createTestStack(app, 'Bad', props)).toThrow(message);
  });
});

describe('context', () => {
  const settings = (context: Record<string, unknown>) => stackSettingsFromContext(new App({ context }).node);

  it('reads string values from the command line into typed props', () => {
    const { stackName, props } = settings({
      [CONTEXT_KEYS.stackName]: 'TlearnDev',
      [CONTEXT_KEYS.removalPolicy]: 'destroy',
      [CONTEXT_KEYS.logRetentionDays]: '14',
      [CONTEXT_KEYS.settleSeconds]: '0',
      [CONTEXT_KEYS.refitOnAll]: 'true',
      [CONTEXT_KEYS.pooling]: 'avg',
    });
    expect(stackName).toBe('TlearnDev');
    expect(props.removalPolicy).toBe(RemovalPolicy.DESTROY);
    expect(props.logRetention).toBe(14);
    expect(props.training).toMatchObject({ settleSeconds: 0, refitOnAll: true });
    expect(props.pooling).toBe('avg');
  });

  it('reads the inbox prefix of batches from tlearn:inboxPrefix', () => {
    expect(settings({ [CONTEXT_KEYS.inboxPrefix]: 'incoming/' }).props.inboxPrefix).toBe('incoming/');
    expect(settings({}).props.inboxPrefix).toBeUndefined();
  });

  it('defaults to the Tlearn stack that retains its data', () => {
    const { stackName, props } = settings({});
    expect(stackName).toBe('Tlearn');
    expect(props.removalPolicy).toBe(RemovalPolicy.RETAIN);
  });

  it.each([
    [CONTEXT_KEYS.removalPolicy, 'snapshot'],
    [CONTEXT_KEYS.logRetentionDays, '31'],
    [CONTEXT_KEYS.maxRounds, 'many'],
    [CONTEXT_KEYS.refitOnAll, 'yes'],
    [CONTEXT_KEYS.stackName, '1bad name'],
  ])('rejects %s=%s naming the key', (key, value) => {
    expect(() => settings({ [key]: value })).toThrow(key);
  });
});
