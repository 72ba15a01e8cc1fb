import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  allFunctionLengths,
  functionLengths,
  MAX_FUNCTION_LINES,
} from '../../../scripts/check-function-length.ts';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

describe('the function length check', () => {
  it('finds no function over the limit in lib/, infra/ and functions/', () => {
    expect(allFunctionLengths(REPO).filter((f) => f.lines > MAX_FUNCTION_LINES)).toEqual([]);
  });

  it('measures declarations, arrows, methods and constructors from first to last line, by name', () => {
    const body = (n: number) => Array.from({ length: n - 2 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    const text = [
      `export function long() {\n${body(151)}\n}`,
      `const arrow = () => {\n${body(10)}\n};`,
      `class Stack {\n  constructor() {\n${body(160)}\n  }\n  method() {\n${body(4)}\n  }\n}`,
    ].join('\n');
    const found = functionLengths('lib/x.ts', text).map((f) => `${f.name} ${f.lines}`);
    expect(found).toEqual(['long 151', 'arrow 10', 'Stack constructor 160', 'method 4']);
  });
});
