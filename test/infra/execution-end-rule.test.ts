import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TlearnStack } from '../../infra/stack.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: unknown };

let testApp: TestApp;
let stack: TlearnStack;
let template: Template;
let resources: Record<string, Resource>;

beforeAll(() => {
  testApp = createTestApp();
  stack = createTestStack(testApp.app, 'Ends');
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Record<string, Resource>;
});
afterAll(() => testApp.cleanup());

/** The stack's event-pattern rules (the monitoring's drift schedule is a rule too, without a pattern). */
const patternRules = (): Record<string, Resource> =>
  Object.fromEntries(
    Object.entries(template.findResources('AWS::Events::Rule') as Record<string, Resource>).filter(
      ([, r]) => r.Properties.EventPattern !== undefined,
    ),
  );

const logicalId = (construct: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId(construct.node.defaultChild as Parameters<TlearnStack['getLogicalId']>[0]);

/** `arn:aws:states:eu-west-1:123456789012:stateMachine:train-Ends`, as the template spells it. */
const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:train-Ends';

describe('the end of a training execution releases its lock (EventBridge → finish-training)', () => {
  it("matches this state machine's FAILED, TIMED_OUT and ABORTED status changes only", () => {
    const rules = patternRules();

    expect(Object.keys(rules)).toHaveLength(1);
    const rule = Object.values(rules)[0] as Resource;
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: { status: ['FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: [STATE_MACHINE_ARN] },
    });
    expect(rule.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: { 'Fn::GetAtt': [logicalId(stack.functions['finish-training'].function), 'Arn'] },
        RetryPolicy: { MaximumEventAgeInSeconds: 86_400, MaximumRetryAttempts: 185 },
      }),
    ]);
  });

  it('names the same ARN the state machine gets, without a reference (no dependency cycle)', () => {
    const machine = resources[logicalId(stack.training.stateMachine)] as Resource;

    expect(machine.Properties.StateMachineName).toBe('train-Ends');
    expect(stack.resolve(stack.training.stateMachine.stateMachineArn)).toEqual({
      Ref: logicalId(stack.training.stateMachine),
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: Match.absent(),
      Environment: {
        Variables: Match.objectLike({ TLEARN_STATE_MACHINE_ARN: STATE_MACHINE_ARN }),
      },
    });
  });

  it('lets only that rule invoke finish-training (its one resource policy names the rule)', () => {
    const fn = logicalId(stack.functions['finish-training'].function);
    const rule = Object.keys(patternRules())[0];
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission')).filter((p) =>
      JSON.stringify((p as Resource).Properties.FunctionName).includes(`"${fn}"`),
    ) as Resource[];

    expect(permissions.map((p) => p.Properties)).toEqual([
      {
        Action: 'lambda:InvokeFunction',
        FunctionName: { 'Fn::GetAtt': [fn, 'Arn'] },
        Principal: 'events.amazonaws.com',
        SourceArn: { 'Fn::GetAtt': [rule, 'Arn'] },
      },
    ]);
  });

  it('lets finish-training start executions of the training state machine only, and describe none', () => {
    const role = logicalId(stack.functions['finish-training'].role);
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify((p as Resource).Properties.Roles).includes(`"${role}"`))
      .flatMap(
        (p) =>
          ((p as Resource).Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement,
      );
    const states = statements.filter((s) => JSON.stringify(s.Action).includes('states:'));

    expect(states).toEqual([
      { Action: 'states:StartExecution', Effect: 'Allow', Resource: STATE_MACHINE_ARN },
    ]);
  });

  it('gives the state machine the worst-case duration of an execution as its timeout', () => {
    const machine = resources[logicalId(stack.training.stateMachine)] as Resource;
    const definition = JSON.stringify(stack.resolve(machine.Properties.DefinitionString));

    // A task: its timeout (function + 60 s) x 7 attempts + backoff 2+4+8+16+32+60 = 122 s.
    // check-readiness 120 x 7 + 122 = 962; train-head 960 x 7 + 122 = 6,842; promote and finish
    // 90 x 7 + 122 = 752 each. One training: settle 60 + 962 + 120 x (30 + 962) + 6,842 + 752 +
    // 752 = 128,408 s; 1 + 4 retrains: 642,040 s (7.4 days).
    expect(stack.training.timeoutSeconds).toBe(642_040);
    expect(definition).toContain('\\"TimeoutSeconds\\":642040');
  });
});
