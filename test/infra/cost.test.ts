import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { stackSettingsFromContext } from '../../infra/context.ts';
import { synthesizeTrainingDefinition } from '../../infra/definition.ts';
import { TRAINING_TRANSITIONS_HAPPY_PATH, TRANSITIONS_PER_READINESS_ROUND } from '../../lib/cost/usage.ts';
import { MONITORING_ALARMS, MONITORING_DASHBOARDS } from '../../lib/estimate/estimate.ts';
import { createTestApp, createTestStack } from './synth.ts';

const apps: { cleanup(): void }[] = [];
afterAll(() => {
  for (const a of apps) a.cleanup();
});

describe("the cost model's view of the stack", () => {
  it('counts the alarms and dashboards the stack has, and none with monitoring off (tlearn:monitoring=false)', () => {
    const on = createTestApp();
    const off = createTestApp();
    apps.push(on, off);
    const withMonitoring = Template.fromStack(createTestStack(on.app, 'On'));
    const without = Template.fromStack(createTestStack(off.app, 'Off', { monitoring: false }));

    withMonitoring.resourceCountIs('AWS::CloudWatch::Alarm', MONITORING_ALARMS);
    withMonitoring.resourceCountIs('AWS::CloudWatch::Dashboard', MONITORING_DASHBOARDS);
    without.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    without.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    const ctx = (v: string) =>
      stackSettingsFromContext(new App({ context: { 'tlearn:monitoring': v } }).node);
    expect(ctx('false').props.monitoring).toBe(false);
    expect(ctx('true').props.monitoring).toBe(true);
  });

  it('walks the synthesized training definition: the happy path has the transitions the reports bill', async () => {
    const { definition } = await synthesizeTrainingDefinition();
    const states = definition.States as Record<
      string,
      { Type: string; Next?: string; Default?: string; Choices?: { Next: string }[]; End?: boolean }
    >;

    // Follow Next; at a Choice take the branch that leads to TrainHead (Default = every feature ready).
    const path: string[] = [];
    let name: string | undefined = definition.StartAt as string;
    while (name !== undefined && path.length < 50) {
      path.push(name);
      const s: (typeof states)[string] | undefined = states[name];
      if (s === undefined || s.Type === 'Succeed' || s.Type === 'Fail' || s.End) break;
      name = s.Type === 'Choice' ? s.Default : s.Next;
    }
    expect(states[path[path.length - 1] ?? '']?.Type).toBe('Succeed');
    expect(path).toHaveLength(TRAINING_TRANSITIONS_HAPPY_PATH);
    // A readiness round: WaitForFeatures → NextRound → CheckReadiness → the Choice again.
    const choice = path.find((n) => states[n]?.Type === 'Choice') ?? '';
    const round: string[] = [];
    let r: string | undefined = states[choice]?.Choices?.[0]?.Next;
    while (r !== undefined && r !== choice && round.length < 10) {
      round.push(r);
      r = states[r]?.Next;
    }
    expect(round.length + 1).toBe(TRANSITIONS_PER_READINESS_ROUND);
  });
});
