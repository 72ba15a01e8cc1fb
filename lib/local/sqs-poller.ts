/**
 * A local stand-in for Lambda's SQS event source mapping: long-polls a queue, hands batches to a
 * handler as the Lambda SQS event, and applies the handler's partial batch response
 * (`ReportBatchItemFailures`) like Lambda does. Failed messages are left in the queue to reappear
 * after the visibility timeout; the queue's own RedrivePolicy moves them to its DLQ after
 * `maxReceiveCount` receives (fauxqs implements redrive natively, so the poller does not).
 */
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';
import { createLambdaContext, type LambdaHandler } from './lambda-context.ts';

/** Options of {@link startSqsPoller}. */
export interface SqsPollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** The function's handler: SQS event in, partial batch response (or nothing) out. */
  handler: LambdaHandler<SQSEvent, SQSBatchResponse | unknown>;
  /** Name for logs and the Lambda context. */
  functionName: string;
  region: string;
  /** Most records per invocation (Lambda's BatchSize). @default 10 */
  batchSize?: number;
  /**
   * How long to keep gathering records before invoking (Lambda's MaximumBatchingWindowInSeconds),
   * in ms. 0 invokes with whatever one receive returned. @default 0
   */
  maxBatchingWindowMs?: number;
  /** Long-poll wait of each receive, seconds (0-20). @default 20 */
  waitTimeSeconds?: number;
  /** Visibility timeout of received messages, seconds. @default the queue's */
  visibilityTimeout?: number;
  /** Whether the handler reports partial batch failures (the mapping's FunctionResponseTypes). @default true */
  reportBatchItemFailures?: boolean;
  /** The function timeout the context counts down from, ms. @default 900000 */
  functionTimeoutMs?: number;
  log: Log;
}

/** Counters of a poller (for progress displays and tests). */
export interface SqsPollerStats {
  batches: number;
  records: number;
  /** Records the handler failed (reported, or the whole batch when it threw). */
  failedRecords: number;
}

/** A running poller. */
export interface SqsPoller {
  readonly stats: Readonly<SqsPollerStats>;
  /** Whether a batch is being handled right now. */
  readonly busy: boolean;
  /** Stops receiving and resolves after the batch in flight (if any) is handled and deleted. */
  stop(): Promise<void>;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Converts SDK message attributes to the Lambda event's lower-camel shape. */
function toLambdaMessageAttributes(attrs: Message['MessageAttributes']): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, a] of Object.entries(attrs ?? {})) {
    out[name] = {
      dataType: a.DataType ?? 'String',
      ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : {}),
      ...(a.BinaryValue !== undefined ? { binaryValue: Buffer.from(a.BinaryValue).toString('base64') } : {}),
      stringListValues: a.StringListValues ?? [],
      binaryListValues: (a.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
    };
  }
  return out;
}

/** Builds one Lambda SQS event record from a received message. */
export function toSqsRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const a = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? '000000000000',
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      ...(a.MessageGroupId ? { MessageGroupId: a.MessageGroupId } : {}),
      ...(a.MessageDeduplicationId ? { MessageDeduplicationId: a.MessageDeduplicationId } : {}),
      ...(a.SequenceNumber ? { SequenceNumber: a.SequenceNumber } : {}),
    },
    messageAttributes: toLambdaMessageAttributes(message.MessageAttributes),
    md5OfBody: message.MD5OfBody ?? '',
    ...(message.MD5OfMessageAttributes ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/**
 * Which records failed, by Lambda's rules for `ReportBatchItemFailures`: no response, an empty
 * or missing `batchItemFailures` = all succeeded; an identifier that is empty or not in the batch
 * = the whole batch failed (so do a thrown error and a response that is not an object).
 */
export function failedMessageIds(
  response: unknown,
  batchIds: readonly string[],
): { failed: Set<string>; invalid?: string } {
  const all = () => new Set(batchIds);
  if (response === undefined || response === null) return { failed: new Set() };
  if (typeof response !== 'object' || Array.isArray(response))
    return { failed: all(), invalid: 'the response is not an object' };
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return { failed: new Set() };
  if (!Array.isArray(failures)) return { failed: all(), invalid: 'batchItemFailures is not an array' };
  const known = new Set(batchIds);
  const failed = new Set<string>();
  for (const f of failures) {
    const id = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || id === '' || !known.has(id)) {
      return {
        failed: all(),
        invalid: `itemIdentifier ${JSON.stringify(id)} is not a message of this batch`,
      };
    }
    failed.add(id);
  }
  return { failed };
}

/**
 * Starts polling `queueUrl` and invoking `handler` with batches, one batch at a time (like a
 * mapping with maximum concurrency 1: the handlers are CPU-bound and share this process).
 *
 * @example
 * const poller = await startSqsPoller({ sqs, queueUrl, handler, functionName: 'extract-features', region, log });
 * // … later
 * await poller.stop();
 */
export async function startSqsPoller(opts: SqsPollerOptions): Promise<SqsPoller> {
  const { sqs, queueUrl, log, functionName } = opts;
  const batchSize = Math.max(1, opts.batchSize ?? 10);
  const windowMs = Math.max(0, opts.maxBatchingWindowMs ?? 0);
  const waitTimeSeconds = Math.min(20, Math.max(0, opts.waitTimeSeconds ?? 20));
  const reportFailures = opts.reportBatchItemFailures ?? true;
  const attrs = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  const queueArn = attrs.Attributes?.QueueArn ?? queueUrl;

  const stats: SqsPollerStats = { batches: 0, records: 0, failedRecords: 0 };
  const abort = new AbortController();
  let busy = false;

  const receive = async (max: number, wait: number): Promise<Message[]> => {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: wait,
        VisibilityTimeout: opts.visibilityTimeout,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      { abortSignal: abort.signal },
    );
    return out.Messages ?? [];
  };

  /** One long poll, then (with a batching window) short polls until the batch is full or the window ends. */
  const gather = async (): Promise<Message[]> => {
    const batch = await receive(batchSize, waitTimeSeconds);
    if (batch.length === 0 || windowMs === 0) return batch;
    const deadline = Date.now() + windowMs;
    while (batch.length < batchSize && Date.now() < deadline && !abort.signal.aborted) {
      let more: Message[] = [];
      try {
        more = await receive(batchSize - batch.length, 0);
      } catch (err) {
        if (abort.signal.aborted) break;
        throw err;
      }
      batch.push(...more);
      if (more.length === 0) await sleep(Math.min(100, deadline - Date.now()), abort.signal);
    }
    return batch;
  };

  const handleBatch = async (messages: Message[]): Promise<void> => {
    const records = messages.map((m) => toSqsRecord(m, queueArn, opts.region));
    const ids = records.map((r) => r.messageId);
    const started = Date.now();
    let failed: Set<string>;
    try {
      const context = createLambdaContext(functionName, {
        region: opts.region,
        timeoutMs: opts.functionTimeoutMs,
      });
      const response = await opts.handler({ Records: records }, context);
      const result = reportFailures ? failedMessageIds(response, ids) : { failed: new Set<string>() };
      if (result.invalid)
        log.warn(`${functionName}: invalid partial batch response, whole batch failed: ${result.invalid}`);
      failed = result.failed;
    } catch (err) {
      log.warn(`${functionName}: handler threw, the batch of ${records.length} will be retried`, {
        error: describeError(err),
      });
      failed = new Set(ids);
    }
    stats.batches++;
    stats.records += records.length;
    stats.failedRecords += failed.size;
    const done = records.filter((r) => !failed.has(r.messageId));
    for (let i = 0; i < done.length; i += 10) {
      const chunk = done.slice(i, i + 10);
      try {
        const out = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle })),
          }),
        );
        if (out.Failed?.length)
          log.warn(`${functionName}: ${out.Failed.length} messages could not be deleted`);
      } catch (err) {
        // The messages reappear and are handled again: handlers are idempotent.
        log.warn(`${functionName}: could not delete handled messages`, { error: describeError(err) });
      }
    }
    log.debug(
      `${functionName}: ${records.length} records, ${failed.size} failed, ${Date.now() - started} ms`,
    );
  };

  const loop = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      let messages: Message[];
      try {
        messages = await gather();
      } catch (err) {
        if (abort.signal.aborted) break;
        log.warn(`${functionName}: receive from the queue failed; retrying in 1 s`, {
          error: describeError(err),
        });
        await sleep(1000, abort.signal);
        continue;
      }
      if (messages.length === 0) continue;
      busy = true;
      try {
        await handleBatch(messages);
      } finally {
        busy = false;
      }
    }
  };
  const running = loop();

  return {
    stats,
    get busy() {
      return busy;
    },
    async stop() {
      abort.abort();
      await running;
    },
  };
}
