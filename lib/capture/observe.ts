/**
 * What happens to a served prediction besides its answer: a monitoring record, and a capture when
 * asked for or when the dataset's policy says so. Both writes run in parallel after the answer is
 * known; a failure is logged and never fails the prediction (docs/ARCHITECTURE.md "Closing the loop").
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Log } from '../util/log.ts';
import { type CapturedPrediction, captureReason, writeCapture } from './captures.ts';
import { recordPrediction } from './monitoring.ts';
import type { DatasetSettings } from './settings.ts';

/** What observing needs: the bucket, and the dataset's settings (started early by the caller). */
export interface ObserveDeps {
  s3: S3Client;
  bucket: string;
  log: Log;
  /** For the sample rate (tests). @default Math.random */
  random?: () => number;
}

/** A served prediction to observe. */
export interface ObservedPrediction {
  dataset: string;
  bytes: Uint8Array;
  /** `?capture=true` on the request. */
  requested: boolean;
  prediction: CapturedPrediction;
  at: Date;
}

/** Records and (maybe) captures one prediction; resolves with the capture id when one was stored. */
export async function observePrediction(
  deps: ObserveDeps,
  settings: Promise<DatasetSettings>,
  p: ObservedPrediction,
): Promise<{ captureId?: string }> {
  let s: DatasetSettings | undefined;
  try {
    s = await settings;
  } catch (err) {
    deps.log.warn('dataset settings unreadable; capturing only what was asked for', {
      dataset: p.dataset,
      error: String(err),
    });
  }
  const policy = s?.capture ?? { sample: 0, belowConfidence: null };
  const reason = captureReason(policy, p.requested, p.prediction.confidence, deps.random);
  const top = p.prediction.scores[0]?.label ?? p.prediction.label ?? '';
  const [, captured] = await Promise.all([
    s?.monitoring === false
      ? undefined
      : recordPrediction(deps.s3, deps.bucket, p.dataset, {
          version: p.prediction.modelVersion,
          label: top,
          confidence: p.prediction.confidence,
          abstained: p.prediction.abstained,
          at: p.at,
        }).catch((err: unknown) => {
          deps.log.warn('monitoring record not written', { dataset: p.dataset, error: String(err) });
        }),
    reason === undefined
      ? undefined
      : writeCapture(deps.s3, deps.bucket, {
          dataset: p.dataset,
          bytes: p.bytes,
          prediction: p.prediction,
          reason,
          at: p.at,
        }).catch((err: unknown) => {
          deps.log.warn('prediction not captured', { dataset: p.dataset, error: String(err) });
          return undefined;
        }),
  ]);
  return captured ? { captureId: captured.id } : {};
}
