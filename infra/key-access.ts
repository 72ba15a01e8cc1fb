/**
 * What the API function may do with API Gateway's keys (lib/api/keys-aws.ts): only this stack's
 * usage plan and keys, never every key in the region (docs/ARCHITECTURE.md "Tenancy").
 *
 * A separate `iam.Policy` attached to the API function's role, so it can name the usage plan: the
 * plan depends on the stage, the stage on the methods, the methods on the function; a statement in
 * the role's default policy would make the function depend on the plan (a cycle). The function does
 * not wait for this policy; until it exists (a few seconds at the first deploy) POST /keys is refused.
 *
 * API keys have no per-API ARN, so keys are told apart by the `tlearn-stack` tag the function puts
 * on every key it creates (the stack's admin key gets it from CloudFormation):
 * - `aws:RequestTag/tlearn-stack` on create (CreateApiKey with tags needs POST on `/apikeys` and PUT
 *   on `/tags/…`, both checked), with `aws:TagKeys` limited to the three tlearn tags;
 * - `aws:ResourceTag/tlearn-stack` on read and delete (`/apikeys/{id}`);
 * - usage plan keys only under this stack's plan (`/usageplans/{id}/keys`, by resource ARN);
 * - listing usage plans (`GET /usageplans`: names, stages, limits; no keys) is how the function finds
 *   the plan of the request's stage, since it cannot be told the plan's id (the same cycle).
 * No `apigateway:DELETE` on `/tags`, no `PATCH` anywhere: a key's tags cannot be removed or edited.
 */
import { Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as iam from 'aws-cdk-lib/aws-iam';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { KEY_DATASETS_TAG, KEY_ROLE_TAG, KEY_STACK_TAG } from '../lib/api/keys.ts';

export interface KeyAccessProps {
  /** The API function's role. */
  readonly role: iam.IRole;
  /** This stack's usage plan (the only one whose keys the role may list or add to). */
  readonly usagePlan: apigw.IUsagePlan;
  /** Value of the `tlearn-stack` tag on this stack's keys. */
  readonly stackTag: string;
}

/** Attaches the key-management policy to the API role and returns it. */
export function grantKeyManagement(scope: Construct, id: string, props: KeyAccessProps): iam.Policy {
  const { partition, region } = Stack.of(scope);
  const arn = (path: string) => `arn:${partition}:apigateway:${region}::${path}`;
  const stackTag = `aws:RequestTag/${KEY_STACK_TAG}`;
  const policy = new iam.Policy(scope, id, {
    roles: [props.role],
    statements: [
      new iam.PolicyStatement({ actions: ['apigateway:GET'], resources: [arn('/usageplans')] }),
      new iam.PolicyStatement({
        actions: ['apigateway:GET', 'apigateway:POST'],
        resources: [arn(`/usageplans/${props.usagePlan.usagePlanId}/keys`)],
      }),
      new iam.PolicyStatement({
        actions: ['apigateway:POST'],
        resources: [arn('/apikeys')],
        conditions: { StringEquals: { [stackTag]: props.stackTag } },
      }),
      new iam.PolicyStatement({
        actions: ['apigateway:PUT'],
        resources: [arn('/tags/*')],
        conditions: {
          StringEquals: { [stackTag]: props.stackTag },
          'ForAllValues:StringEquals': { 'aws:TagKeys': [KEY_ROLE_TAG, KEY_DATASETS_TAG, KEY_STACK_TAG] },
        },
      }),
      new iam.PolicyStatement({
        actions: ['apigateway:GET', 'apigateway:DELETE'],
        resources: [arn('/apikeys/*')],
        conditions: { StringEquals: { [`aws:ResourceTag/${KEY_STACK_TAG}`]: props.stackTag } },
      }),
    ],
  });
  NagSuppressions.addResourceSuppressions(policy, [
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'API keys are created at run time (POST /keys) and have no ARN per API: reads and deletes of /apikeys/* require the key to carry this stack’s tlearn-stack tag (aws:ResourceTag), and tagging (/tags/*) is allowed only with that tag value and the tlearn tag keys (aws:RequestTag, aws:TagKeys).',
      appliesTo: [{ regex: '/^Resource::arn:.+:apigateway:.+::\\/(apikeys|tags)\\/\\*$/' }],
    },
  ]);
  return policy;
}
