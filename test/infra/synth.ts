/**
 * Builds TlearnStacks for the infra tests the way `cdk synth` does (cdk.json's feature flags), but
 * fast: NodejsFunction bundling skipped (`aws:cdk:bundling-stacks: []`), CloudFormation template
 * validation off (`cdk synth` keeps it), everything staged into a temp folder removed by `cleanup`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readCdkJsonContext } from '../../infra/paths.ts';
import { TlearnStack, type TlearnStackProps } from '../../infra/stack.ts';

export interface TestApp {
  app: App;
  outdir: string;
  cleanup(): void;
}

/** An App with the repo's context, no bundling, optionally cdk-nag's AWS Solutions checks. */
export function createTestApp(opts: { nag?: boolean; context?: Record<string, unknown> } = {}): TestApp {
  const outdir = mkdtempSync(join(tmpdir(), 'tlearn-infra-test-'));
  const app = new App({
    outdir,
    builtinCloudFormationValidation: false,
    context: { ...readCdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...opts.context },
  });
  if (opts.nag) Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  return { app, outdir, cleanup: () => rmSync(outdir, { recursive: true, force: true }) };
}

/** A stack in a known environment (so ARNs and partitions resolve like a real deploy). */
export function createTestStack(app: App, id: string, props: TlearnStackProps = {}): TlearnStack {
  return new TlearnStack(app, id, { env: { account: '123456789012', region: 'eu-west-1' }, ...props });
}
