import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ListExecutionsCommand,
  type ListExecutionsCommandOutput,
} from '@aws-sdk/client-sfn';
import { TrainingInput, type TrainingTrigger } from '../features/messages.ts';

/** The newest training execution of a dataset, as `GET /datasets/{d}` reports it. */
export interface ExecutionSummary {
  name: string;
  executionArn: string;
  /** RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED (Step Functions' words). */
  status: string;
  startedAt: string;
  stoppedAt: string | null;
  trigger: TrainingTrigger | null;
  /** For a failed execution: the Fail state's error and cause (what went wrong, readable). */
  error: string | null;
  cause: string | null;
}

/** Looks up training executions; the API works without it (then `lastExecution` is null). */
export interface ExecutionHistory {
  latest(dataset: string): Promise<ExecutionSummary | undefined>;
}

/** The two Step Functions calls the history needs (an SFNClient satisfies it). */
export interface ExecutionReader {
  send(command: ListExecutionsCommand): Promise<ListExecutionsCommandOutput>;
  send(command: DescribeExecutionCommand): Promise<DescribeExecutionCommandOutput>;
}

/**
 * Execution history from Step Functions: lists the state machine's newest executions (newest
 * first), keeps those whose name starts with `{dataset}-` (start-training and the API name them
 * so: `trainingExecutionName` in lib/pipeline/training-lock.ts), and confirms the dataset from the execution's input, since `pets-` is also the start of
 * `pets-2-…`. Only `scan` executions are looked at, so a dataset idle for a long time shows none.
 */
export function createExecutionHistory(
  sfn: ExecutionReader,
  stateMachineArn: string,
  opts: { scan?: number; candidates?: number } = {},
): ExecutionHistory {
  const scan = opts.scan ?? 100;
  const maxCandidates = opts.candidates ?? 5;
  return {
    async latest(dataset) {
      const listed = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: scan }));
      const candidates = (listed.executions ?? [])
        .filter((e) => e.name?.startsWith(`${dataset}-`) && e.executionArn !== undefined)
        .sort((a, b) => (b.startDate?.getTime() ?? 0) - (a.startDate?.getTime() ?? 0))
        .slice(0, maxCandidates);
      for (const c of candidates) {
        const d = await sfn.send(new DescribeExecutionCommand({ executionArn: c.executionArn }));
        const input = TrainingInput.safeParse(safeJson(d.input));
        if (!input.success || input.data.dataset !== dataset) continue;
        return {
          name: d.name ?? c.name ?? '',
          executionArn: d.executionArn ?? c.executionArn ?? '',
          status: d.status ?? c.status ?? 'UNKNOWN',
          startedAt: (d.startDate ?? c.startDate ?? new Date(0)).toISOString(),
          stoppedAt: (d.stopDate ?? c.stopDate)?.toISOString() ?? null,
          trigger: input.data.trigger,
          error: d.error ?? null,
          cause: d.cause ?? null,
        };
      }
      return undefined;
    },
  };
}

function safeJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
