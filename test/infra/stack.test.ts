import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES, BINARY_MEDIA_TYPES } from '../../infra/constructs/prediction-api.ts';
import { METRICS_NAMESPACE } from '../../infra/constructs/tlearn-function.ts';
import { TlearnStack } from '../../infra/stack.ts';
import { IMAGE_BASE_MODEL_URI } from '../../infra/stack-props.ts';
import { gatewayMethods } from '../../lib/api/gateway.ts';
import { BATCH_SETTINGS } from '../../lib/batch/settings.ts';
import { ENV } from '../../lib/config.ts';
import { DEAD_LETTER_SETTINGS } from '../../lib/pipeline/settings.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };

let testApp: TestApp;
let defaults: TlearnStack;
let tuned: TlearnStack;
let template: Template;
let tunedTemplate: Template;
let agnostic: TlearnStack;

beforeAll(() => {
  testApp = createTestApp({ nag: true });
  defaults = createTestStack(testApp.app, 'Defaults');
  tuned = createTestStack(testApp.app, 'Tuned', {
    removalPolicy: RemovalPolicy.DESTROY,
    functions: {
      'train-head': { memorySize: 4096, timeout: Duration.minutes(10), reservedConcurrentExecutions: 2 },
      'extract-features': { timeout: Duration.minutes(2), reservedConcurrentExecutions: 20 },
      api: { memorySize: 2048, timeout: Duration.seconds(20) },
    },
    ingest: { batchSize: 4, maxConcurrency: 3 },
    training: { settleSeconds: 5, pollSeconds: 15, maxRounds: 4 },
    api: { rateLimit: 5, burstLimit: 7, quotaPerDay: 100 },
    alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:tlearn-alarms',
    // An inbox with regex characters: its cdk-nag suppression must match it literally.
    inboxPrefix: 'incoming/cam.1(north)/',
  });
  // As `cdk synth` builds it without CDK_DEFAULT_ACCOUNT: ARNs keep tokens like <AWS::AccountId>,
  // which cdk-nag suppressions must still match.
  agnostic = new TlearnStack(testApp.app, 'Agnostic');
  template = Template.fromStack(defaults);
  tunedTemplate = Template.fromStack(tuned);
});

afterAll(() => testApp.cleanup());

/** Logical id of a construct's L1 resource. */
function logicalId(stack: TlearnStack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as Parameters<TlearnStack['getLogicalId']>[0]);
}

function resource(t: Template, id: string): Resource {
  const r = t.toJSON().Resources[id] as Resource | undefined;
  if (!r) throw new Error(`no resource ${id}`);
  return r;
}

/** Every IAM statement attached to a function's role, with resources as JSON text. */
function statementsOf(
  stack: TlearnStack,
  t: Template,
  name: keyof TlearnStack['functions'],
): Array<{ actions: string[]; resources: string }> {
  const roleId = logicalId(stack, stack.functions[name].role);
  const policies = Object.values(t.findResources('AWS::IAM::Policy')) as Resource[];
  return policies
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
    .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement)
    .map((s) => ({
      actions: ([] as string[]).concat(s.Action as string | string[]),
      resources: JSON.stringify(s.Resource),
    }));
}

function resourcesFor(statements: Array<{ actions: string[]; resources: string }>, action: string): string {
  return statements
    .filter((s) => s.actions.includes(action))
    .map((s) => s.resources)
    .join(' ');
}

function functionProps(stack: TlearnStack, t: Template, name: keyof TlearnStack['functions']) {
  return resource(t, logicalId(stack, stack.functions[name].function)).Properties;
}

describe('data bucket', () => {
  it('blocks public access, encrypts, versions and expires old versions and stale uploads', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: [
          Match.objectLike({
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
            NoncurrentVersionExpiration: { NoncurrentDays: 30 },
            Status: 'Enabled',
          }),
          // Captured production images live only for the review window.
          Match.objectLike({ Prefix: 'captures/', ExpirationInDays: 30, Status: 'Enabled' }),
          Match.objectLike({ Prefix: 'monitoring/', ExpirationInDays: 400, Status: 'Enabled' }),
        ],
      },
      LoggingConfiguration: { DestinationBucketName: Match.anyValue(), LogFilePrefix: 'data-bucket/' },
    });
  });

  it('denies requests without TLS', () => {
    const dataBucketId = logicalId(defaults, defaults.data.bucket);
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: dataBucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('is retained by default and deleted (emptied first) with the destroy removal policy', () => {
    expect(resource(template, logicalId(defaults, defaults.data.bucket)).DeletionPolicy).toBe('Retain');
    expect(Object.keys(template.findResources('Custom::S3AutoDeleteObjects'))).toHaveLength(0);

    expect(resource(tunedTemplate, logicalId(tuned, tuned.data.bucket)).DeletionPolicy).toBe('Delete');
    expect(Object.keys(tunedTemplate.findResources('Custom::S3AutoDeleteObjects')).length).toBeGreaterThan(0);
  });

  it('sends ObjectCreated and ObjectRemoved events under datasets/ and unlabelled/ to the ingest queue', () => {
    const to = (event: string, prefix: string) => ({
      Events: [event],
      Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: prefix }] } },
      QueueArn: { 'Fn::GetAtt': [logicalId(defaults, defaults.ingest.queue), 'Arn'] },
    });
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: [
          to('s3:ObjectCreated:*', 'datasets/'),
          to('s3:ObjectCreated:*', 'unlabelled/'),
          to('s3:ObjectRemoved:*', 'datasets/'),
          to('s3:ObjectRemoved:*', 'unlabelled/'),
        ],
      },
    });
  });
});

describe('queues', () => {
  it('encrypt every queue, deny non-TLS access and dead-letter after 5 receives (batch chunks after 3)', () => {
    const queues = Object.values(template.findResources('AWS::SQS::Queue')) as Resource[];
    expect(queues).toHaveLength(6);
    for (const q of queues) expect(q.Properties.SqsManagedSseEnabled).toBe(true);

    for (const consumer of [defaults.ingest, defaults.features]) {
      expect(resource(template, logicalId(defaults, consumer.queue)).Properties.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(defaults, consumer.deadLetterQueue), 'Arn'] },
        maxReceiveCount: 5,
      });
    }
    expect(resource(template, logicalId(defaults, defaults.batches.queue)).Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(defaults, defaults.batches.deadLetterQueue), 'Arn'] },
      maxReceiveCount: BATCH_SETTINGS.maxReceiveCount,
    });
    const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy')) as Resource[];
    const tlsDenied = policies.filter((p) =>
      JSON.stringify(p.Properties).includes('"aws:SecureTransport":"false"'),
    );
    expect(JSON.stringify(tlsDenied.map((p) => p.Properties.Queues))).toContain(
      logicalId(defaults, defaults.ingest.deadLetterQueue),
    );
    expect(tlsDenied.length).toBeGreaterThanOrEqual(4);
  });

  it('keep messages invisible for at least 6x the consumer timeout', () => {
    for (const [stack, t] of [
      [defaults, template],
      [tuned, tunedTemplate],
    ] as const) {
      for (const [consumer, name] of [
        [stack.ingest, 'extract-features'],
        [stack.features, 'start-training'],
      ] as const) {
        const visibility = resource(t, logicalId(stack, consumer.queue)).Properties
          .VisibilityTimeout as number;
        const timeout = functionProps(stack, t, name).Timeout as number;
        expect(visibility).toBeGreaterThanOrEqual(6 * timeout);
      }
    }
    expect(resource(template, logicalId(defaults, defaults.ingest.queue)).Properties.VisibilityTimeout).toBe(
      6 * 300 + 5,
    );
    expect(resource(tunedTemplate, logicalId(tuned, tuned.ingest.queue)).Properties.VisibilityTimeout).toBe(
      6 * 120 + 5,
    );
  });

  it('feed the extractor and start-training in batches with partial batch failures', () => {
    const extractorId = logicalId(defaults, defaults.functions['extract-features'].function);
    const startId = logicalId(defaults, defaults.functions['start-training'].function);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: extractorId },
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: startId },
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 30,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    tunedTemplate.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(tuned, tuned.functions['extract-features'].function) },
      BatchSize: 4,
      ScalingConfig: { MaximumConcurrency: 3 },
    });
  });
});

describe('functions', () => {
  it('size each function by its documented default', () => {
    const expected = {
      'extract-features': [3008, 300],
      api: [3008, 29],
      'start-training': [256, 30],
      'check-readiness': [1024, 60],
      'train-head': [10240, 900],
      'promote-model': [256, 30],
      'finish-training': [256, 30],
    } as const;
    for (const [name, [memory, timeout]] of Object.entries(expected)) {
      const props = functionProps(defaults, template, name as keyof typeof expected);
      expect([name, props.MemorySize, props.Timeout]).toEqual([name, memory, timeout]);
      expect(props.ReservedConcurrentExecutions).toBeUndefined();
    }
  });

  it('take memory, timeout and reserved concurrency from props', () => {
    expect(functionProps(tuned, tunedTemplate, 'train-head')).toMatchObject({
      MemorySize: 4096,
      Timeout: 600,
      ReservedConcurrentExecutions: 2,
    });
    expect(functionProps(tuned, tunedTemplate, 'extract-features')).toMatchObject({
      MemorySize: 3008,
      Timeout: 120,
      ReservedConcurrentExecutions: 20,
    });
    expect(functionProps(tuned, tunedTemplate, 'api')).toMatchObject({ MemorySize: 2048, Timeout: 20 });
  });

  it('run the extractor and the API as x86_64 container images of one image with their own CMD', () => {
    const extractor = functionProps(defaults, template, 'extract-features');
    const api = functionProps(defaults, template, 'api');
    for (const [props, name] of [
      [extractor, 'extract-features'],
      [api, 'api'],
    ] as const) {
      expect(props.PackageType).toBe('Image');
      expect(props.Architectures).toEqual(['x86_64']);
      expect(props.ImageConfig).toEqual({ Command: [`functions/${name}/handler.handler`] });
    }
    expect(extractor.Code).toEqual(api.Code);
  });

  it('run the light functions on nodejs22.x arm64 with tracing and Powertools settings', () => {
    for (const name of ['start-training', 'check-readiness', 'train-head', 'promote-model'] as const) {
      const props = functionProps(defaults, template, name);
      expect(props).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
      });
      expect((props.Environment as { Variables: Record<string, unknown> }).Variables).toMatchObject({
        POWERTOOLS_SERVICE_NAME: 'tlearn',
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        NODE_OPTIONS: '--enable-source-maps',
        [ENV.BUCKET]: { Ref: logicalId(defaults, defaults.data.bucket) },
      });
    }
  });

  it('set each function the environment variables lib/config.ts reads', () => {
    const vars = (name: keyof TlearnStack['functions']) =>
      (functionProps(defaults, template, name).Environment as { Variables: Record<string, unknown> })
        .Variables;
    const smArn = { Ref: logicalId(defaults, defaults.training.stateMachine) };

    expect(vars('extract-features')).toMatchObject({
      [ENV.FEATURES_QUEUE_URL]: { Ref: logicalId(defaults, defaults.features.queue) },
      [ENV.BASE_MODEL_URI]: IMAGE_BASE_MODEL_URI,
      [ENV.POOLING]: 'flatten',
      [ENV.INPUT_SIZE]: '150',
    });
    expect(vars('api')).toMatchObject({
      [ENV.STATE_MACHINE_ARN]: smArn,
      [ENV.BASE_MODEL_URI]: IMAGE_BASE_MODEL_URI,
      [ENV.POOLING]: 'flatten',
      [ENV.INPUT_SIZE]: '150',
    });
    expect(vars('start-training')).toMatchObject({ [ENV.STATE_MACHINE_ARN]: smArn });
    expect(vars('api')).toHaveProperty(ENV.INGEST_QUEUE_URL);
    expect(vars('train-head')).toMatchObject({
      [ENV.REFIT_ON_ALL]: 'false',
      [ENV.POOLING]: 'flatten',
      [ENV.INPUT_SIZE]: '150',
      [ENV.BASE_MODEL_URI]: IMAGE_BASE_MODEL_URI,
    });
    for (const name of Object.keys(defaults.functions) as Array<keyof TlearnStack['functions']>) {
      expect(vars(name)).not.toHaveProperty('AWS_REGION');
    }
  });

  it('log to their own log group with retention, through roles without managed policies', () => {
    for (const name of Object.keys(defaults.functions) as Array<keyof TlearnStack['functions']>) {
      const fn = defaults.functions[name];
      const props = functionProps(defaults, template, name);
      expect(props.LoggingConfig).toEqual({ LogGroup: { Ref: logicalId(defaults, fn.logGroup) } });
      expect(resource(template, logicalId(defaults, fn.logGroup)).Properties.RetentionInDays).toBe(30);
      expect(resource(template, logicalId(defaults, fn.role)).Properties.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe('least privilege', () => {
  // The S3 rules in full (prefix conditions, pointers, no version deletes): test/infra/iam.test.ts.
  it('lets the extractor read images, write features and send to the features queue only', () => {
    const s = statementsOf(defaults, template, 'extract-features');
    const reads = resourcesFor(s, 's3:GetObject');
    expect(reads).toContain('/datasets/*');
    expect(reads).toContain('/features/*');
    expect(reads).not.toContain('/models/*');
    expect(resourcesFor(s, 's3:PutObject')).toContain('/features/*');
    expect(resourcesFor(s, 's3:PutObject')).not.toMatch(/datasets|models/);
    expect(resourcesFor(s, 'sqs:SendMessage')).toContain(logicalId(defaults, defaults.features.queue));
    expect(resourcesFor(s, 'states:StartExecution')).toBe('');
  });

  it('lets start-training start the training state machine, describe its executions and write only the locks', () => {
    const s = statementsOf(defaults, template, 'start-training');
    expect(resourcesFor(s, 'states:StartExecution')).toContain(
      logicalId(defaults, defaults.training.stateMachine),
    );
    expect(resourcesFor(s, 'states:DescribeExecution')).toContain(':execution:');
    expect(resourcesFor(s, 's3:GetObject')).toContain('/locks/*');
    expect(resourcesFor(s, 's3:GetObject')).not.toMatch(/datasets|features|models/);
    expect(resourcesFor(s, 's3:PutObject')).toContain('/locks/*');
    expect(resourcesFor(s, 's3:PutObject')).not.toMatch(/datasets|features|models/);
  });

  it('lets finish-training write only the locks, and check-readiness read their generation', () => {
    const finish = statementsOf(defaults, template, 'finish-training');
    expect(resourcesFor(finish, 's3:PutObject')).toContain('/locks/*');
    expect(resourcesFor(finish, 's3:PutObject')).not.toMatch(/datasets|features|models/);
    expect(resourcesFor(finish, 's3:GetObject')).not.toMatch(/datasets|features|models/);
    expect(resourcesFor(statementsOf(defaults, template, 'check-readiness'), 's3:GetObject')).toContain(
      '/locks/*',
    );
  });

  it('keeps check-readiness read-only and the trainer away from images and features writes', () => {
    const check = statementsOf(defaults, template, 'check-readiness');
    expect(resourcesFor(check, 's3:GetObject')).toMatch(
      /datasets\/\*.*features\/\*|features\/\*.*datasets\/\*/,
    );
    expect(resourcesFor(check, 's3:PutObject')).toBe('');

    const train = statementsOf(defaults, template, 'train-head');
    expect(resourcesFor(train, 's3:GetObject')).toContain('/features/*');
    expect(resourcesFor(train, 's3:GetObject')).not.toContain('/datasets/*');
    expect(resourcesFor(train, 's3:PutObject')).toContain('/models/*');
    expect(resourcesFor(train, 's3:PutObject')).not.toContain('/features/*');

    const promote = statementsOf(defaults, template, 'promote-model');
    expect(resourcesFor(promote, 's3:PutObject')).toContain('/models/*');
    expect(resourcesFor(promote, 's3:GetObject')).not.toMatch(/datasets|features/);
  });

  it('lets the API read what it serves, start trainings (through the lock), send reindex jobs, and write only locks, model pointers, ONNX exports and images (presigned uploads)', () => {
    const s = statementsOf(defaults, template, 'api');
    const reads = resourcesFor(s, 's3:GetObject');
    for (const prefix of ['/datasets/*', '/features/*', '/models/*']) expect(reads).toContain(prefix);
    const writes = resourcesFor(s, 's3:PutObject');
    expect(writes).toContain('/models/*/current.json');
    expect(writes).toContain('/datasets/*');
    expect(writes).toContain('/models/*/model.onnx');
    expect(writes).toContain('/console/*');
    expect(writes).not.toMatch(/features|base-models|"\/models\/\*"/);
    expect(writes).toContain('/locks/*');
    // Only captures and the dataset copies of reviewed captures (undo) are ever deleted.
    const deletes = resourcesFor(s, 's3:DeleteObject');
    expect(deletes).toContain('/captures/*');
    expect(deletes).toContain('/datasets/*/capture-*');
    expect(resourcesFor(s, 's3:DeleteObject')).not.toMatch(/\/datasets\/\*"|"\/features\/|models/);
    expect(resourcesFor(s, 'sqs:SendMessage')).toContain(logicalId(defaults, defaults.ingest.queue));
    expect(resourcesFor(s, 'states:StartExecution')).toContain(
      logicalId(defaults, defaults.training.stateMachine),
    );
    // Execution status for GET /datasets/{d}: this machine's list and its executions only.
    expect(resourcesFor(s, 'states:ListExecutions')).toContain(
      logicalId(defaults, defaults.training.stateMachine),
    );
    expect(resourcesFor(s, 'states:DescribeExecution')).toContain(':execution:');
    expect(resourcesFor(s, 'states:DescribeExecution')).toContain(
      logicalId(defaults, defaults.training.stateMachine),
    );
  });
});

describe('training state machine', () => {
  it('is a standard, traced workflow named after the stack that logs without execution data', () => {
    const props = resource(template, logicalId(defaults, defaults.training.stateMachine)).Properties;
    expect(props).toMatchObject({
      StateMachineName: 'train-Defaults',
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false },
    });
    expect(
      resource(template, logicalId(defaults, defaults.training.logGroup)).Properties.RetentionInDays,
    ).toBe(30);
  });

  it('takes the settle and poll waits and the round limit from props', () => {
    const body = JSON.stringify(
      resource(tunedTemplate, logicalId(tuned, tuned.training.stateMachine)).Properties.DefinitionString,
    );
    expect(body).toContain('\\"Settle\\":{\\"Type\\":\\"Wait\\",');
    expect(body).toMatch(/\\"Seconds\\":5,/);
    expect(body).toMatch(/\\"Seconds\\":15,/);
    expect(body).toContain('\\"NumericLessThan\\":4');
  });
});

describe('API', () => {
  it('accepts raw images as binary media types', () => {
    template.hasResourceProperties('AWS::ApiGateway::RestApi', { BinaryMediaTypes: [...BINARY_MEDIA_TYPES] });
  });

  it('routes every method of each documented resource to the function, with a key where the route needs one', () => {
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')) as Resource[];
    expect(methods).toHaveLength(gatewayMethods().length);
    for (const m of methods) expect(m.Properties.RequestValidatorId).toBeUndefined();
    const keyless = methods
      .filter((m) => m.Properties.ApiKeyRequired !== true)
      .map((m) => m.Properties.HttpMethod);
    // GET /health, GET /openapi.json, GET / (the console page) and GET /console/ort/{file}, the OPTIONS of every resource, and ANY on those four (a wrong method there is a 405 without a key).
    expect(keyless.filter((m) => m === 'OPTIONS')).toHaveLength(new Set(API_ROUTES.map((r) => r.path)).size);
    expect(keyless.filter((m) => m !== 'OPTIONS').sort()).toEqual([
      'ANY',
      'ANY',
      'ANY',
      'ANY',
      'GET',
      'GET',
      'GET',
      'GET',
    ]);
    const paths = Object.values(template.findResources('AWS::ApiGateway::Resource')).map(
      (r) => (r as Resource).Properties.PathPart,
    );
    expect(paths.sort()).toEqual(
      [
        'datasets',
        'health',
        'openapi.json',
        'keys',
        '{id}',
        'model',
        'predictions',
        'promote',
        'trainings',
        '{d}',
        'uploads',
        'images',
        'failures',
        'models',
        'export',
        // GET /datasets/{d}/model/predictions and /model/curves (the report's pages).
        'predictions',
        'curves',
        'batches',
        '{id}',
        'quality',
        'reindex',
        'console',
        'ort',
        '{file}',
        'settings',
        'captures',
        '{id}',
        'label',
        'undo',
        'monitoring',
        'suggestions',
        'label',
      ].sort(),
    );
  });

  it('throttles and limits each key with a usage plan from props', () => {
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: 10, BurstLimit: 20 },
      Quota: { Limit: 10000, Period: 'DAY' },
    });
    tunedTemplate.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: 5, BurstLimit: 7 },
      Quota: { Limit: 100, Period: 'DAY' },
    });
    template.resourceCountIs('AWS::ApiGateway::ApiKey', 1);
    // The stack's one key is the admin key (scoped keys come from POST /keys).
    template.hasResourceProperties('AWS::ApiGateway::ApiKey', {
      Tags: [
        { Key: 'tlearn-role', Value: 'admin' },
        { Key: 'tlearn-stack', Value: 'Defaults' },
      ],
    });
    template.resourceCountIs('AWS::ApiGateway::UsagePlanKey', 1);
  });

  it('throttles the stage (all keys together) at ten times one key, so one key at its limit leaves room for the others', () => {
    const stageThrottle = (t: Template) => {
      const stage = Object.values(t.findResources('AWS::ApiGateway::Stage'))[0] as Resource;
      const settings = stage.Properties.MethodSettings as Array<Record<string, unknown>>;
      return settings.map((m) => [
        m.ResourcePath,
        m.HttpMethod,
        m.ThrottlingRateLimit,
        m.ThrottlingBurstLimit,
      ]);
    };
    const plan = (t: Template) => {
      const p = Object.values(t.findResources('AWS::ApiGateway::UsagePlan'))[0] as Resource;
      return p.Properties.Throttle as { RateLimit: number; BurstLimit: number };
    };
    expect(stageThrottle(template)).toEqual([['/*', '*', 100, 200]]);
    expect(plan(template)).toEqual({ RateLimit: 10, BurstLimit: 20 });
    expect(stageThrottle(tunedTemplate)).toEqual([['/*', '*', 50, 70]]);
    expect(plan(tunedTemplate)).toEqual({ RateLimit: 5, BurstLimit: 7 });
  });

  it('writes access logs, traces, and logs errors without request bodies', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      TracingEnabled: true,
      AccessLogSetting: { Format: Match.stringLikeRegexp('requestId') },
      MethodSettings: [
        Match.objectLike({ LoggingLevel: 'ERROR', DataTraceEnabled: false, MetricsEnabled: true }),
      ],
    });
    const stage = Object.values(template.findResources('AWS::ApiGateway::Stage'))[0] as Resource;
    expect(JSON.stringify(stage.Properties.AccessLogSetting)).toContain(
      logicalId(defaults, defaults.api.accessLogGroup),
    );
    template.resourceCountIs('AWS::ApiGateway::Account', 1);
  });

  it('leaves body validation to the function and answers its own errors in the API error shape', () => {
    template.resourceCountIs('AWS::ApiGateway::RequestValidator', 0);
    template.resourceCountIs('AWS::ApiGateway::Model', 0);
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'INVALID_API_KEY',
      StatusCode: '403',
      ResponseTemplates: {
        'application/json': JSON.stringify({
          error: { code: 'Forbidden', message: 'missing or invalid x-api-key header' },
        }),
      },
    });
  });
});

describe('dead letters', () => {
  it('drain the ingest and batch dead-letter queues into dead-letters, with partial batch failures', () => {
    const fn = { Ref: logicalId(defaults, defaults.functions['dead-letters'].function) };
    for (const dlq of [defaults.ingest.deadLetterQueue, defaults.batches.deadLetterQueue]) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [logicalId(defaults, dlq), 'Arn'] },
        FunctionName: fn,
        BatchSize: DEAD_LETTER_SETTINGS.batchSize,
        ScalingConfig: { MaximumConcurrency: DEAD_LETTER_SETTINGS.maxConcurrency },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
      // A message the function cannot record yet is not received again before it could finish.
      template.hasResourceProperties('AWS::SQS::Queue', {
        VisibilityTimeout: DEAD_LETTER_SETTINGS.timeoutSeconds * 6,
        MessageRetentionPeriod: 14 * 24 * 3600,
      });
    }
    template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: DEAD_LETTER_SETTINGS.timeoutSeconds,
      MemorySize: DEAD_LETTER_SETTINGS.memorySize,
      Environment: { Variables: Match.objectLike({ [ENV.FEATURES_QUEUE_URL]: Match.anyValue() }) },
    });
    // The features DLQ has no consumer: its messages stay for inspection and redrive.
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(5);
    expect(JSON.stringify(mappings)).not.toContain(logicalId(defaults, defaults.features.deadLetterQueue));
  });

  it('alarm when a message reaches a consumed dead-letter queue (received), not only while one waits there', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'NumberOfMessagesReceived',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [logicalId(defaults, defaults.ingest.deadLetterQueue), 'QueueName'] },
        },
      ],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [logicalId(defaults, defaults.features.deadLetterQueue), 'QueueName'] },
        },
      ],
    });
  });
});

describe('batch predictions', () => {
  it('feed the batch queue from the API to batch-predict, one chunk per invocation, with the shared settings', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [logicalId(defaults, defaults.batches.queue), 'Arn'] },
      FunctionName: { Ref: logicalId(defaults, defaults.functions['batch-predict'].function) },
      BatchSize: BATCH_SETTINGS.batchSize,
      ScalingConfig: { MaximumConcurrency: BATCH_SETTINGS.maxConcurrency },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: Match.absent(),
      PackageType: 'Image',
      Timeout: BATCH_SETTINGS.timeoutSeconds,
      MemorySize: BATCH_SETTINGS.memorySize,
    });
    const api = resource(template, logicalId(defaults, defaults.functions.api.function));
    expect(JSON.stringify(api.Properties.Environment)).toContain(ENV.BATCH_QUEUE_URL);
    expect(resource(template, logicalId(defaults, defaults.batches.queue)).Properties.VisibilityTimeout).toBe(
      BATCH_SETTINGS.timeoutSeconds * 6,
    );
  });
});

describe('monitoring', () => {
  it('alarms on dead letters, function errors, failed trainings, API 5xx and prediction drift', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Resource[];
    expect(alarms).toHaveLength(3 + 10 + 1 + 1 + 1);
    // Dead letters: waiting in the features DLQ; received from the two DLQs dead-letters drains.
    const dlqAlarms = alarms.filter((a) =>
      ['ApproximateNumberOfMessagesVisible', 'NumberOfMessagesReceived'].includes(
        String(a.Properties.MetricName),
      ),
    );
    expect(dlqAlarms).toHaveLength(3);
    for (const a of dlqAlarms) {
      expect(a.Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    }
    expect(alarms.filter((a) => a.Properties.MetricName === 'Errors')).toHaveLength(10);
    expect(alarms.filter((a) => a.Properties.MetricName === 'ExecutionsFailed')).toHaveLength(1);
    expect(alarms.filter((a) => a.Properties.MetricName === 'PredictionDriftPsi')).toHaveLength(1);
    for (const a of alarms) expect(a.Properties.AlarmActions).toBeUndefined();

    const tunedAlarms = Object.values(tunedTemplate.findResources('AWS::CloudWatch::Alarm')) as Resource[];
    for (const a of tunedAlarms) {
      expect(a.Properties.AlarmActions).toEqual(['arn:aws:sns:eu-west-1:123456789012:tlearn-alarms']);
    }
  });

  it('puts the metrics users watch on a dashboard', () => {
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as Resource[];
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]?.Properties.DashboardBody);
    for (const metric of [
      'ImagesExtracted',
      'ImagesFailed',
      'ExtractionMs',
      'Predictions',
      'PredictionLatencyMs',
      'TrainingAccuracy',
      'TrainingsStarted',
      'ApproximateNumberOfMessagesVisible',
      'Latency',
    ]) {
      expect(body).toContain(metric);
    }
    expect(body).toContain(`Namespace=\\\\\\"${METRICS_NAMESPACE}\\\\\\"`);
  });
});

describe('outputs', () => {
  it('publishes what the CLI and users need, with the command to read the API key', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Description?: string }>;
    expect(Object.keys(outputs).sort()).toEqual(
      ['ApiKeyId', 'ApiUrl', 'BucketName', 'FeaturesQueueUrl', 'IngestQueueUrl', 'StateMachineArn'].sort(),
    );
    expect(outputs.ApiKeyId?.Description).toContain('aws apigateway get-api-key --api-key');
    expect(outputs.ApiKeyId?.Description).toContain('--include-value');
  });
});

describe('cdk-nag AWS Solutions checks', () => {
  it('leave no unacknowledged error or warning in either stack', () => {
    // With cdk.json's annotationsInValidationReport flag an unacknowledged error already fails the
    // synth in beforeAll (ValidationFailed); warnings only show up here.
    for (const stack of [defaults, tuned, agnostic]) {
      const annotations = Annotations.fromStack(stack);
      const errors = annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
      const warnings = annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
      expect(errors.map((e) => `${e.id}: ${String(e.entry.data).slice(0, 120)}`)).toEqual([]);
      expect(warnings.map((w) => `${w.id}: ${String(w.entry.data).slice(0, 120)}`)).toEqual([]);
    }
  });

  it('ran: acknowledged findings carry a reason on the resource they concern', () => {
    const roleId = logicalId(defaults, defaults.functions['train-head'].role);
    const policies = Object.values(template.findResources('AWS::IAM::Policy')) as Array<
      Resource & { Metadata?: unknown }
    >;
    const policy = policies.find((p) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`));
    const metadata = JSON.stringify(policy?.Metadata ?? {});
    expect(metadata).toContain('AwsSolutions-IAM5');
    expect(metadata).toContain('S3 grants are scoped to one prefix');
  });
});
