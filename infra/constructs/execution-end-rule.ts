import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import {
  EXECUTION_STATUS_CHANGE,
  LOCK_RELEASING_STATUSES,
  STEP_FUNCTIONS_EVENT_SOURCE,
} from '../../lib/pipeline/execution-ended.ts';

export interface ExecutionEndRuleProps {
  /**
   * Name of the training state machine (set explicitly by the stack): its ARN is built from the
   * name, because the handler's own state machine invokes it (a reference would be a cycle).
   */
  readonly stateMachineName: string;
  /** The function that releases the lock (finish-training). */
  readonly handler: lambda.IFunction;
  /** How long EventBridge keeps retrying a delivery. @default Duration.hours(24) */
  readonly maxEventAge?: Duration;
}

/**
 * "Every way an execution ends releases the lock" (docs/ARCHITECTURE.md "Orchestration: one
 * training per dataset"): an EventBridge rule on Step Functions' "Execution Status Change" events
 * of the training state machine, FAILED / TIMED_OUT / ABORTED only, → the handler; the handler
 * may start executions of that state machine (a fresh one takes a dirty lock over) and is
 * invocable by this rule only (its resource policy names the rule's ARN).
 */
export class ExecutionEndRule extends Construct {
  readonly rule: events.Rule;
  /** `arn:…:stateMachine:{name}` */
  readonly stateMachineArn: string;

  constructor(scope: Construct, id: string, props: ExecutionEndRuleProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.stateMachineArn = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: props.stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.rule = new events.Rule(this, 'Rule', {
      description:
        'Training executions that end without Finish (failed, timed out, stopped) release their lock',
      eventPattern: {
        source: [STEP_FUNCTIONS_EVENT_SOURCE],
        detailType: [EXECUTION_STATUS_CHANGE],
        detail: {
          status: [...LOCK_RELEASING_STATUSES],
          stateMachineArn: [this.stateMachineArn],
        },
      },
    });
    this.rule.addTarget(
      new targets.LambdaFunction(props.handler, {
        maxEventAge: props.maxEventAge ?? Duration.hours(24),
        retryAttempts: 185,
      }),
    );
    // A fresh execution of this state machine only (the lock names it; StartExecution by name).
    props.handler.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [this.stateMachineArn] }),
    );
  }
}
