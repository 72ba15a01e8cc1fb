/**
 * The cdk-nag findings (AWS Solutions checks, run by infra/app.ts on every synth) the stack
 * acknowledges, each with the reason it is acceptable here.
 */
import type { Stack } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { NagSuppressions } from 'cdk-nag';
import { LAYOUT_PREFIXES } from '../lib/storage/keys.ts';

/** The functions' roles: prefix-scoped S3 grants (infra/s3-access.ts) and execution ARNs. */
export function suppressFunctionRoleFindings(roles: readonly iam.IRole[], inboxPrefix: string): void {
  const bucketArn = '<DataBucket[A-Za-z0-9]+\\.Arn>';
  const prefixes = [...LAYOUT_PREFIXES, inboxPrefix]
    // The inbox is a user setting: its characters are matched literally.
    .map((p) => p.replace(/\/$/, '').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('|');
  for (const role of roles) {
    NagSuppressions.addResourceSuppressions(
      role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'S3 grants are scoped to one prefix of the S3 layout (datasets/*, features/*, models/*, base-models/*, locks/*, batches/*, console/*, settings/*, captures/*, monitoring/*, unlabelled/*, unlabelled-features/*, the batch inbox), to the models/*/current.json pointers, the models/*/model.onnx exports, the models/*/model.json heads, the models/*/report.json reports, the features/*.error.json records and features/*.npy features, or the datasets/*/capture-* copies of reviewed captures: the objects are created at run time, so the keys cannot be listed in the policy.',
          appliesTo: [
            {
              regex: `/^Resource::${bucketArn}\\/(${prefixes})\\/\\*(\\/current\\.json|\\/model\\.onnx|\\/model\\.json|\\/report\\.json|\\.error\\.json|\\.npy|\\/capture-\\*)?$/`,
            },
          ],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "The API and start-training describe executions of this one state machine (a training's status and failure cause; whether a lock's holder still runs); execution names are made at run time, so they cannot be listed in the policy.",
          appliesTo: [{ regex: '/^Resource::arn:.+:states:.+:execution:<[A-Za-z0-9]+\\.Name>:\\*$/' }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "CDK's grantRead/grantWrite action groups (s3:GetObject*, s3:GetBucket*, s3:List*, s3:DeleteObject*, s3:Abort*) cover the object-level variants (versions, tagging) of one operation on the prefix above.",
          appliesTo: [
            'Action::s3:GetObject*',
            'Action::s3:GetBucket*',
            'Action::s3:List*',
            'Action::s3:DeleteObject*',
            'Action::s3:Abort*',
          ],
        },
      ],
      true,
    );
  }
}

/** The training state machine's role. */
export function suppressStateMachineFindings(stateMachine: sfn.IStateMachine): void {
  NagSuppressions.addResourceSuppressions(
    stateMachine,
    [
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'Step Functions invokes the task functions by ARN; CDK also allows their versions/aliases (function-arn:*), which the tasks never use but which are the same functions.',
        appliesTo: [{ regex: '/^Resource::<[A-Za-z0-9]+Function[A-Za-z0-9]+\\.Arn>:\\*$/' }],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'X-Ray tracing and CloudWatch Logs delivery for Step Functions support no resource-level permissions (Resource: *).',
        appliesTo: ['Resource::*'],
      },
    ],
    true,
  );
}

/** The singleton Lambda providers CDK adds to the stack for S3 notifications and autoDeleteObjects. */
export function suppressCdkProviderFindings(stack: Stack): void {
  for (const child of stack.node.children) {
    const id = child.node.id;
    if (id.startsWith('BucketNotificationsHandler') || id.startsWith('Custom::S3AutoDeleteObjects')) {
      NagSuppressions.addResourceSuppressions(
        child,
        [
          {
            id: 'AwsSolutions-IAM4',
            reason:
              'CDK-provided singleton custom resource (S3 notifications / auto-delete) uses AWSLambdaBasicExecutionRole for its own logs.',
            appliesTo: [
              'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
            ],
          },
          {
            id: 'AwsSolutions-IAM5',
            reason:
              'CDK-provided custom resource: s3:PutBucketNotification has no resource-level scoping beyond the bucket it configures.',
            appliesTo: ['Resource::*'],
          },
          {
            id: 'AwsSolutions-L1',
            reason: 'CDK-provided custom resource provider; its runtime is chosen by aws-cdk-lib.',
          },
        ],
        true,
      );
    }
  }
}
