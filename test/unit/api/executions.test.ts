import {
  type DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ListExecutionsCommand,
  type ListExecutionsCommandOutput,
} from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { createExecutionHistory, type ExecutionReader } from '../../../lib/api/executions.ts';
import { trainingExecutionName } from '../../../lib/pipeline/training-lock.ts';

const ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:train';
const exec = (name: string) => `arn:aws:states:us-east-1:123456789012:execution:train:${name}`;

interface Fake {
  name: string;
  dataset: string;
  status: string;
  start: string;
  error?: string;
  cause?: string;
}

/** A Step Functions stand-in answering ListExecutions (newest first) and DescribeExecution. */
function reader(executions: Fake[]): ExecutionReader & { described: string[] } {
  const described: string[] = [];
  const send = async (cmd: ListExecutionsCommand | DescribeExecutionCommand): Promise<unknown> => {
    if (cmd instanceof ListExecutionsCommand) {
      const out: ListExecutionsCommandOutput = {
        $metadata: {},
        executions: executions.map((e) => ({
          name: e.name,
          executionArn: exec(e.name),
          stateMachineArn: ARN,
          status: e.status as 'RUNNING',
          startDate: new Date(e.start),
        })),
      };
      return out;
    }
    const e = executions.find((x) => exec(x.name) === cmd.input.executionArn);
    if (!e) throw new Error('ExecutionDoesNotExist');
    described.push(e.name);
    const out: DescribeExecutionCommandOutput = {
      $metadata: {},
      name: e.name,
      executionArn: exec(e.name),
      stateMachineArn: ARN,
      status: e.status as 'RUNNING',
      startDate: new Date(e.start),
      stopDate: e.status === 'RUNNING' ? undefined : new Date(Date.parse(e.start) + 5000),
      input: JSON.stringify({ dataset: e.dataset, trigger: 'auto', requestedAt: e.start }),
      error: e.error,
      cause: e.cause,
    };
    return out;
  };
  return { send: send as ExecutionReader['send'], described };
}

describe('createExecutionHistory', () => {
  it("returns the newest execution of the dataset, with a failed one's error and cause", async () => {
    const sfn = reader([
      { name: 'cats-100', dataset: 'cats', status: 'SUCCEEDED', start: '2026-11-28T10:00:00Z' },
      { name: 'pets-101', dataset: 'pets', status: 'SUCCEEDED', start: '2026-11-28T10:01:00Z' },
      {
        name: 'pets-102',
        dataset: 'pets',
        status: 'FAILED',
        start: '2026-11-28T10:02:00Z',
        error: 'InsufficientData',
        cause: "label 'dog' has only 1 usable image",
      },
    ]);

    const latest = await createExecutionHistory(sfn, ARN).latest('pets');

    expect(latest).toMatchObject({
      name: 'pets-102',
      status: 'FAILED',
      trigger: 'auto',
      error: 'InsufficientData',
      cause: "label 'dog' has only 1 usable image",
      startedAt: '2026-11-28T10:02:00.000Z',
      stoppedAt: '2026-11-28T10:02:05.000Z',
    });
  });

  it("does not take another dataset's execution whose name starts the same ('pets-2-…')", async () => {
    const sfn = reader([
      { name: 'pets-100', dataset: 'pets', status: 'SUCCEEDED', start: '2026-11-28T10:00:00Z' },
      { name: 'pets-2-101', dataset: 'pets-2', status: 'RUNNING', start: '2026-11-28T10:05:00Z' },
    ]);

    const latest = await createExecutionHistory(sfn, ARN).latest('pets');

    expect(latest?.name).toBe('pets-100');
    expect(sfn.described).toEqual(['pets-2-101', 'pets-100']);
  });

  it('returns undefined for a dataset with no execution', async () => {
    const sfn = reader([
      { name: 'cats-1', dataset: 'cats', status: 'SUCCEEDED', start: '2026-11-28T10:00:00Z' },
    ]);

    expect(await createExecutionHistory(sfn, ARN).latest('pets')).toBeUndefined();
    expect(sfn.described).toEqual([]);
  });

  it('finds the manual training of a 63-character dataset by the name trainings are given', async () => {
    const dataset = `d${'x'.repeat(62)}`;
    const name = trainingExecutionName(dataset, new Date('2026-11-28T10:00:00Z'), 1);
    const sfn = reader([{ name, dataset, status: 'RUNNING', start: '2026-11-28T10:00:00Z' }]);

    const latest = await createExecutionHistory(sfn, ARN).latest(dataset);

    expect(latest?.name).toBe(name);
    expect(latest?.status).toBe('RUNNING');
  });
});
