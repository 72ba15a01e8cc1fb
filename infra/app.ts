/**
 * The CDK app (`cdk synth` / `cdk deploy`, see cdk.json). Settings come from context
 * (`-c tlearn:removalPolicy=destroy`, see infra/context.ts); cdk-nag's AWS Solutions checks run
 * on every synth, and an unacknowledged finding fails it.
 */
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { stackSettingsFromContext } from './context.ts';
import { TlearnStack } from './stack.ts';

const app = new App();
const { stackName, props } = stackSettingsFromContext(app.node);
new TlearnStack(app, stackName, {
  ...props,
  stackName,
  description:
    'tlearn: serverless transfer-learning image classifier (VGG16 features + logistic regression head)',
  // Environment-agnostic unless the CLI resolved an account/region (cdk deploy does).
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
