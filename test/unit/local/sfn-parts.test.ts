import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createExecutionHistory } from '../../../lib/local/sfn-history.ts';
import {
  createRecordWriter,
  type ExecutionRecord,
  loadExecutionRecords,
  STACK_STOPPED_ERROR,
} from '../../../lib/local/sfn-records.ts';
import { type Log, silentLog } from '../../../lib/util/log.ts';

const ARN = 'arn:aws:states:us-east-1:000000000000:execution:tlearn-train-local:run-1';

function record(overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return {
    executionArn: ARN,
    stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:tlearn-train-local',
    name: 'run-1',
    status: 'RUNNING',
    startDate: new Date('2026-12-07T06:00:00Z'),
    input: '{}',
    events: [],
    ...overrides,
  };
}

let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});

/** A data dir whose record folders exist: the runner loads the records (creating them) before it writes. */
async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tlearn-sfn-parts-'));
  dirs.push(dir);
  await loadExecutionRecords(dir, silentLog);
  return dir;
}

describe('the history of a local execution (lib/local/sfn-history.ts)', () => {
  it('holds task events raised before their state is entered until it is, then keeps them in order', () => {
    // Prepare
    const rec = record();
    const history = createExecutionHistory(rec);

    // Act: the handler wrapper reports its task before the interpreter's Entered event arrives.
    history.taskEvent('Train', 'LambdaFunctionScheduled', {});
    history.taskEvent('Train', 'LambdaFunctionStarted', {});
    history.push('TaskStateEntered');
    history.open('Train');
    history.taskEvent('Train', 'LambdaFunctionSucceeded', {});
    history.close('Train');
    history.push('TaskStateExited');

    // Assess
    expect(rec.events.map((e) => e.type)).toEqual([
      'TaskStateEntered',
      'LambdaFunctionScheduled',
      'LambdaFunctionStarted',
      'LambdaFunctionSucceeded',
      'TaskStateExited',
    ]);
    expect(rec.events.map((e) => [e.id, e.previousEventId])).toEqual([
      [1, 0],
      [2, 1],
      [3, 2],
      [4, 3],
      [5, 4],
    ]);
  });

  it('writes task events held for a state that fails before its Exited event', () => {
    // Prepare
    const rec = record();
    const history = createExecutionHistory(rec);
    history.push('TaskStateEntered');

    // Act: the task's events arrive while the state is not yet open, then the state closes.
    history.taskEvent('Train', 'LambdaFunctionFailed', {});
    history.close('Train');

    // Assess
    expect(rec.events.map((e) => e.type)).toEqual(['TaskStateEntered', 'LambdaFunctionFailed']);
  });
});

describe('the records of local executions (lib/local/sfn-records.ts)', () => {
  it('reads back what it wrote, dates as dates', async () => {
    // Prepare
    const dir = await dataDir();
    const writer = createRecordWriter(dir, silentLog);
    const rec = record({
      events: [{ id: 1, previousEventId: 0, timestamp: new Date(), type: 'ExecutionStarted' }],
    });

    // Act
    void writer.persist({
      ...rec,
      status: 'SUCCEEDED',
      stopDate: new Date('2026-12-07T06:01:00Z'),
      output: '{}',
    });
    await writer.flush();
    const loaded = await loadExecutionRecords(dir, silentLog);

    // Assess
    const back = loaded.get(ARN);
    expect(back?.status).toBe('SUCCEEDED');
    expect(back?.stopDate).toEqual(new Date('2026-12-07T06:01:00Z'));
    expect(back?.events[0]?.timestamp).toBeInstanceOf(Date);
  });

  it('loads an execution still RUNNING on disk as aborted by a stop, so the next start resumes it', async () => {
    // Prepare: a process killed during the execution left it RUNNING.
    const dir = await dataDir();
    const writer = createRecordWriter(dir, silentLog);
    await writer.persist(record());

    // Act
    const loaded = await loadExecutionRecords(dir, silentLog);

    // Assess
    expect(loaded.get(ARN)).toMatchObject({ status: 'ABORTED', error: STACK_STOPPED_ERROR });
  });

  it('skips an unreadable record with a warning', async () => {
    // Prepare
    const dir = await dataDir();
    await writeFile(join(dir, 'sfn', 'executions', 'broken.json'), '{ not json');
    const warnings: string[] = [];
    const log: Log = { ...silentLog, warn: (m) => void warnings.push(m) };

    // Act
    const loaded = await loadExecutionRecords(dir, log);

    // Assess
    expect(loaded.size).toBe(0);
    expect(warnings).toEqual(['ignoring unreadable execution record broken.json']);
  });

  it('writes nothing without a data dir', async () => {
    // Prepare
    const writer = createRecordWriter(undefined, silentLog);

    // Act
    await writer.persist(record());
    await writer.flush();

    // Assess
    expect((await loadExecutionRecords(undefined, silentLog)).size).toBe(0);
  });
});
