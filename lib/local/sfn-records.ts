/**
 * Executions of the local Step Functions runner (lib/local/sfn-runner.ts) as records: their
 * AWS-shaped fields and history, and their copies on disk under `{dataDir}/sfn/executions/`, which
 * keep execution names unique across restarts (as in AWS) and let the next start resume what a
 * stop interrupted.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../errors.ts';
import type { Log } from '../util/log.ts';

/** Execution status, as the Step Functions API spells it. */
export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** One event of an execution's history (the API's HistoryEvent, timestamps as Dates). */
export interface HistoryEvent {
  id: number;
  previousEventId: number;
  timestamp: Date;
  type: string;
  [details: string]: unknown;
}

/** An execution, running or closed. */
export interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  /** JSON text. */
  input: string;
  /** JSON text, when SUCCEEDED. */
  output?: string;
  error?: string;
  cause?: string;
  events: HistoryEvent[];
  /** Name of the execution that took over after this one was interrupted by a stop. */
  resumedAs?: string;
}

/** Error of an execution aborted because the local stack stopped (resumed at the next start). */
export const STACK_STOPPED_ERROR = 'Local.StackStopped';

/** Record as written to disk (dates as ISO text). */
type StoredRecord = Omit<ExecutionRecord, 'startDate' | 'stopDate' | 'events'> & {
  startDate: string;
  stopDate?: string;
  events: (Omit<HistoryEvent, 'timestamp'> & { timestamp: string })[];
};

function toStored(r: ExecutionRecord): StoredRecord {
  return {
    ...r,
    startDate: r.startDate.toISOString(),
    stopDate: r.stopDate?.toISOString(),
    events: r.events.map((e) => ({ ...e, timestamp: e.timestamp.toISOString() })),
  };
}

function fromStored(s: StoredRecord): ExecutionRecord {
  return {
    ...s,
    startDate: new Date(s.startDate),
    stopDate: s.stopDate === undefined ? undefined : new Date(s.stopDate),
    events: s.events.map((e) => ({ ...e, timestamp: new Date(e.timestamp) }) as HistoryEvent),
  };
}

/** Where the records of a data dir live, and the folder their writes are staged in. */
function recordDirs(dataDir: string | undefined): { recordDir: string; tmpDir: string } | undefined {
  if (dataDir === undefined) return undefined;
  return { recordDir: join(dataDir, 'sfn', 'executions'), tmpDir: join(dataDir, 'tmp', 'sfn') };
}

/**
 * Reads the executions recorded by earlier runs (none without a data dir), by ARN. One still
 * RUNNING was run by a process that is gone (killed): it reads as ABORTED by a stop, so the next
 * start resumes it and the training lock sees its holder is gone (lib/local/recover.ts).
 */
export async function loadExecutionRecords(
  dataDir: string | undefined,
  log: Log,
): Promise<Map<string, ExecutionRecord>> {
  const executions = new Map<string, ExecutionRecord>();
  const dirs = recordDirs(dataDir);
  if (dirs === undefined) return executions;
  await mkdir(dirs.recordDir, { recursive: true });
  await mkdir(dirs.tmpDir, { recursive: true });
  for (const file of await readdir(dirs.recordDir)) {
    if (!file.endsWith('.json')) continue;
    try {
      const rec = fromStored(JSON.parse(await readFile(join(dirs.recordDir, file), 'utf8')) as StoredRecord);
      if (rec.status === 'RUNNING') {
        rec.status = 'ABORTED';
        rec.error = STACK_STOPPED_ERROR;
        rec.cause = 'the process running the local stack ended during this execution';
      }
      executions.set(rec.executionArn, rec);
    } catch (err) {
      log.warn(`ignoring unreadable execution record ${file}`, { error: describeError(err) });
    }
  }
  return executions;
}

/** Writes records to the data dir (a no-op without one). */
export interface RecordWriter {
  /** Writes the record as it is now; writes of one record land in order (RUNNING never after its end). */
  persist(rec: ExecutionRecord): Promise<void>;
  /** Resolves when every write started so far has landed. */
  flush(): Promise<void>;
}

/** A {@link RecordWriter}; a failed write is a warning (the execution itself goes on). */
export function createRecordWriter(dataDir: string | undefined, log: Log): RecordWriter {
  const dirs = recordDirs(dataDir);
  const writes = new Set<Promise<void>>();
  /** The last write of each execution, which the next one waits for. */
  const lastWrite = new Map<string, Promise<void>>();
  const writeRecord = async (rec: ExecutionRecord): Promise<void> => {
    if (dirs === undefined) return;
    const file = `${encodeURIComponent(rec.executionArn.split(':').slice(-2).join('.'))}.json`;
    const tmp = join(dirs.tmpDir, randomUUID());
    try {
      await writeFile(tmp, `${JSON.stringify(toStored(rec), null, 2)}\n`);
      await rename(tmp, join(dirs.recordDir, file));
    } catch (err) {
      log.warn(`could not record execution ${rec.name}`, { error: describeError(err) });
    }
  };
  return {
    persist(rec) {
      const previous = lastWrite.get(rec.executionArn) ?? Promise.resolve();
      const p = previous
        .then(() => writeRecord(rec))
        .finally(() => {
          writes.delete(p);
          if (lastWrite.get(rec.executionArn) === p) lastWrite.delete(rec.executionArn);
        });
      writes.add(p);
      lastWrite.set(rec.executionArn, p);
      return p;
    },
    async flush() {
      await Promise.all([...writes]);
    },
  };
}
