import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTEXT_KEYS, stackSettingsFromContext } from '../../infra/context.ts';
import type { TlearnStack } from '../../infra/stack.ts';
import { ENV } from '../../lib/config.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

type FunctionName = keyof TlearnStack['functions'];

/** The functions that load VGG16 or train on its features: they must agree on the precision. */
const MODEL_FUNCTIONS: readonly FunctionName[] = ['extract-features', 'api', 'batch-predict', 'train-head'];

function environmentOf(stack: TlearnStack, template: Template, name: FunctionName): Record<string, unknown> {
  const cfn = stack.functions[name].function.node.defaultChild as Parameters<TlearnStack['getLogicalId']>[0];
  const resource = template.toJSON().Resources[stack.getLogicalId(cfn)] as {
    Properties: { Environment?: { Variables?: Record<string, unknown> } };
  };
  return resource.Properties.Environment?.Variables ?? {};
}

describe('the tlearn:precision context value', () => {
  let testApp: TestApp;
  let stack: TlearnStack;
  let template: Template;

  beforeAll(() => {
    // Prepare: the stack as `cdk synth -c tlearn:precision=int8` builds it (infra/app.ts).
    testApp = createTestApp({ context: { [CONTEXT_KEYS.precision]: 'int8' } });
    const { props } = stackSettingsFromContext(testApp.app.node);
    stack = createTestStack(testApp.app, 'Int8', props);
    template = Template.fromStack(stack);
  }, 120_000);

  afterAll(() => testApp.cleanup());

  it('sets TLEARN_PRECISION=int8 on the extractor, the API, batch predictions and the trainer', () => {
    for (const name of MODEL_FUNCTIONS) {
      expect(environmentOf(stack, template, name), name).toMatchObject({ [ENV.PRECISION]: 'int8' });
    }
  });

  it('leaves it off the functions that never touch features', () => {
    for (const name of ['start-training', 'promote-model', 'finish-training'] as const) {
      expect(environmentOf(stack, template, name), name).not.toHaveProperty(ENV.PRECISION);
    }
  });

  it('is read from the command line as a typed prop, fp32 by default', () => {
    const settings = (context: Record<string, unknown>) =>
      stackSettingsFromContext(new App({ context }).node).props;
    expect(settings({ [CONTEXT_KEYS.precision]: 'int8' }).precision).toBe('int8');
    expect(settings({ [CONTEXT_KEYS.precision]: 'fp32' }).precision).toBe('fp32');
    expect(settings({}).precision).toBeUndefined();
  });

  it('rejects another value naming the key', () => {
    const app = new App({ context: { [CONTEXT_KEYS.precision]: 'int4' } });
    expect(() => stackSettingsFromContext(app.node)).toThrow(CONTEXT_KEYS.precision);
  });

  it('defaults the stack to fp32 and refuses an unknown precision prop', () => {
    const app = createTestApp();
    try {
      const fp32 = createTestStack(app.app, 'Fp32');
      expect(environmentOf(fp32, Template.fromStack(fp32), 'api')).toMatchObject({ [ENV.PRECISION]: 'fp32' });
      expect(() => createTestStack(app.app, 'Bad', { precision: 'int4' as never })).toThrow(/precision/);
    } finally {
      app.cleanup();
    }
  }, 120_000);
});
