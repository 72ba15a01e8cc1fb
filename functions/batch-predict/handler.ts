import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ChunkMessageSchema } from '../../lib/batch/layout.ts';
import { runChunk } from '../../lib/batch/worker.ts';
import { loadModelConfig, loadStorageConfig } from '../../lib/config.ts';
import { describeError } from '../../lib/errors.ts';
import { DEFAULT_LIMIT_INPUT_PIXELS } from '../../lib/images/preprocess.ts';
import { sharedExtractor } from '../../lib/model/shared-extractor.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, startLazy, traceClients, withObservability } from '../shared/powertools.ts';

// Config is read once, at cold start, and fails there naming the variable.
const storage = loadStorageConfig();
const model = loadModelConfig();
const obs = createObservability('batch-predict');
const { s3 } = traceClients(obs, createAwsClients(storage));
// The same extractor as the API's (VGG16 of the container image), asked for on the first chunk
// rather than at init; in the local stack's one process it is the very instance the API and the
// extractor use (lib/model/shared-extractor.ts).
let extractor: { get(): Promise<Awaited<ReturnType<typeof sharedExtractor>>> } | undefined;
const getExtractor = () => {
  extractor ??= startLazy(() =>
    sharedExtractor({ ...model, ...(model.backend ? { backend: model.backend } : {}), s3, log: obs.log }),
  );
  return extractor.get();
};

/**
 * One record: its chunk scored. A malformed message never gets better, so it is logged and dropped
 * (not retried); a chunk that throws is logged and rethrown, which the batch processor reports as
 * that record's failure (SQS partial batch response).
 */
async function scoreRecord(record: SQSRecord): Promise<void> {
  let msg: ReturnType<typeof ChunkMessageSchema.parse>;
  try {
    msg = ChunkMessageSchema.parse(JSON.parse(record.body));
  } catch (err) {
    obs.log.error('dropping a malformed batch message', { id: record.messageId, error: describeError(err) });
    return;
  }
  try {
    const r = await runChunk(
      {
        s3,
        bucket: storage.bucket,
        region: storage.region,
        extractor: await getExtractor(),
        limitInputPixels: DEFAULT_LIMIT_INPUT_PIXELS,
        maxBatch: model.extractBatchSize,
        log: obs.log,
      },
      msg,
    );
    obs.metrics.addMetric('BatchImagesScored', MetricUnit.Count, r.rows - r.failed);
    obs.metrics.addMetric('BatchImagesFailed', MetricUnit.Count, r.failed);
  } catch (err) {
    obs.log.error('batch chunk failed; it will be retried', { ...msg, error: describeError(err) });
    throw err;
  }
}

/** Batch queue (one chunk of image keys per message) → `batches/{d}/{id}/parts/{n}.jsonl`. */
export const handler = withObservability(
  (event: SQSEvent): Promise<SQSBatchResponse> =>
    // A processor per invocation: outside Lambda (the local stack's pollers, lib/local/stack.ts)
    // invocations of this handler overlap in one process, and a processor holds one batch's state.
    processPartialResponse(event, scoreRecord, new BatchProcessor(EventType.SQS), {
      // One chunk after the other, as each already fills the extractor's batches.
      processInParallel: false,
      // Every record failing is still a partial response (each is retried), not a thrown error.
      throwOnFullBatchFailure: false,
    }),
  obs,
);
