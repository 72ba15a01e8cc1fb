import { App, Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTEXT_KEYS, stackSettingsFromContext } from '../../infra/context.ts';
import type { TlearnStack } from '../../infra/stack.ts';
import { DRIFT_ALERT_PSI, DRIFT_METRIC_NAME, DRIFT_SETTINGS } from '../../lib/capture/drift.ts';
import { METRICS_NAMESPACE } from '../../lib/config.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };

const apps: TestApp[] = [];
let stack: TlearnStack;
let template: Template;

/** A stack as `cdk synth` would build it from this context (infra/app.ts reads it the same way). */
function fromContext(id: string, context: Record<string, unknown>): Template {
  const testApp = createTestApp({ context });
  apps.push(testApp);
  const { props } = stackSettingsFromContext(testApp.app.node);
  return Template.fromStack(createTestStack(testApp.app, id, props));
}

beforeAll(() => {
  const testApp = createTestApp();
  apps.push(testApp);
  stack = createTestStack(testApp.app, 'Drift');
  template = Template.fromStack(stack);
});
afterAll(() => {
  for (const a of apps) a.cleanup();
});

const driftAlarms = (t: Template): Resource[] =>
  (Object.values(t.findResources('AWS::CloudWatch::Alarm')) as Resource[]).filter(
    (a) => a.Properties.MetricName === DRIFT_METRIC_NAME,
  );
const scheduleRules = (t: Template): Resource[] =>
  (Object.values(t.findResources('AWS::Events::Rule')) as Resource[]).filter(
    (r) => r.Properties.ScheduleExpression !== undefined,
  );

describe('prediction drift in CloudWatch (lib/capture/drift.ts)', () => {
  it('alarms when the largest PSI passes the threshold the API answers with (drift.threshold)', () => {
    const [alarm, ...more] = driftAlarms(template);

    expect(more).toHaveLength(0);
    expect(alarm?.Properties).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: DRIFT_METRIC_NAME,
      Dimensions: [{ Name: 'service', Value: 'drift-metric' }],
      Statistic: 'Maximum',
      Period: DRIFT_SETTINGS.everyMinutes * 60,
      Threshold: DRIFT_ALERT_PSI,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      // No predictions, no point: nothing to page about.
      TreatMissingData: 'notBreaching',
    });
  });

  it('runs drift-metric on an hourly schedule, the alarm’s period', () => {
    const [rule, ...more] = scheduleRules(template);
    const fn = stack.getLogicalId(
      stack.functions['drift-metric'].function.node.defaultChild as Parameters<
        TlearnStack['getLogicalId']
      >[0],
    );

    expect(more).toHaveLength(0);
    expect(rule?.Properties.ScheduleExpression).toBe(
      events.Schedule.rate(Duration.minutes(DRIFT_SETTINGS.everyMinutes)).expressionString,
    );
    expect(rule?.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: { 'Fn::GetAtt': [fn, 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 2 },
      }),
    ]);
    template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: DRIFT_SETTINGS.memorySize,
      Timeout: DRIFT_SETTINGS.timeoutSeconds,
    });
  });

  it('puts the drift and its threshold on the dashboard', () => {
    const body = JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]);
    expect(body).toContain(DRIFT_METRIC_NAME);
    expect(body).toContain('alarm threshold');
  });

  it('has neither alarm nor schedule with -c tlearn:monitoring=false, and both with true', () => {
    const off = fromContext('DriftOff', { [CONTEXT_KEYS.monitoring]: 'false' });
    const on = fromContext('DriftOn', { [CONTEXT_KEYS.monitoring]: 'true' });

    expect(driftAlarms(off)).toHaveLength(0);
    expect(scheduleRules(off)).toHaveLength(0);
    expect(driftAlarms(on)).toHaveLength(1);
    expect(scheduleRules(on)).toHaveLength(1);
  });

  it('refuses a threshold or a period it cannot alarm on', async () => {
    const { Monitoring } = await import('../../infra/constructs/monitoring.ts');
    const { Stack } = await import('aws-cdk-lib');
    const make = (drift: Record<string, unknown>) => () =>
      new Monitoring(new Stack(new App(), 'S'), 'M', {
        queues: [],
        functions: {},
        stateMachine: stack.training.stateMachine,
        api: stack.api.api,
        drift: { function: stack.functions['drift-metric'].function, ...drift },
      });
    expect(make({ threshold: 0 })).toThrow(/threshold must be above 0/);
    expect(make({ every: Duration.seconds(90) })).toThrow(/whole number of minutes/);
  });
});
