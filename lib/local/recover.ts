/**
 * Start-up recovery of the local stack (docs/ARCHITECTURE.md "Recovery at start"): after a crash
 * (kill -9 at any point) the bucket on disk is the only truth left. Queue messages lived in memory,
 * the Step Functions runner's executions of the dead process are over, and a training lock may
 * still name one of them. This pass reconciles, for every dataset, the three things a lost message
 * or a dead execution can leave behind:
 *
 * 1. **A lock held by a dead execution**: a lock still `running` is asked for again through the lock
 *    module (`requestTraining`), with a grace period that ends at this process's start, so a holder
 *    that is no longer RUNNING (recorded as ABORTED by the runner) or that this process never
 *    started is stale and is taken over by a new execution. Locks are never written here.
 * 2. **Images without a current feature or error record** (never extracted, or replaced after their
 *    feature was written): their S3 `ObjectCreated` notification is sent again (readiness.ts decides
 *    "current", the same rule the state machine waits on).
 * 3. **A model behind its features**: no promoted model, or one whose report counts another number
 *    of images than are ready now, or one trained before the newest ready feature was written, or a
 *    lock left dirty: one training is requested (a running one is only marked to train again).
 *
 * Every action is idempotent (the extractor skips current features, the lock is compare-and-swap),
 * so running this after a clean stop costs listings only.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { describeError } from '../errors.ts';
import { type DatasetScan, scanDataset } from '../pipeline/readiness.ts';
import { readTrainingLock, requestTraining, type TrainingLockDeps } from '../pipeline/training-lock.ts';
import {
  currentModelKey,
  DATASETS_PREFIX,
  featuresPrefix,
  isValidDatasetName,
  LOCKS_PREFIX,
  modelFileKey,
} from '../storage/keys.ts';
import { getJsonIfExists, listAllObjects, listFolders } from '../storage/s3.ts';
import type { Log } from '../util/log.ts';
import type { S3Notifier } from './s3-notifications.ts';

/** What the recovery did to one dataset. */
export interface DatasetRecovery {
  dataset: string;
  /** Images whose notification was sent again. */
  requeued: number;
  /** The dead execution whose lock was taken over. */
  tookOverFrom?: string;
  /** Why a training was requested, when one was. */
  training?: { reason: TrainingReason; status: 'started' | 'marked'; executionName: string };
  /** Set when the dataset could not be recovered (the next start tries again). */
  error?: string;
}

/** Why the recovery asked for a training. */
export type TrainingReason = 'dead-lock' | 'no-model' | 'model-behind' | 'dirty-lock';

/** Dependencies of {@link recoverAfterRestart}. */
export interface RecoveryDeps {
  s3: S3Client;
  bucket: string;
  /** Sends the `ObjectCreated` notifications of the images to extract again. */
  notifier: Pick<S3Notifier, 'notifyCreated'>;
  /** The lock's dependencies (the Step Functions client of this stack). */
  lock: Omit<TrainingLockDeps, 'log'>;
  log: Log;
}

/** The promoted model's report, as far as recovery needs it. */
const ReportCounts = z.object({
  trainedAt: z.string().datetime(),
  counts: z.object({ total: z.number().int().nonnegative() }),
});

const CurrentVersion = z.object({ version: z.string().min(1) });

/** Datasets with images or a lock (a lock without images can still hold a dead execution). */
async function datasetsToRecover(s3: S3Client, bucket: string): Promise<string[]> {
  const [withImages, withLocks] = await Promise.all([
    listFolders(s3, bucket, DATASETS_PREFIX),
    listFolders(s3, bucket, LOCKS_PREFIX),
  ]);
  return [...new Set([...withImages, ...withLocks])].filter(isValidDatasetName).sort();
}

/** Whether the trainer would accept the ready features: 2 labels with 2 ready images each. */
function trainable(scan: DatasetScan): boolean {
  const perLabel = new Map<string, number>();
  for (const e of scan.entries)
    if (e.status === 'ready') perLabel.set(e.image.label, (perLabel.get(e.image.label) ?? 0) + 1);
  return [...perLabel.values()].filter((n) => n >= 2).length >= 2;
}

/**
 * Why the dataset's promoted model does not cover its ready features, or undefined when it does.
 * The feature listing has LastModified; the report has the images trained on and when.
 */
async function modelLag(
  deps: Pick<RecoveryDeps, 's3' | 'bucket'>,
  scan: DatasetScan,
  featureTimes: ReadonlyMap<string, number>,
): Promise<'no-model' | 'model-behind' | undefined> {
  const current = await getJsonIfExists(deps.s3, deps.bucket, currentModelKey(scan.dataset), CurrentVersion);
  if (current === undefined) return 'no-model';
  const report = await getJsonIfExists(
    deps.s3,
    deps.bucket,
    modelFileKey(scan.dataset, current.version, 'report.json'),
    ReportCounts,
  );
  if (report === undefined) return 'model-behind';
  const ready = scan.entries.filter((e) => e.status === 'ready');
  if (report.counts.total !== ready.length) return 'model-behind';
  const trainedAt = Date.parse(report.trainedAt);
  const newer = ready.some((e) => (featureTimes.get(e.featureKey) ?? 0) > trainedAt);
  return newer ? 'model-behind' : undefined;
}

/** Recovers one dataset (see the module comment); never throws. */
async function recoverDataset(dataset: string, deps: RecoveryDeps): Promise<DatasetRecovery> {
  const out: DatasetRecovery = { dataset, requeued: 0 };
  // Holders started by a process that is gone read as ABORTED (lib/local/sfn-runner.ts loads them
  // so), which makes their lock stale: requestTraining takes it over.
  const lockDeps: TrainingLockDeps = { ...deps.lock, log: deps.log };
  try {
    const held = await readTrainingLock(deps.s3, deps.bucket, dataset);
    if (held?.lock.state === 'running') {
      const r = await requestTraining(dataset, 'auto', { whenRunning: 'mark' }, lockDeps);
      out.training = {
        reason: 'dead-lock',
        status: r.status === 'started' ? 'started' : 'marked',
        executionName: r.executionName,
      };
      if (r.status === 'started' && r.tookOverFrom) out.tookOverFrom = r.tookOverFrom;
    }

    const scan = await scanDataset(deps.s3, deps.bucket, dataset);
    for (const e of scan.entries) {
      if (e.status !== 'pending') continue;
      deps.notifier.notifyCreated({ bucket: deps.bucket, key: e.image.key, size: e.size, etag: e.etag });
      out.requeued++;
    }
    if (out.training !== undefined || !trainable(scan)) return out;

    const featureTimes = await featureModifiedTimes(deps, dataset);
    let reason: TrainingReason | undefined = await modelLag(deps, scan, featureTimes);
    if (
      reason === undefined &&
      held &&
      held.lock.state === 'idle' &&
      held.lock.generation > held.lock.trainedGeneration
    )
      reason = 'dirty-lock';
    if (reason === undefined) return out;
    const r = await requestTraining(dataset, 'auto', { whenRunning: 'mark' }, lockDeps);
    out.training = {
      reason,
      status: r.status === 'started' ? 'started' : 'marked',
      executionName: r.executionName,
    };
  } catch (err) {
    out.error = describeError(err);
    deps.log.warn(`could not recover dataset '${dataset}' after the restart`, { error: out.error });
  }
  return out;
}

/** LastModified of every object under `features/{d}/`, by key. */
async function featureModifiedTimes(
  deps: Pick<RecoveryDeps, 's3' | 'bucket'>,
  dataset: string,
): Promise<Map<string, number>> {
  const listed = await listAllObjects(deps.s3, deps.bucket, featuresPrefix(dataset));
  return new Map(listed.map((o) => [o.key, o.lastModified?.getTime() ?? 0]));
}

/**
 * Reconciles every dataset after a (re)start, one dataset at a time (see the module comment).
 * Call it once the queue consumers run and before the API takes requests; it returns what it did.
 *
 * @example
 * const done = await recoverAfterRestart({ s3, bucket, notifier, lock: { s3, bucket, sfn, stateMachineArn }, log });
 */
export async function recoverAfterRestart(deps: RecoveryDeps): Promise<DatasetRecovery[]> {
  const datasets = await datasetsToRecover(deps.s3, deps.bucket);
  const out: DatasetRecovery[] = [];
  for (const dataset of datasets) out.push(await recoverDataset(dataset, deps));
  return out;
}

/** One line per dataset that needed something, for the start-up log. */
export function describeRecovery(results: readonly DatasetRecovery[]): string[] {
  return results.flatMap((r) => {
    const parts: string[] = [];
    if (r.requeued > 0) parts.push(`${r.requeued} image(s) queued for extraction again`);
    if (r.tookOverFrom) parts.push(`lock of the dead execution ${r.tookOverFrom} taken over`);
    if (r.training)
      parts.push(
        `training ${r.training.status === 'started' ? 'started' : 'marked to run again'} (${r.training.reason}): ${r.training.executionName}`,
      );
    if (r.error) parts.push(`not recovered: ${r.error}`);
    return parts.length > 0 ? [`recovery: dataset '${r.dataset}': ${parts.join('; ')}`] : [];
  });
}
