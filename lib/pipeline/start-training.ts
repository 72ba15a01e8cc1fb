import { describeError } from '../errors.ts';
import { FeatureMessage, TrainingInput, type TrainingTrigger } from '../features/messages.ts';
import type { QueueMessage } from './ingest.ts';
import { requestTraining, type TrainingLockDeps, type TrainingRequestOutcome } from './training-lock.ts';

/**
 * start-training's domain logic: a batch of features-queue messages → one training request per
 * dataset through the dataset's single-flight lock (lib/pipeline/training-lock.ts): a new
 * execution when none runs, otherwise the running one is marked so it trains again after its
 * current run. Nothing is debounced by time, so no feature is left for "some later upload".
 */

/** Dependencies of `startTrainings`: the lock's. */
export type StartTrainingDeps = TrainingLockDeps;

/** What happened to one dataset of the batch. */
export interface DatasetStart {
  dataset: string;
  trigger: TrainingTrigger;
  /** `started`: a new execution; `marked`: the running one will train again; `error`: retry. */
  status: 'started' | 'marked' | 'error';
  executionName?: string;
  executionArn?: string;
  error?: string;
  messageIds: string[];
}

/** Result of `startTrainings`. */
export interface StartTrainingResult {
  datasets: DatasetStart[];
  /** Messages that did not parse as FeatureMessage (dropped: a retry cannot fix them). */
  invalid: { id: string; reason: string }[];
  /** Messages whose dataset's request failed (SQS batchItemFailures). */
  failedMessageIds: string[];
}

/** The trigger a batch of one dataset's messages stands for: `delete` when all are removals. */
function triggerOf(types: ReadonlySet<FeatureMessage['type']>): TrainingTrigger {
  return types.size === 1 && types.has('feature.removed') ? 'delete' : 'auto';
}

/**
 * Validates the messages, groups them by dataset and requests one training per dataset. A failed
 * request fails only that dataset's messages, so SQS retries just them.
 */
export async function startTrainings(
  messages: readonly QueueMessage[],
  deps: StartTrainingDeps,
): Promise<StartTrainingResult> {
  const invalid: { id: string; reason: string }[] = [];
  const byDataset = new Map<string, { ids: string[]; types: Set<FeatureMessage['type']> }>();
  for (const m of messages) {
    let json: unknown;
    try {
      json = JSON.parse(m.body);
    } catch {
      json = undefined;
    }
    const parsed = FeatureMessage.safeParse(json);
    const dataset = parsed.success ? TrainingInput.shape.dataset.safeParse(parsed.data.dataset) : undefined;
    if (!parsed.success || !dataset?.success) {
      const issue = parsed.success ? 'invalid dataset name' : (parsed.error.issues[0]?.message ?? 'not JSON');
      deps.log.warn('dropping features message that does not parse', { messageId: m.id, reason: issue });
      invalid.push({ id: m.id, reason: issue });
      continue;
    }
    const group = byDataset.get(dataset.data) ?? { ids: [], types: new Set() };
    group.ids.push(m.id);
    group.types.add(parsed.data.type);
    byDataset.set(dataset.data, group);
  }

  const datasets = await Promise.all(
    [...byDataset].map(async ([dataset, { ids, types }]): Promise<DatasetStart> => {
      const trigger = triggerOf(types);
      try {
        const r: TrainingRequestOutcome = await requestTraining(
          dataset,
          trigger,
          { whenRunning: 'mark' },
          deps,
        );
        deps.log.info(
          r.status === 'started' ? 'training started' : 'training running; marked to train again',
          {
            dataset,
            executionName: r.executionName,
          },
        );
        return {
          dataset,
          trigger,
          status: r.status === 'started' ? 'started' : 'marked',
          executionName: r.executionName,
          executionArn: r.executionArn,
          messageIds: ids,
        };
      } catch (err) {
        deps.log.error('training request failed; its messages will be retried', {
          dataset,
          error: describeError(err),
        });
        return { dataset, trigger, status: 'error', error: describeError(err), messageIds: ids };
      }
    }),
  );
  return {
    datasets,
    invalid,
    failedMessageIds: datasets.filter((d) => d.status === 'error').flatMap((d) => d.messageIds),
  };
}
