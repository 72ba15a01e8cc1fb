import { StartExecutionCommand, type StartExecutionCommandOutput } from '@aws-sdk/client-sfn';
import { describeError } from '../errors.ts';
import { FeatureMessage, TrainingInput } from '../features/messages.ts';
import type { Log } from '../util/log.ts';
import type { QueueMessage } from './ingest.ts';

/**
 * start-training's domain logic: a batch of features-queue messages → at most one
 * `StartExecution` per dataset, named `{dataset}-{window}` so that every message of a burst (and
 * every retry) within one time window collapses into one execution: Step Functions refuses a
 * second execution of the same name with `ExecutionAlreadyExists`, which counts as success.
 *
 * Limitation of a fixed window: features that become ready after the window's execution has
 * passed its CheckReadiness step, but within the same window, start no new execution (their
 * name is taken); they are picked up by the next window's training. A Settle wait of about the
 * window length (infra config) makes that gap small.
 */

/** The part of the Step Functions client used here (the SDK client, or a small fake in tests). */
export interface StartExecutionClient {
  send(command: StartExecutionCommand): Promise<Pick<StartExecutionCommandOutput, 'executionArn'>>;
}

/** Dependencies of `startTrainings`. */
export interface StartTrainingDeps {
  sfn: StartExecutionClient;
  stateMachineArn: string;
  trainWindowSeconds: number;
  log: Log;
  now?: () => Date;
}

/** What happened to one dataset of the batch. */
export interface DatasetStart {
  dataset: string;
  executionName: string;
  /** `started`: a new execution; `exists`: debounced into the window's execution; `error`: retry. */
  status: 'started' | 'exists' | 'error';
  executionArn?: string;
  error?: string;
  messageIds: string[];
}

/** Result of `startTrainings`. */
export interface StartTrainingResult {
  datasets: DatasetStart[];
  /** Messages that did not parse as FeatureMessage (dropped: a retry cannot fix them). */
  invalid: { id: string; reason: string }[];
  /** Messages whose dataset's StartExecution failed (SQS batchItemFailures). */
  failedMessageIds: string[];
}

/**
 * Execution name of a dataset's automatic training in the window containing `now`:
 * `{dataset}-{floor(epochSeconds / windowSeconds)}` (≤ 80 chars, the Step Functions limit).
 *
 * @example executionName('pets', new Date('2026-01-01T00:07:00Z'), 300) // 'pets-5889537'
 */
export function executionName(dataset: string, now: Date, windowSeconds: number): string {
  return `${dataset}-${Math.floor(now.getTime() / 1000 / windowSeconds)}`;
}

/**
 * Starts one execution of the training state machine; `ExecutionAlreadyExists` (same name within
 * the window) is success with `alreadyExisted: true`. Other errors propagate. Shared with the
 * API's manual trainings.
 */
export async function startTrainingExecution(
  sfn: StartExecutionClient,
  stateMachineArn: string,
  name: string,
  input: TrainingInput,
): Promise<{ executionArn: string | undefined; alreadyExisted: boolean }> {
  try {
    const out = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn,
        name,
        input: JSON.stringify(TrainingInput.parse(input)),
      }),
    );
    return { executionArn: out.executionArn, alreadyExisted: false };
  } catch (err) {
    if (err instanceof Error && err.name === 'ExecutionAlreadyExists') {
      return { executionArn: undefined, alreadyExisted: true };
    }
    throw err;
  }
}

/**
 * Validates the messages, groups them by dataset and starts (or debounces into) one training per
 * dataset. A failed StartExecution fails only that dataset's messages, so SQS retries just them.
 */
export async function startTrainings(
  messages: readonly QueueMessage[],
  deps: StartTrainingDeps,
): Promise<StartTrainingResult> {
  const now = (deps.now ?? (() => new Date()))();
  const invalid: { id: string; reason: string }[] = [];
  const byDataset = new Map<string, string[]>();
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
    const ids = byDataset.get(dataset.data) ?? [];
    ids.push(m.id);
    byDataset.set(dataset.data, ids);
  }

  const datasets = await Promise.all(
    [...byDataset].map(async ([dataset, messageIds]): Promise<DatasetStart> => {
      const name = executionName(dataset, now, deps.trainWindowSeconds);
      try {
        const r = await startTrainingExecution(deps.sfn, deps.stateMachineArn, name, {
          dataset,
          trigger: 'auto',
          requestedAt: now.toISOString(),
        });
        deps.log.info(r.alreadyExisted ? 'training already started in this window' : 'training started', {
          dataset,
          executionName: name,
        });
        return {
          dataset,
          executionName: name,
          status: r.alreadyExisted ? 'exists' : 'started',
          ...(r.executionArn ? { executionArn: r.executionArn } : {}),
          messageIds,
        };
      } catch (err) {
        deps.log.error('StartExecution failed; its messages will be retried', {
          dataset,
          error: describeError(err),
        });
        return { dataset, executionName: name, status: 'error', error: describeError(err), messageIds };
      }
    }),
  );
  return {
    datasets,
    invalid,
    failedMessageIds: datasets.filter((d) => d.status === 'error').flatMap((d) => d.messageIds),
  };
}
