import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface DeadLetterConsumerProps {
  /** The function that records dead messages (functions/dead-letters). */
  readonly consumer: lambda.IFunction;
  /** The dead-letter queues it drains (their visibility timeout must cover the consumer's timeout). */
  readonly queues: readonly sqs.IQueue[];
  /** Messages per invocation, 1-10. @default 10 */
  readonly batchSize?: number;
  /** Concurrent invocations per queue, 2-1000. @default 2 */
  readonly maxConcurrency?: number;
}

/**
 * Dead-letter queues drained by one function with partial batch responses: what fails again is
 * received again after the queue's visibility timeout, for as long as the queue keeps it. Nothing
 * is deleted unrecorded. See docs/ARCHITECTURE.md "Dead letters".
 */
export class DeadLetterConsumer extends Construct {
  readonly eventSources: readonly SqsEventSource[];

  constructor(scope: Construct, id: string, props: DeadLetterConsumerProps) {
    super(scope, id);
    const batchSize = props.batchSize ?? 10;
    const maxConcurrency = props.maxConcurrency ?? 2;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
      throw new Error(`${id}: batchSize must be an integer from 1 to 10 (got ${batchSize})`);
    }
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 2 || maxConcurrency > 1000) {
      throw new Error(`${id}: maxConcurrency must be an integer from 2 to 1000 (got ${maxConcurrency})`);
    }
    if (props.queues.length === 0) throw new Error(`${id}: give at least one dead-letter queue`);
    this.eventSources = props.queues.map((queue) => {
      const source = new SqsEventSource(queue, { batchSize, maxConcurrency, reportBatchItemFailures: true });
      props.consumer.addEventSource(source);
      return source;
    });
  }
}
