import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  DRIFT_FUNCTION,
  DRIFT_METRIC_NAME,
  type DriftMeasurement,
  DriftScheduleEvent,
  measureDrift,
} from '../../lib/capture/drift.ts';
import { loadStorageConfig } from '../../lib/config.ts';
import { ValidationError } from '../../lib/errors.ts';
import { createAwsClients } from '../../lib/storage/clients.ts';
import { createObservability, traceClients, withObservability } from '../shared/powertools.ts';

// Config is read once, at cold start, and fails there naming the variable.
const storage = loadStorageConfig();
const obs = createObservability(DRIFT_FUNCTION);
const { s3 } = traceClients(obs, createAwsClients(storage));

/**
 * The schedule's run: prediction drift of every dataset over the last day → the largest PSI as the
 * `PredictionDriftPsi` metric (EMF), which the drift alarm watches. Nothing is published when no
 * version had enough predictions: the alarm treats a missing point as fine.
 */
export const handler = withObservability(async (event: unknown): Promise<DriftMeasurement> => {
  const parsed = DriftScheduleEvent.safeParse(event);
  if (!parsed.success) {
    throw new ValidationError(`drift-metric needs an EventBridge scheduled event: ${parsed.error.message}`);
  }
  const m = await measureDrift(
    { s3, bucket: storage.bucket, log: obs.log },
    { now: new Date(parsed.data.time) },
  );
  if (m.largest !== undefined) {
    obs.metrics.addMetric(DRIFT_METRIC_NAME, MetricUnit.NoUnit, m.largest.labelPsi);
  }
  const summary = {
    from: m.from,
    to: m.to,
    datasets: m.datasets,
    scored: m.versions.length,
    skipped: m.skipped.length,
  };
  if (m.largest !== undefined && m.largest.labelPsi > m.threshold) {
    // Locally (no CloudWatch) this line is the alarm.
    obs.log.warn('prediction drift above the alarm threshold', {
      ...summary,
      ...m.largest,
      threshold: m.threshold,
    });
  } else {
    obs.log.info('prediction drift measured', { ...summary, largest: m.largest });
  }
  return m;
}, obs);
