import { describe, expect, it } from 'vitest';
import { escapeHtml, formatFixed, formatPercent } from '../../../lib/util/format.ts';

describe('formatFixed', () => {
  it('rounds exact ties to even like Python and everything else to nearest', () => {
    expect(formatFixed(0.125, 2)).toBe('0.12');
    expect(formatFixed(0.375, 2)).toBe('0.38');
    expect(formatFixed(0.625, 2)).toBe('0.62');
    expect(formatFixed(2.5, 0)).toBe('2');
    expect(formatFixed(3.5, 0)).toBe('4');
    // 0.145 is not exactly representable (it is 0.1449999…), so no tie: Python prints 0.14.
    expect(formatFixed(0.145, 2)).toBe('0.14');
    expect(formatFixed(2 / 3, 2)).toBe('0.67');
    expect(formatFixed(1, 2)).toBe('1.00');
    expect(formatFixed(0, 2)).toBe('0.00');
  });
});

describe('formatPercent', () => {
  it('writes a fraction as a percentage with a space before the sign', () => {
    expect(formatPercent(0.9731)).toBe('97.3 %');
    expect(formatPercent(1)).toBe('100.0 %');
    expect(formatPercent(0.5, 0)).toBe('50 %');
  });

  it('rounds exact ties to even, like the report tables', () => {
    expect(formatPercent(0.125, 0)).toBe('12 %');
    expect(formatPercent(0.135, 0)).toBe('14 %');
  });

  it('writes a missing value as a dash', () => {
    expect(formatPercent(null)).toBe('—');
  });
});

describe('escapeHtml', () => {
  it('escapes the characters that end text or an attribute value', () => {
    expect(escapeHtml(`<b a="1" b='2'>&</b>`)).toBe(
      '&#60;b a=&#34;1&#34; b=&#39;2&#39;&#62;&#38;&#60;/b&#62;',
    );
  });

  it('leaves other text, unicode included, as it is', () => {
    expect(escapeHtml('chat noir été 😺')).toBe('chat noir été 😺');
  });
});
