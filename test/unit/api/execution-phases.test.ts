import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { phasesFromHistory } from '../../../lib/api/executions.ts';
import { formatTimeline } from '../../../lib/cli/commands/status.ts';

const T0 = Date.parse('2026-12-07T06:00:00.000Z');

/** A history like the training state machine's: [state, entered at s, exited at s]. */
function history(states: [string, number, number][]): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  let id = 1;
  for (const [name, enter, exit] of states) {
    events.push({
      id: id++,
      type: 'PassStateEntered',
      timestamp: new Date(T0 + enter * 1000),
      stateEnteredEventDetails: { name },
    });
    events.push({
      id: id++,
      type: 'PassStateExited',
      timestamp: new Date(T0 + exit * 1000),
      stateExitedEventDetails: { name },
    });
  }
  return events;
}

describe('the phases of a training execution', () => {
  it('merges the readiness rounds, counts the checks and numbers a follow-up training', () => {
    // prepare: settle, two readiness checks with a wait between, train, promote, finish, then again
    const events = history([
      ['Start', 0, 0],
      ['Settle', 0, 6],
      ['CheckReadiness', 6, 7],
      ['FeaturesReady', 7, 7],
      ['WaitForFeatures', 7, 10],
      ['NextRound', 10, 10],
      ['CheckReadiness', 10, 11],
      ['FeaturesReady', 11, 11],
      ['TrainHead', 11, 20],
      ['Promote', 20, 21],
      ['Finish', 21, 22],
      ['TrainAgain', 22, 22],
      ['NextTraining', 22, 22],
      ['Settle', 22, 28],
      ['CheckReadiness', 28, 29],
      ['FeaturesReady', 29, 29],
      ['TrainHead', 29, 35],
      ['Promote', 35, 36],
      ['Finish', 36, 37],
      ['TrainAgain', 37, 37],
      ['Done', 37, 37],
    ]);

    // act
    const phases = phasesFromHistory(events);

    // assess
    expect(phases.map((p) => [p.training, p.phase, p.ms, p.rounds])).toEqual([
      [1, 'settle', 6000, undefined],
      [1, 'readiness', 5000, 2],
      [1, 'train', 9000, undefined],
      [1, 'promote', 1000, undefined],
      [1, 'finish', 1000, undefined],
      [2, 'settle', 6000, undefined],
      [2, 'readiness', 1000, 1],
      [2, 'train', 6000, undefined],
      [2, 'promote', 1000, undefined],
      [2, 'finish', 1000, undefined],
    ]);
    expect(phases[2]?.startedAt).toBe('2026-12-07T06:00:11.000Z');
  });

  it('prints each phase with its time from the first upload and its duration', () => {
    // prepare
    const phases = phasesFromHistory(
      history([
        ['Settle', 10, 16],
        ['CheckReadiness', 16, 17],
        ['TrainHead', 17, 20],
      ]),
    );

    // act
    const lines = formatTimeline({
      firstUploadAt: new Date(T0).toISOString(),
      lastUploadAt: new Date(T0 + 5000).toISOString(),
      lastFeatureAt: new Date(T0 + 15_000).toISOString(),
      promotedAt: new Date(T0 + 21_000).toISOString(),
      phases,
    });

    // assess
    const text = lines.join('\n');
    expect(text).toMatch(/\+10\.0 s\s+settle\s+6\.0 s/);
    expect(text).toMatch(/\+15\.0 s\s+last feature written/);
    expect(text).toMatch(/\+16\.0 s\s+readiness \(1 check\)\s+1\.0 s/);
    expect(text).toMatch(/\+21\.0 s\s+model promoted/);
  });
});
