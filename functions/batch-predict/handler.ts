import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { ChunkMessageSchema } from '../../lib/batch/layout.ts';
import { runChunk } from '../../lib/batch/worker.ts';
import { loadModelConfig, loadStorageConfig } from '../../lib/config.ts';
import { describeError } from '../../lib/errors.ts';
import { DEFAULT_LIMIT_INPUT_PIXELS } from '../../lib/images/preprocess.ts';
import { sharedExtractor } from '../../lib/model/shared-extractor.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, startLazy, traceClients, withObservability } from '../shared/powertools.ts';
import { toQueueMessages } from '../shared/sqs.ts';

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

/** Batch queue (one chunk of image keys per message) → `batches/{d}/{id}/parts/{n}.jsonl`. */
export const handler = withObservability(async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const failures: { itemIdentifier: string }[] = [];
  for (const m of toQueueMessages(event)) {
    let msg: ReturnType<typeof ChunkMessageSchema.parse>;
    try {
      msg = ChunkMessageSchema.parse(JSON.parse(m.body));
    } catch (err) {
      // A malformed message never gets better: dropped, not retried.
      obs.log.error('dropping a malformed batch message', { id: m.id, error: describeError(err) });
      continue;
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
      failures.push({ itemIdentifier: m.id });
    }
  }
  return { batchItemFailures: failures };
}, obs);
