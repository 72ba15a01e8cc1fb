import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  type GetExecutionHistoryCommandOutput,
  type HistoryEvent,
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

/**
 * One phase of a training execution, from its history: `settle` (the Settle wait), `readiness`
 * (CheckReadiness and the waits for pending features; `rounds` = readiness checks), `train`
 * (TrainHead), `promote`, `finish` (Finish and its choice), `release` (a failure path), or a state
 * name the state machine gained later. `training` counts the trainings of the execution from 1
 * (NextTraining starts the next: features arrived during the previous one).
 */
export interface ExecutionPhase {
  training: number;
  phase: string;
  startedAt: string;
  ms: number;
  rounds?: number;
}

/** Looks up training executions; the API works without it (then `lastExecution` is null). */
export interface ExecutionHistory {
  latest(dataset: string): Promise<ExecutionSummary | undefined>;
  /** The phases of one execution, in order (GetExecutionHistory). */
  phases?(executionArn: string): Promise<ExecutionPhase[]>;
}

/** The Step Functions calls the history needs (an SFNClient satisfies it). */
export interface ExecutionReader {
  send(command: ListExecutionsCommand): Promise<ListExecutionsCommandOutput>;
  send(command: DescribeExecutionCommand): Promise<DescribeExecutionCommandOutput>;
  send(command: GetExecutionHistoryCommand): Promise<GetExecutionHistoryCommandOutput>;
}

/** Which phase a state of the training state machine (infra/constructs/training-state-machine.ts) belongs to. */
function phaseOfState(state: string): string | undefined {
  if (state === 'Settle') return 'settle';
  if (['CheckReadiness', 'FeaturesReady', 'WaitForFeatures', 'NextRound'].includes(state)) return 'readiness';
  if (state === 'TrainHead') return 'train';
  if (state === 'Promote') return 'promote';
  if (state === 'Finish' || state === 'TrainAgain') return 'finish';
  if (state.startsWith('Release')) return 'release';
  if (state === 'Start' || state === 'NextTraining' || state === 'Done') return undefined;
  return state;
}

/**
 * The phases of an execution from its history events (oldest first): consecutive states of one
 * phase are merged (from the first one's entry to the last one's exit), NextTraining starts the
 * next training. A state still running at the end counts up to its last event.
 */
export function phasesFromHistory(events: readonly HistoryEvent[]): ExecutionPhase[] {
  const phases: (ExecutionPhase & { start: number })[] = [];
  let training = 1;
  let current: (ExecutionPhase & { start: number }) | undefined;
  for (const e of events) {
    const at = e.timestamp?.getTime();
    if (at === undefined) continue;
    const entered = e.stateEnteredEventDetails?.name;
    const exited = e.stateExitedEventDetails?.name;
    if (entered === 'NextTraining') training++;
    if (entered !== undefined) {
      const phase = phaseOfState(entered);
      if (phase === undefined) continue;
      if (!current || current.phase !== phase || current.training !== training) {
        current = { training, phase, startedAt: new Date(at).toISOString(), ms: 0, start: at };
        phases.push(current);
      }
      if (entered === 'CheckReadiness') current.rounds = (current.rounds ?? 0) + 1;
    }
    if (exited !== undefined && current && phaseOfState(exited) === current.phase) {
      current.ms = at - current.start;
    }
  }
  return phases.map(({ start: _start, ...p }) => p);
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
    async phases(executionArn) {
      const events: HistoryEvent[] = [];
      let nextToken: string | undefined;
      do {
        const page = await sfn.send(
          new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, nextToken }),
        );
        events.push(...(page.events ?? []));
        nextToken = page.nextToken;
      } while (nextToken && events.length < 25_000);
      return phasesFromHistory(events);
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
