/**
 * The training state machine's ASL as the deployed stack has it, with concrete (fake) Lambda ARNs,
 * for a local Step Functions interpreter (aws-local-stepfunctions) that binds the task states to
 * local handlers. The definition comes from the real TlearnStack: same construct code, same
 * states, retries and catches as in AWS; only the wait times are props.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type CfnElement } from 'aws-cdk-lib';
import type { CfnStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { TRAINING_TASK_STATES, type TrainingTaskFunction } from './constructs/training-state-machine.ts';
import { readCdkJsonContext } from './paths.ts';
import { TlearnStack } from './stack.ts';

/** Account, region and partition of the fake ARNs. */
export const FAKE_ACCOUNT = '123456789012';
export const FAKE_REGION = 'us-east-1';

/** The fake ARN a task function gets in the definition. */
export function fakeFunctionArn(name: TrainingTaskFunction): string {
  return `arn:aws:lambda:${FAKE_REGION}:${FAKE_ACCOUNT}:function:${name}`;
}

export interface TrainingDefinitionOptions {
  /** Settle wait, seconds. @default PIPELINE_SETTINGS (the stack's default) */
  settleSeconds?: number;
  /** Wait between readiness checks, seconds. @default 30 */
  pollSeconds?: number;
  /** Polling rounds before training goes ahead on the ready images. @default 120 */
  maxRounds?: number;
  /** Follow-up trainings per execution. @default 20 */
  maxRetrains?: number;
}

export interface TrainingDefinition {
  /** The ASL (JSONPath) with every intrinsic resolved. */
  definition: Record<string, unknown>;
  /** Task `Resource` (a fake Lambda ARN) → the function it stands for. */
  taskFunctions: Record<string, TrainingTaskFunction>;
  /** Task state name → the function it invokes (aws-local-stepfunctions overrides by state name). */
  taskStates: Record<string, TrainingTaskFunction>;
}

/**
 * Builds the real stack in memory (NodejsFunction bundling skipped, no cdk-nag, no template
 * validation) and returns the state machine's definition with `Fn::GetAtt`/`Fn::Join`/`Ref`
 * resolved to fake ARNs such as `arn:aws:lambda:us-east-1:123456789012:function:check-readiness`.
 * Offline; about 2-4 s, mostly loading aws-cdk-lib.
 *
 * @example
 * const { definition, taskStates } = await synthesizeTrainingDefinition({ settleSeconds: 0, pollSeconds: 1 });
 * const machine = new StateMachine(definition); // aws-local-stepfunctions
 */
export async function synthesizeTrainingDefinition(
  opts: TrainingDefinitionOptions = {},
): Promise<TrainingDefinition> {
  // The container image's build context is staged at construction: into a throw-away folder.
  const outdir = mkdtempSync(join(tmpdir(), 'tlearn-definition-'));
  try {
    const app = new App({
      outdir,
      builtinCloudFormationValidation: false,
      context: { ...readCdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
    });
    const stack = new TlearnStack(app, 'Tlearn', {
      env: { account: FAKE_ACCOUNT, region: FAKE_REGION },
      training: {
        settleSeconds: opts.settleSeconds,
        pollSeconds: opts.pollSeconds,
        maxRounds: opts.maxRounds,
        maxRetrains: opts.maxRetrains,
      },
    });

    const arnsByLogicalId = new Map<string, string>();
    const taskFunctions: Record<string, TrainingTaskFunction> = {};
    for (const name of new Set(Object.values(TRAINING_TASK_STATES))) {
      const cfn = stack.functions[name].function.node.defaultChild as CfnElement;
      const arn = fakeFunctionArn(name);
      arnsByLogicalId.set(stack.getLogicalId(cfn), arn);
      taskFunctions[arn] = name;
    }

    const cfnMachine = stack.training.stateMachine.node.defaultChild as CfnStateMachine;
    const resolved: unknown = stack.resolve(cfnMachine.definitionString);
    const text = resolveIntrinsics(resolved, arnsByLogicalId);
    if (typeof text !== 'string') throw new Error('state machine definition did not resolve to a string');
    const definition = JSON.parse(text) as Record<string, unknown>;
    return { definition, taskFunctions, taskStates: { ...TRAINING_TASK_STATES } };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

const PSEUDO_PARAMETERS: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': FAKE_REGION,
  'AWS::AccountId': FAKE_ACCOUNT,
  'AWS::URLSuffix': 'amazonaws.com',
};

/** Resolves the CloudFormation intrinsics a definition string can contain; throws on others. */
function resolveIntrinsics(value: unknown, arns: ReadonlyMap<string, string>): unknown {
  if (
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'boolean' ||
    value === null
  ) {
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, arns));
  if (typeof value !== 'object') throw new Error(`unexpected value in definition: ${String(value)}`);
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1 && keys[0] === 'Fn::Join') {
    const [sep, parts] = obj['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => String(resolveIntrinsics(p, arns))).join(sep);
  }
  if (keys.length === 1 && keys[0] === 'Fn::GetAtt') {
    const [logicalId, attr] = obj['Fn::GetAtt'] as [string, string];
    const arn = arns.get(logicalId);
    if (attr !== 'Arn' || arn === undefined) {
      throw new Error(`definition references ${logicalId}.${attr}, which is not a training task function`);
    }
    return arn;
  }
  if (keys.length === 1 && keys[0] === 'Ref') {
    const ref = obj.Ref as string;
    const pseudo = PSEUDO_PARAMETERS[ref];
    if (pseudo === undefined) throw new Error(`definition references ${ref}, which has no local value`);
    return pseudo;
  }
  return Object.fromEntries(keys.map((k) => [k, resolveIntrinsics(obj[k], arns)]));
}
