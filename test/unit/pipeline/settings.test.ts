import { describe, expect, it } from 'vitest';
import { BATCH_QUEUE } from '../../../lib/batch/settings.ts';
import {
  LOCAL_SCALE,
  localPipelineSettings,
  localQueueSettings,
  PIPELINE_SETTINGS,
} from '../../../lib/pipeline/settings.ts';

describe('the local stack’s settings, scaled from the deployed ones', () => {
  it('scales the deployed extractor concurrency down for the local pollers, with the deployed batch sizes', () => {
    const local = localPipelineSettings();

    expect(local.ingest.maxConcurrency).toBe(
      (PIPELINE_SETTINGS.ingest.maxConcurrency ?? 0) * LOCAL_SCALE.concurrency,
    );
    expect(local.ingest.batchSize).toBe(PIPELINE_SETTINGS.ingest.batchSize);
    expect(local.ingest.maxReceiveCount).toBe(PIPELINE_SETTINGS.ingest.maxReceiveCount);
    expect(local.ingest.maxBatchingWindowSeconds).toBe(1);
    expect(local.features.maxBatchingWindowSeconds).toBe(3);
  });

  it('keeps an unbounded concurrency unbounded and a zero batching window zero', () => {
    expect(localPipelineSettings().features.maxConcurrency).toBeUndefined();
    expect(localQueueSettings(BATCH_QUEUE)).toEqual({ ...BATCH_QUEUE, maxConcurrency: 2 });
    expect(localQueueSettings({ ...BATCH_QUEUE, maxConcurrency: 1 }).maxConcurrency).toBe(1);
  });
});
