import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TlearnStack } from '../../infra/stack.ts';
import { FUNCTION_NAMES, type FunctionName } from '../../lib/functions.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };

/** One IAM statement of a role, resources as the bucket-relative key patterns where they are. */
interface Statement {
  effect: string;
  actions: string[];
  /** Object key patterns (`models/*`) for bucket object ARNs, the raw JSON otherwise. */
  resources: string[];
  condition: Record<string, unknown> | undefined;
}

let testApp: TestApp;
let stack: TlearnStack;
let template: Template;
let s3Weights: TlearnStack;
let s3WeightsTemplate: Template;
let inbox: TlearnStack;
let inboxTemplate: Template;

beforeAll(() => {
  testApp = createTestApp();
  stack = createTestStack(testApp.app, 'Iam');
  s3Weights = createTestStack(testApp.app, 'IamS3Weights', {
    baseModelUri: 's3://weights/base-models/vgg16/model.json',
  });
  inbox = createTestStack(testApp.app, 'IamInbox', { inboxPrefix: 'incoming/2026/' });
  template = Template.fromStack(stack);
  s3WeightsTemplate = Template.fromStack(s3Weights);
  inboxTemplate = Template.fromStack(inbox);
});

afterAll(() => testApp.cleanup());

/** Bucket ARNs appear as `{"Fn::Join": ["", [{"Fn::GetAtt": [Bucket, "Arn"]}, "/models/*"]]}`. */
function keyPattern(resource: unknown): string {
  const join = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (join) {
    const [first, ...rest] = join[1];
    if (JSON.stringify(first).includes('DataBucket') && rest.every((p) => typeof p === 'string')) {
      return (rest as string[]).join('').replace(/^\//, '');
    }
  }
  const getAtt = (resource as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
  if (getAtt?.[0]?.startsWith('DataBucket')) return '(bucket)';
  return JSON.stringify(resource);
}

function statementsOf(s: TlearnStack, t: Template, name: FunctionName): Statement[] {
  const roleId = s.getLogicalId(
    s.functions[name].role.node.defaultChild as Parameters<TlearnStack['getLogicalId']>[0],
  );
  return (Object.values(t.findResources('AWS::IAM::Policy')) as Resource[])
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
    .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement)
    .map((st) => ({
      effect: String(st.Effect),
      actions: ([] as string[]).concat(st.Action as string | string[]),
      resources: ([] as unknown[]).concat(st.Resource).map(keyPattern),
      condition: st.Condition as Record<string, unknown> | undefined,
    }));
}

/** Key patterns a role may use an S3 action on (Allow statements). */
function allowed(statements: Statement[], action: string): string[] {
  return statements
    .filter(
      (s) =>
        s.effect === 'Allow' &&
        s.actions.some((a) => a === action || (a.endsWith('*') && action.startsWith(a.slice(0, -1)))),
    )
    .flatMap((s) => s.resources)
    .sort();
}

/** Prefixes a role may list (the s3:prefix condition of its ListBucket statements). */
function listable(statements: Statement[]): string[] {
  return statements
    .filter((s) => s.effect === 'Allow' && s.actions.includes('s3:ListBucket'))
    .flatMap((s) =>
      ([] as string[]).concat(
        (s.condition?.StringLike as Record<string, string[]> | undefined)?.['s3:prefix'] ?? [],
      ),
    )
    .sort();
}

describe('least privilege on the data bucket', () => {
  it('lists only under each role’s prefixes: every ListBucket carries an s3:prefix condition, no s3:List* anywhere', () => {
    for (const name of FUNCTION_NAMES) {
      for (const s of statementsOf(stack, template, name)) {
        expect(s.actions, name).not.toContain('s3:List*');
        if (s.actions.includes('s3:ListBucket')) {
          expect(s.condition, name).toEqual({ StringLike: { 's3:prefix': expect.any(Array) } });
        }
      }
    }
    expect(listable(statementsOf(stack, template, 'promote-model'))).toEqual(['models/*']);
    expect(listable(statementsOf(stack, template, 'check-readiness'))).toEqual([
      'datasets/*',
      'features/*',
      'locks/*',
    ]);
    expect(listable(statementsOf(stack, template, 'api'))).toEqual([
      'batches/*',
      'captures/*',
      'console/*',
      'datasets/*',
      'features/*',
      'inbox/*',
      'locks/*',
      'models/*',
      'monitoring/*',
      'settings/*',
      'unlabelled-features/*',
      'unlabelled/*',
    ]);
    expect(listable(statementsOf(stack, template, 'batch-predict'))).toEqual(['batches/*']);
    expect(listable(statementsOf(stack, template, 'start-training'))).toEqual(['locks/*']);
  });

  it('grants no DeleteObjectVersion anywhere: no Allow statement names it or a wildcard that covers it', () => {
    const covers = (action: string) =>
      action === '*' || /^s3:(\*|Delete\*|DeleteObject\*|DeleteObjectV\*|DeleteObjectVersion)$/.test(action);
    const policies = Object.values(template.toJSON().Resources as Record<string, Resource>).flatMap((r) => {
      if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::S3::BucketPolicy')
        return [r.Properties.PolicyDocument];
      if (r.Type === 'AWS::IAM::Role') {
        return ((r.Properties.Policies as Array<{ PolicyDocument: unknown }> | undefined) ?? []).map(
          (p) => p.PolicyDocument,
        );
      }
      return [];
    }) as Array<{ Statement: Array<Record<string, unknown>> }>;
    const allows = policies.flatMap((p) => p.Statement).filter((st) => st.Effect === 'Allow');
    expect(allows.length).toBeGreaterThan(10);
    for (const st of allows) {
      for (const action of ([] as string[]).concat(st.Action as string | string[]))
        expect(covers(action)).toBe(false);
    }
  });

  it('lets promote-model read models and write only the current.json pointers', () => {
    const s = statementsOf(stack, template, 'promote-model');
    expect(allowed(s, 's3:GetObject')).toEqual(['models/*']);
    expect(allowed(s, 's3:PutObject')).toEqual(['models/*/current.json']);
    expect(allowed(s, 's3:DeleteObject')).toEqual([]);
  });

  it('lets train-head write model versions but never current.json (an explicit Deny)', () => {
    const s = statementsOf(stack, template, 'train-head');
    expect(allowed(s, 's3:PutObject')).toEqual(['models/*']);
    expect(s).toContainEqual({
      effect: 'Deny',
      actions: ['s3:PutObject'],
      resources: ['models/*/current.json'],
      condition: undefined,
    });
    expect(allowed(s, 's3:GetObject')).toEqual(['features/*']);
  });

  it("lets the API read only what it serves, write only pointers (promote), ONNX exports, images (presigned uploads), the console's wasm copy and its own loop data, and delete only captures and their reviewed copies", () => {
    const s = statementsOf(stack, template, 'api');
    expect(allowed(s, 's3:GetObject')).toEqual([
      'batches/*',
      'captures/*',
      'console/*',
      'datasets/*',
      'features/*',
      'locks/*',
      'models/*',
      'monitoring/*',
      'settings/*',
      'unlabelled-features/*',
      'unlabelled/*',
    ]);
    expect(allowed(s, 's3:PutObject')).toEqual([
      'batches/*',
      'captures/*',
      'console/*',
      'datasets/*',
      'locks/*',
      'models/*/current.json',
      'models/*/model.onnx',
      'monitoring/*',
      'settings/*',
    ]);
    expect(allowed(s, 's3:DeleteObject')).toEqual([
      'captures/*',
      'datasets/*/capture-*',
      'unlabelled-features/*',
      'unlabelled/*',
    ]);
  });

  it('lets no function but the API touch captures, monitoring records or settings', () => {
    for (const fn of [
      'extract-features',
      'train-head',
      'batch-predict',
      'promote-model',
      'check-readiness',
    ] as const) {
      const s = statementsOf(stack, template, fn);
      for (const action of ['s3:GetObject', 's3:PutObject', 's3:DeleteObject']) {
        expect(allowed(s, action).filter((p) => /^(captures|monitoring|settings)\//.test(p))).toEqual([]);
      }
    }
  });

  it('reads base-models/ only when the stack loads the weights from S3', () => {
    expect(allowed(statementsOf(stack, template, 'extract-features'), 's3:GetObject')).not.toContain(
      'base-models/*',
    );
    expect(allowed(statementsOf(s3Weights, s3WeightsTemplate, 'extract-features'), 's3:GetObject')).toContain(
      'base-models/*',
    );
    expect(allowed(statementsOf(s3Weights, s3WeightsTemplate, 'api'), 's3:GetObject')).toContain(
      'base-models/*',
    );
  });

  it('lets the batch worker read images, batches and models, and write only under batches/', () => {
    const s = statementsOf(stack, template, 'batch-predict');
    expect(allowed(s, 's3:GetObject')).toEqual(['batches/*', 'datasets/*', 'inbox/*', 'models/*']);
    expect(allowed(s, 's3:PutObject')).toEqual(['batches/*']);
    expect(allowed(s, 's3:DeleteObject')).toEqual([]);
  });

  it('scopes the inbox prefix prop: the API lists it and the batch worker reads it, nobody writes it', () => {
    const t = inboxTemplate;
    const api = statementsOf(inbox, t, 'api');
    const worker = statementsOf(inbox, t, 'batch-predict');
    expect(listable(api)).toContain('incoming/2026/*');
    expect(listable(api)).not.toContain('inbox/*');
    expect(allowed(api, 's3:GetObject')).not.toContain('incoming/2026/*');
    expect(allowed(worker, 's3:GetObject')).toContain('incoming/2026/*');
    for (const name of FUNCTION_NAMES) {
      expect(allowed(statementsOf(inbox, t, name), 's3:PutObject'), name).not.toContain('incoming/2026/*');
      if (name !== 'batch-predict')
        expect(allowed(statementsOf(inbox, t, name), 's3:GetObject'), name).not.toContain('incoming/2026/*');
    }
    const apiId = inbox.getLogicalId(
      inbox.functions.api.function.node.defaultChild as Parameters<TlearnStack['getLogicalId']>[0],
    );
    const apiFunction = t.toJSON().Resources[apiId] as Resource;
    expect(JSON.stringify(apiFunction.Properties.Environment)).toContain(
      '"TLEARN_INBOX_PREFIX":"incoming/2026/"',
    );
  });

  it('refuses an inbox prefix that overlaps the bucket’s own prefixes or is not a folder', () => {
    const other = createTestApp();
    try {
      const bad = [
        'datasets/',
        'datasets/pets/',
        'models/x/',
        'batches/',
        'b',
        'inbox',
        '../x/',
        '/inbox/',
        '',
      ];
      for (const [i, inboxPrefix] of bad.entries())
        expect(() => createTestStack(other.app, `Bad${i}`, { inboxPrefix }), inboxPrefix).toThrow(
          /inboxPrefix must/,
        );
    } finally {
      other.cleanup();
    }
  });

  it('lets the extractor write and delete features (its own and the pool’s) only', () => {
    const s = statementsOf(stack, template, 'extract-features');
    expect(allowed(s, 's3:PutObject')).toEqual(['features/*', 'unlabelled-features/*']);
    expect(allowed(s, 's3:DeleteObject')).toEqual(['features/*', 'unlabelled-features/*']);
    expect(allowed(s, 's3:GetObject')).toEqual([
      'datasets/*',
      'features/*',
      'unlabelled-features/*',
      'unlabelled/*',
    ]);
  });

  it('lets dead-letters write only error records (and batches), never a feature', () => {
    const s = statementsOf(stack, template, 'dead-letters');
    expect(allowed(s, 's3:PutObject')).toEqual(['batches/*', 'features/*.error.json']);
    expect(allowed(s, 's3:DeleteObject')).toEqual(['features/*.error.json', 'features/*.npy']);
    expect(allowed(s, 's3:GetObject')).toEqual([
      'batches/*',
      'datasets/*',
      'features/*',
      'models/*/model.json',
    ]);
    expect(listable(s)).toEqual(['batches/*', 'datasets/*', 'features/*', 'models/*']);
    const sqs = s.filter((st) => st.actions.some((a) => a.startsWith('sqs:Send')));
    expect(sqs.flatMap((st) => st.resources).join(' ')).toContain('FeaturesQueue');
    expect(sqs.flatMap((st) => st.resources).join(' ')).not.toContain('Ingest');
  });

  it('lets drift-metric only list the monitoring records and read the reports: no write, no delete', () => {
    const s = statementsOf(stack, template, 'drift-metric');
    expect(listable(s)).toEqual(['models/*', 'monitoring/*']);
    expect(allowed(s, 's3:GetObject')).toEqual(['models/*/report.json']);
    expect(allowed(s, 's3:PutObject')).toEqual([]);
    expect(allowed(s, 's3:DeleteObject')).toEqual([]);
  });

  it('lets only the API manage API keys: this stack’s usage plan by ARN, keys by the stack tag, never a * resource', () => {
    const usagePlanId = stack.getLogicalId(
      stack.api.usagePlan.node.defaultChild as Parameters<TlearnStack['getLogicalId']>[0],
    );
    for (const name of FUNCTION_NAMES) {
      const apigw = statementsOf(stack, template, name).filter((s) =>
        s.actions.some((a) => a.startsWith('apigateway:')),
      );
      if (name !== 'api') {
        expect(apigw, name).toEqual([]);
        continue;
      }
      const byResource = (pattern: RegExp) => apigw.filter((s) => s.resources.some((r) => pattern.test(r)));
      for (const s of apigw) {
        expect(s.effect).toBe('Allow');
        expect(s.actions.every((a) => /^apigateway:(GET|POST|PUT|DELETE)$/.test(a))).toBe(true);
        for (const r of s.resources) {
          expect(r).not.toBe('"*"');
          // No other plan's keys, no REST API, no key of another stack or app without a condition.
          expect(r).not.toMatch(/usageplans\/\*|restapis|::\/\*/);
        }
      }
      // Keys of this stack only: read and delete by the key's tag, create and tag with it.
      const stackTag = { 'aws:ResourceTag/tlearn-stack': 'Iam' };
      expect(byResource(/::\/apikeys\/\*"/)).toEqual([
        expect.objectContaining({
          actions: ['apigateway:DELETE', 'apigateway:GET'],
          condition: { StringEquals: stackTag },
        }),
      ]);
      expect(byResource(/::\/apikeys"/)).toEqual([
        expect.objectContaining({
          actions: ['apigateway:POST'],
          condition: { StringEquals: { 'aws:RequestTag/tlearn-stack': 'Iam' } },
        }),
      ]);
      expect(byResource(/::\/tags\/\*"/)).toEqual([
        expect.objectContaining({
          actions: ['apigateway:PUT'],
          condition: {
            StringEquals: { 'aws:RequestTag/tlearn-stack': 'Iam' },
            'ForAllValues:StringEquals': {
              'aws:TagKeys': ['tlearn-role', 'tlearn-datasets', 'tlearn-stack'],
            },
          },
        }),
      ]);
      // Usage plan keys: only under this stack's plan, named by its id.
      const planKeys = byResource(/\/keys"/).filter((s) => !s.resources.some((r) => /apikeys/.test(r)));
      expect(planKeys).toHaveLength(1);
      expect(planKeys[0]?.resources.join(' ')).toContain(`{"Ref":"${usagePlanId}"}`);
      // Every apikeys/tags statement carries a condition; the rest names exact resources.
      for (const s of apigw.filter((x) => x.resources.some((r) => r.includes('*'))))
        expect(s.condition, JSON.stringify(s.resources)).toBeDefined();
    }
    // The function tags what it creates with the same value the policy requires.
    const api = Object.values(template.findResources('AWS::Lambda::Function')).find((f) =>
      JSON.stringify(f).includes('TLEARN_KEY_STACK_TAG'),
    ) as Resource | undefined;
    expect(JSON.stringify(api?.Properties.Environment)).toContain('"TLEARN_KEY_STACK_TAG":"Iam"');
  });
});
