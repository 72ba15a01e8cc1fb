/**
 * What happens to a served prediction besides its answer: a monitoring record, and a capture when
 * asked for or when the dataset's policy says so. Nothing here may slow the answer down
 * (docs/ARCHITECTURE.md "Closing the loop"):
 * - a capture decided before scoring (`?capture=true`, or drawn by the sample rate) stores its image
 *   while the image is being scored: the prediction route starts observing when the forward pass
 *   starts ({@link startObservation});
 * - once the score is known, the monitoring record and the capture's document are written in
 *   parallel ({@link Observation.finish}), so a sampled capture costs the same one round trip as
 *   the record alone.
 * Every write is awaited before the answer (Lambda may freeze a container once it has answered);
 * a failure is logged and never fails the prediction.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { deleteObject } from '../storage/s3.ts';
import type { Log } from '../util/log.ts';
import {
  type CaptureDraw,
  type CapturedPrediction,
  captureReason,
  drawCapture,
  type StoredCaptureImage,
  writeCaptureDocument,
  writeCaptureImage,
} from './captures.ts';
import { recordPrediction } from './monitoring.ts';
import { type CapturePolicy, type DatasetSettings, DEFAULT_SETTINGS } from './settings.ts';

/** What observing needs: the bucket, and the dataset's settings (started early by the caller). */
export interface ObserveDeps {
  s3: S3Client;
  bucket: string;
  log: Log;
  /** For the sample rate (tests). @default Math.random */
  random?: () => number;
}

/** A prediction about to be scored. */
export interface ObservedRequest {
  dataset: string;
  bytes: Uint8Array;
  /** `?capture=true` on the request. */
  requested: boolean;
  at: Date;
}

/** One prediction being observed: started before scoring, finished with its score. */
export interface Observation {
  /** Records (and maybe captures) the scored prediction; resolves with the capture id when one was stored. */
  finish(prediction: CapturedPrediction): Promise<{ captureId?: string }>;
  /** The image could not be scored: an image stored ahead is deleted (best effort). */
  abandon(): Promise<void>;
}

interface Decided {
  settings: DatasetSettings;
  policy: CapturePolicy;
  draw: CaptureDraw;
  /** The image stored ahead of the score (undefined: not decided yet, or its write failed). */
  image: Promise<StoredCaptureImage | undefined> | undefined;
}

function logFailure(log: Log, message: string, dataset: string) {
  return (err: unknown): undefined => {
    log.warn(message, { dataset, error: String(err) });
    return undefined;
  };
}

/**
 * Starts observing a prediction before its score is known: once the dataset's settings are known
 * (usually at once, from the per-process cache), a capture that does not depend on the score has
 * its image written in the background. Never rejects.
 */
export function startObservation(
  deps: ObserveDeps,
  settings: Promise<DatasetSettings>,
  req: ObservedRequest,
): Observation {
  const decided: Promise<Decided> = settings
    .catch((err: unknown) => {
      deps.log.warn('dataset settings unreadable; capturing only what was asked for', {
        dataset: req.dataset,
        error: String(err),
      });
      return { ...DEFAULT_SETTINGS, monitoring: true };
    })
    .then((s) => {
      const draw = drawCapture(s.capture, req.requested, deps.random);
      const image =
        draw.requested || draw.sampled
          ? writeCaptureImage(deps.s3, deps.bucket, req).catch(
              logFailure(deps.log, 'prediction not captured', req.dataset),
            )
          : undefined;
      return { settings: s, policy: s.capture, draw, image };
    });

  return {
    async finish(prediction) {
      const d = await decided;
      const reason = captureReason(d.policy, d.draw, prediction.confidence);
      const top = prediction.scores[0]?.label ?? prediction.label ?? '';
      const record =
        d.settings.monitoring === false
          ? undefined
          : recordPrediction(deps.s3, deps.bucket, req.dataset, {
              version: prediction.modelVersion,
              label: top,
              confidence: prediction.confidence,
              abstained: prediction.abstained,
              at: req.at,
            }).catch(logFailure(deps.log, 'monitoring record not written', req.dataset));
      const capture = async (): Promise<string | undefined> => {
        if (reason === undefined) return undefined;
        // Below the confidence threshold is only known now: its image is written now.
        const image = await (d.image ??
          writeCaptureImage(deps.s3, deps.bucket, req).catch(
            logFailure(deps.log, 'prediction not captured', req.dataset),
          ));
        if (image === undefined) return undefined;
        const doc = await writeCaptureDocument(deps.s3, deps.bucket, image, { prediction, reason }).catch(
          logFailure(deps.log, 'prediction not captured', req.dataset),
        );
        return doc?.id;
      };
      const [, captureId] = await Promise.all([record, capture()]);
      return captureId ? { captureId } : {};
    },
    async abandon() {
      const image = await (await decided).image;
      if (image === undefined) return;
      await deleteObject(deps.s3, deps.bucket, image.key).catch(
        logFailure(deps.log, 'unscored captured image not deleted (it expires with captures/)', req.dataset),
      );
    },
  };
}
