import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Lambda's documented bound for the SQS event source's `maxConcurrency`. */
const MAX_CONCURRENCY_RANGE = [2, 1000] as const;

export interface QueueConsumerProps {
  /** The function that consumes the queue. */
  readonly consumer: lambda.IFunction;
  /**
   * The consumer's timeout (not readable from `IFunction`): the visibility timeout must cover a
   * whole batch plus retries, so it is validated against it.
   */
  readonly consumerTimeout: Duration;
  /** Messages per invocation, 1-10000 (above 10 needs `maxBatchingWindow`). @default 10 */
  readonly batchSize?: number;
  /** How long Lambda gathers a batch, 0-300 s. @default - none (0 s) */
  readonly maxBatchingWindow?: Duration;
  /** Upper bound of concurrent invocations by this source, 2-1000. @default - none (scales with the queue) */
  readonly maxConcurrency?: number;
  /** Receives before a message goes to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /**
   * Queue visibility timeout. AWS asks for at least 6x the function timeout (plus the batching
   * window) so a message is not redelivered while a retried invocation still works on it.
   * @default 6 x consumerTimeout + maxBatchingWindow
   */
  readonly visibilityTimeout?: Duration;
  /** How long the DLQ keeps failed messages for inspection and redrive. @default Duration.days(14) */
  readonly deadLetterRetention?: Duration;
  /**
   * The DLQ's visibility timeout, when a function consumes it (infra/constructs/dead-letter-consumer.ts).
   * @default - SQS's default (30 s)
   */
  readonly deadLetterVisibilityTimeout?: Duration;
  /** @default RemovalPolicy.DESTROY (messages are transient; the data lives in S3) */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * An encrypted SQS queue with a dead-letter queue, consumed by a Lambda function with partial
 * batch responses (`reportBatchItemFailures`), in the style of the aws-sqs-lambda Solutions
 * Construct. Both queues use SQS-managed encryption and deny non-TLS access.
 */
export class QueueConsumer extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly eventSource: SqsEventSource;

  constructor(scope: Construct, id: string, props: QueueConsumerProps) {
    super(scope, id);
    const batchSize = props.batchSize ?? 10;
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    const window = props.maxBatchingWindow;
    const minVisibility = props.consumerTimeout.toSeconds() * 6;
    const visibilityTimeout =
      props.visibilityTimeout ?? Duration.seconds(minVisibility + (window?.toSeconds() ?? 0));

    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
      throw new Error(`${id}: batchSize must be an integer from 1 to 10000 (got ${batchSize})`);
    }
    if (window !== undefined && window.toSeconds() > 300) {
      throw new Error(`${id}: maxBatchingWindow must be at most 300 s (got ${window.toSeconds()} s)`);
    }
    if (batchSize > 10 && (window === undefined || window.toSeconds() < 1)) {
      throw new Error(`${id}: batchSize above 10 needs a maxBatchingWindow of at least 1 s`);
    }
    const maxConcurrency = props.maxConcurrency;
    if (
      maxConcurrency !== undefined &&
      !Token.isUnresolved(maxConcurrency) &&
      (!Number.isInteger(maxConcurrency) ||
        maxConcurrency < MAX_CONCURRENCY_RANGE[0] ||
        maxConcurrency > MAX_CONCURRENCY_RANGE[1])
    ) {
      throw new Error(`${id}: maxConcurrency must be an integer from 2 to 1000 (got ${maxConcurrency})`);
    }
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
      throw new Error(`${id}: maxReceiveCount must be an integer from 1 to 1000 (got ${maxReceiveCount})`);
    }
    if (visibilityTimeout.toSeconds() < minVisibility) {
      throw new Error(
        `${id}: visibilityTimeout (${visibilityTimeout.toSeconds()} s) must be at least 6x the consumer's timeout (${minVisibility} s)`,
      );
    }
    if (visibilityTimeout.toSeconds() > 43_200) {
      throw new Error(
        `${id}: visibilityTimeout must be at most 12 h (got ${visibilityTimeout.toSeconds()} s)`,
      );
    }

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: props.deadLetterRetention ?? Duration.days(14),
      visibilityTimeout: props.deadLetterVisibilityTimeout,
      removalPolicy,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
      removalPolicy,
    });
    this.eventSource = new SqsEventSource(this.queue, {
      batchSize,
      maxBatchingWindow: window,
      maxConcurrency,
      reportBatchItemFailures: true,
    });
    props.consumer.addEventSource(this.eventSource);
  }
}
