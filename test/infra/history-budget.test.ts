/**
 * Step Functions keeps at most 25,000 events in a standard execution's history; an execution that
 * would write more fails. This walks the synthesized definition (the deployed settings) and finds
 * the longest possible history of one execution: every path the Choice states allow, every loop
 * as often as its counters allow, every task retried as often as its Retry allows.
 *
 * Events per state (Step Functions' history event types):
 * - Pass, Wait, Choice, Succeed: {Type}StateEntered + {Type}StateExited = 2; Fail: FailStateEntered = 1.
 * - Task (Lambda): TaskStateEntered, then per attempt LambdaFunctionScheduled, LambdaFunctionStarted,
 *   LambdaFunctionSucceeded|Failed|TimedOut (3), then TaskStateExited: 2 + 3 x (1 + Σ MaxAttempts),
 *   counted the same whether it then succeeds or is caught (an upper bound).
 * - The execution: ExecutionStarted + its end event = 2.
 * Loops are bounded by the counters the Pass states keep (`$.readinessRound`, `$.retrainRound`,
 * evaluated exactly) and by finish-training's contract: `again` is true only while
 * `retrains < maxRetrains` (the payload's fields; test/integration/pipeline/start-training.test.ts
 * checks finishTraining hands over instead at the limit). Every other Choice input (task results)
 * may go either way.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { synthesizeTrainingDefinition } from '../../infra/definition.ts';

const HISTORY_LIMIT = 25_000;

type Json = Record<string, unknown>;
type Counters = Record<string, number>;
/** true, false, or undefined: depends on a task's result (either is possible). */
type Truth = boolean | undefined;

interface Bounds {
  /** finish-training's `maxRetrains` (from the Finish payload). */
  maxRetrains: number;
}

/** `$.x` → `x`, only for top-level counters. */
function counterOf(path: unknown): string | undefined {
  return typeof path === 'string' && /^\$\.[A-Za-z]+$/.test(path) ? path.slice(2) : undefined;
}

/** A Pass state's Parameters applied to the counters (the rest of the state is not tracked). */
function applyParameters(params: Json | undefined, counters: Counters): Counters {
  if (params === undefined) return counters;
  const next: Counters = {};
  for (const [key, value] of Object.entries(params)) {
    if (!key.endsWith('.$')) {
      if (typeof value === 'number') next[key] = value;
      continue;
    }
    const name = key.slice(0, -2);
    const copied = counterOf(value);
    if (copied !== undefined && counters[copied] !== undefined) next[name] = counters[copied];
    const add = typeof value === 'string' ? /^States\.MathAdd\(\$\.(\w+), (-?\d+)\)$/.exec(value) : null;
    if (add?.[1] !== undefined && counters[add[1]] !== undefined)
      next[name] = (counters[add[1]] ?? 0) + Number(add[2]);
  }
  return next;
}

function evaluate(rule: Json, counters: Counters, bounds: Bounds): Truth {
  if (Array.isArray(rule.And)) {
    const parts = (rule.And as Json[]).map((r) => evaluate(r, counters, bounds));
    return parts.includes(false) ? false : parts.every((p) => p === true) ? true : undefined;
  }
  if (Array.isArray(rule.Or)) {
    const parts = (rule.Or as Json[]).map((r) => evaluate(r, counters, bounds));
    return parts.includes(true) ? true : parts.every((p) => p === false) ? false : undefined;
  }
  if (rule.Not !== undefined) {
    const v = evaluate(rule.Not as Json, counters, bounds);
    return v === undefined ? undefined : !v;
  }
  const variable = String(rule.Variable);
  const counter = counterOf(variable);
  if (counter !== undefined && counters[counter] !== undefined) {
    const x = counters[counter] ?? 0;
    if (typeof rule.NumericLessThan === 'number') return x < rule.NumericLessThan;
    if (typeof rule.NumericGreaterThan === 'number') return x > rule.NumericGreaterThan;
    if (typeof rule.NumericEquals === 'number') return x === rule.NumericEquals;
    throw new Error(`unhandled comparison on ${variable}: ${JSON.stringify(rule)}`);
  }
  if (variable.endsWith('.again') && rule.BooleanEquals === true) {
    // finishTraining: again only while retrains < maxRetrains.
    return (counters.retrainRound ?? 0) < bounds.maxRetrains ? undefined : false;
  }
  return undefined; // a task's result: either way
}

/** Worst-case events of one execution of `definition`. Throws on a loop no counter bounds. */
function worstCaseEvents(definition: Json): number {
  const states = definition.States as Record<string, Json>;
  const finish = states.Finish as Json;
  const payload = ((finish.Parameters as Json | undefined)?.Payload ?? finish.Parameters) as Json;
  const bounds: Bounds = { maxRetrains: Number(payload.maxRetrains) };
  if (!Number.isInteger(bounds.maxRetrains)) throw new Error('Finish has no maxRetrains literal');

  /** A state's own events and the (state, counters) it may go on to. */
  const step = (name: string, counters: Counters): { own: number; next: [string, Counters][] } => {
    const state = states[name];
    if (state === undefined) throw new Error(`no state ${name}`);
    const to = (n: unknown, c: Counters): [string, Counters][] => (typeof n === 'string' ? [[n, c]] : []);
    switch (state.Type) {
      case 'Pass':
        return {
          own: 2,
          next: to(state.Next, applyParameters(state.Parameters as Json | undefined, counters)),
        };
      case 'Wait':
      case 'Succeed':
        return { own: 2, next: to(state.Next, counters) };
      case 'Fail':
        return { own: 1, next: [] };
      case 'Choice': {
        const next: [string, Counters][] = [];
        for (const rule of state.Choices as Json[]) {
          const v = evaluate(rule, counters, bounds);
          if (v === false) continue;
          next.push(...to(rule.Next, counters));
          if (v === true) return { own: 2, next };
        }
        return { own: 2, next: [...next, ...to(state.Default, counters)] };
      }
      case 'Task': {
        const resultPath = String(state.ResultPath ?? '$');
        if (resultPath === '$' || ['readinessRound', 'retrainRound'].includes(counterOf(resultPath) ?? ''))
          throw new Error(`${name} writes over the counters (ResultPath ${resultPath})`);
        const attempts = ((state.Retry as Json[] | undefined) ?? []).reduce(
          (sum, r) => sum + Number(r.MaxAttempts ?? 3),
          0,
        );
        return {
          own: 2 + 3 * (1 + attempts),
          next: [
            ...(state.End === true ? [] : to(state.Next, counters)),
            ...((state.Catch as Json[] | undefined) ?? []).flatMap((c) => to(c.Next, counters)),
          ],
        };
      }
      default:
        throw new Error(`${name}: state type ${String(state.Type)} is not modelled`);
    }
  };

  // Longest path over (state, counters), depth first without recursion (paths are ~2,500 deep).
  const keyOf = (name: string, c: Counters) => `${name} ${JSON.stringify(c)}`;
  const memo = new Map<string, number>();
  const onPath = new Set<string>();
  const start: [string, Counters] = [String(definition.StartAt), {}];
  const stack: { node: [string, Counters]; expanded: boolean }[] = [{ node: start, expanded: false }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { node: [string, Counters]; expanded: boolean };
    const key = keyOf(...top.node);
    if (memo.has(key)) {
      stack.pop();
      continue;
    }
    const { own, next } = step(...top.node);
    if (!top.expanded) {
      top.expanded = true;
      onPath.add(key);
      for (const n of next) {
        const k = keyOf(...n);
        if (onPath.has(k)) throw new Error(`unbounded loop through ${n[0]} with ${JSON.stringify(n[1])}`);
        if (!memo.has(k)) stack.push({ node: n, expanded: false });
      }
      continue;
    }
    onPath.delete(key);
    memo.set(key, own + Math.max(0, ...next.map((n) => memo.get(keyOf(...n)) ?? 0)));
    stack.pop();
  }
  return 2 + (memo.get(keyOf(...start)) ?? 0);
}

describe("one training execution's history stays within Step Functions' 25,000 events", () => {
  let deployed: Json;

  beforeAll(async () => {
    deployed = (await synthesizeTrainingDefinition()).definition;
  }, 60_000);

  it('stays under 20,000 events (a 20 % margin) in the worst case of the deployed settings', () => {
    const worst = worstCaseEvents(deployed);

    // 2 (execution) + 2 (Start) + 5 trainings x 3,578 + 4 x 2 (NextTraining) + 2 (Done), where one
    // training is Settle 2 + CheckReadiness 23 + FeaturesReady 2 + 120 rounds x 29 + TrainHead 23 +
    // Promote 23 + Finish 23 + TrainAgain 2, and a task with 6 retries is 2 + 3 x 7 = 23 events.
    expect(worst).toBe(17_904);
    expect(worst).toBeLessThan(HISTORY_LIMIT * 0.8);
  });

  it('finds the budget broken by the settings it replaced (20 retrains in one execution)', async () => {
    const old = (await synthesizeTrainingDefinition({ maxRetrains: 20 })).definition;

    expect(worstCaseEvents(old)).toBeGreaterThan(HISTORY_LIMIT);
  }, 60_000);

  it('refuses to bound a loop that no counter ends', () => {
    const looping: Json = {
      StartAt: 'A',
      States: {
        Finish: { Type: 'Pass', Parameters: { maxRetrains: 1 }, Next: 'A' },
        A: { Type: 'Wait', Seconds: 1, Next: 'B' },
        B: { Type: 'Pass', Next: 'A' },
      },
    };

    expect(() => worstCaseEvents(looping)).toThrow(/unbounded loop/);
  });
});
