import type { SQSEvent } from 'aws-lambda';
import type { QueueMessage } from '../../lib/pipeline/ingest.ts';

/** Lambda's SQS event → the queue messages `lib/pipeline` takes (no Lambda shapes in lib/). */
export function toQueueMessages(event: SQSEvent): QueueMessage[] {
  return event.Records.map((r) => ({
    id: r.messageId,
    body: r.body,
    receiveCount: Number(r.attributes?.ApproximateReceiveCount ?? '1') || 1,
  }));
}
