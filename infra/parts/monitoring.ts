/**
 * Monitoring: drift-metric (prediction drift → a CloudWatch metric, lib/capture/drift.ts), and,
 * unless `monitoring: false`, the alarms, the dashboard and the drift schedule
 * (infra/constructs/monitoring.ts).
 */
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { ENV } from '../../lib/config.ts';
import type { FunctionName } from '../../lib/functions.ts';
import { MODELS_PREFIX, MONITORING_PREFIX } from '../../lib/storage/keys.ts';
import { Monitoring } from '../constructs/monitoring.ts';
import type { PredictionApi } from '../constructs/prediction-api.ts';
import type { QueueConsumer } from '../constructs/queue-consumer.ts';
import type { TlearnFunction } from '../constructs/tlearn-function.ts';
import type { TrainingStateMachine } from '../constructs/training-state-machine.ts';
import { grantS3Access } from '../s3-access.ts';
import { createFunction, type StackContext } from './shared.ts';

/** drift-metric, which the monitoring's schedule runs. */
export function addDriftMetric(ctx: StackContext): TlearnFunction {
  const driftMetric = createFunction(ctx, 'drift-metric', { [ENV.BUCKET]: ctx.bucket.bucketName });
  // The monitoring records' keys (LIST only) and each version's report (its held-out set).
  grantS3Access(driftMetric.function, ctx.bucket, {
    list: [MONITORING_PREFIX, MODELS_PREFIX],
    read: [`${MODELS_PREFIX}*/report.json`],
  });
  return driftMetric;
}

/** What the alarms and the dashboard watch. */
export interface Watched {
  readonly ingest: QueueConsumer;
  readonly features: QueueConsumer;
  readonly batches: QueueConsumer;
  /** Every function, in the order of their alarms and dashboard widgets. */
  readonly functions: Readonly<Record<FunctionName, TlearnFunction>>;
  readonly training: TrainingStateMachine;
  readonly api: PredictionApi;
}

/** The alarms and the dashboard; undefined when `monitoring: false`. */
export function addMonitoring(ctx: StackContext, watched: Watched): Monitoring | undefined {
  const { stack, props } = ctx;
  if (props.monitoring === false) return undefined;
  const functions: Record<string, lambda.IFunction> = Object.fromEntries(
    Object.entries(watched.functions).map(([n, f]) => [n, f.function]),
  );
  return new Monitoring(stack, 'Monitoring', {
    queues: [
      {
        name: 'ingest',
        queue: watched.ingest.queue,
        deadLetterQueue: watched.ingest.deadLetterQueue,
        deadLettersConsumed: true,
      },
      {
        name: 'features',
        queue: watched.features.queue,
        deadLetterQueue: watched.features.deadLetterQueue,
      },
      {
        name: 'batches',
        queue: watched.batches.queue,
        deadLetterQueue: watched.batches.deadLetterQueue,
        deadLettersConsumed: true,
      },
    ],
    functions,
    stateMachine: watched.training.stateMachine,
    api: watched.api.api,
    drift: { function: watched.functions['drift-metric'].function },
    alarmActions: props.alarmTopicArn
      ? [new cwActions.SnsAction(sns.Topic.fromTopicArn(stack, 'AlarmTopic', props.alarmTopicArn))]
      : [],
  });
}
