import { CfnOutput, Stack } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { FunctionName } from '../lib/functions.ts';
import { DataBucket } from './constructs/data-bucket.ts';
import type { Monitoring } from './constructs/monitoring.ts';
import type { PredictionApi } from './constructs/prediction-api.ts';
import type { QueueConsumer } from './constructs/queue-consumer.ts';
import type { TlearnFunction } from './constructs/tlearn-function.ts';
import type { TrainingStateMachine } from './constructs/training-state-machine.ts';
import {
  suppressCdkProviderFindings,
  suppressFunctionRoleFindings,
  suppressStateMachineFindings,
} from './nag.ts';
import { addApi } from './parts/api.ts';
import { addBatches, addDeadLetters } from './parts/batch.ts';
import { addIngest } from './parts/ingest.ts';
import { addDriftMetric, addMonitoring } from './parts/monitoring.ts';
import type { StackContext } from './parts/shared.ts';
import { addTraining } from './parts/training.ts';
import { resolveStackSettings, type TlearnStackProps } from './stack-props.ts';

export type { FunctionSettings, TlearnStackProps } from './stack-props.ts';

/**
 * The whole app: bucket → ingest queue → extractor (container image) → features queue →
 * start-training → training state machine (check-readiness, train-head, promote-model), the
 * prediction API (container image), alarms and a dashboard.
 */
export class TlearnStack extends Stack {
  readonly data: DataBucket;
  readonly ingest: QueueConsumer;
  readonly features: QueueConsumer;
  /** Batch predictions: chunks of image keys → batch-predict (lib/batch/). */
  readonly batches: QueueConsumer;
  readonly functions: Readonly<Record<FunctionName, TlearnFunction>>;
  readonly training: TrainingStateMachine;
  readonly api: PredictionApi;
  /** Undefined when `monitoring: false`. */
  readonly monitoring: Monitoring | undefined;

  constructor(scope: Construct, id: string, props: TlearnStackProps = {}) {
    super(scope, id, props);
    const settings = resolveStackSettings(props);
    this.data = new DataBucket(this, 'Data', {
      removalPolicy: settings.removalPolicy,
      noncurrentVersionDays: props.noncurrentVersionDays,
      captureDays: props.captureDays,
      serverAccessLogs: props.serverAccessLogs,
    });
    const ctx: StackContext = { stack: this, props, settings, bucket: this.data.bucket };

    // Each part (infra/parts/) creates its resources with this stack as scope, so their logical
    // IDs do not depend on the parts (test/infra/logical-ids.test.ts), and grants its functions
    // what they need. Training first: start-training and the API need the state machine's ARN.
    const training = addTraining(ctx);
    this.training = training.training;
    this.features = training.features;
    const ingest = addIngest(ctx, this.features.queue);
    this.ingest = ingest.ingest;
    const batch = addBatches(ctx);
    this.batches = batch.batches;
    const deadLetters = addDeadLetters(ctx, {
      ingest: this.ingest,
      batches: this.batches,
      featuresQueue: this.features.queue,
    });
    const driftMetric = addDriftMetric(ctx);
    const api = addApi(ctx, {
      data: this.data,
      training,
      ingestQueue: this.ingest.queue,
      batchQueue: this.batches.queue,
    });
    this.api = api.api;
    // The order of the alarms and of the dashboard's widgets (infra/constructs/monitoring.ts).
    this.functions = {
      'batch-predict': batch.batchPredict,
      'dead-letters': deadLetters,
      'drift-metric': driftMetric,
      'extract-features': ingest.extractor,
      api: api.handler,
      'start-training': training.startTraining,
      'check-readiness': training.checkReadiness,
      'train-head': training.trainHead,
      'promote-model': training.promoteModel,
      'finish-training': training.finishTraining,
    };
    this.monitoring = addMonitoring(ctx, {
      ingest: this.ingest,
      features: this.features,
      batches: this.batches,
      functions: this.functions,
      training: this.training,
      api: this.api,
    });

    this.addOutputs();
    suppressFunctionRoleFindings(
      Object.values(this.functions).map((f) => f.role),
      settings.inboxPrefix,
    );
    suppressStateMachineFindings(this.training.stateMachine);
    suppressCdkProviderFindings(this);
  }

  private addOutputs(): void {
    new CfnOutput(this, 'ApiUrl', { value: this.api.api.url, description: 'Base URL of the HTTP API' });
    new CfnOutput(this, 'ApiKeyId', {
      value: this.api.apiKey.keyId,
      description: `API key id. Its value (the x-api-key header): aws apigateway get-api-key --api-key <ApiKeyId> --include-value --query value --output text --region ${this.region}`,
    });
    new CfnOutput(this, 'BucketName', {
      value: this.data.bucket.bucketName,
      description: 'Upload images to s3://<bucket>/datasets/{dataset}/{label}/',
    });
    new CfnOutput(this, 'StateMachineArn', {
      value: this.training.stateMachine.stateMachineArn,
      description: 'Training state machine',
    });
    new CfnOutput(this, 'IngestQueueUrl', {
      value: this.ingest.queue.queueUrl,
      description: 'S3 events of new images',
    });
    new CfnOutput(this, 'FeaturesQueueUrl', {
      value: this.features.queue.queueUrl,
      description: 'feature.ready / feature.failed messages',
    });
  }
}
