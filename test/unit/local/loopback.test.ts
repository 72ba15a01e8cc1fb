import { describe, expect, it } from 'vitest';
import { isLoopbackHost, isLoopbackOrigin } from '../../../lib/local/loopback.ts';

describe('isLoopbackHost', () => {
  it('accepts 127.0.0.1, localhost and [::1] on any port (an SSH tunnel changes it)', () => {
    expect(
      ['127.0.0.1:3000', 'localhost:8000', 'LOCALHOST:3000', '[::1]:3000', '127.0.0.1'].map((h) =>
        isLoopbackHost(h),
      ),
    ).toEqual([true, true, true, true, true]);
  });

  it('refuses other names (DNS rebinding), a missing Host and tricks', () => {
    for (const host of [
      'evil.example:3000',
      '127.0.0.1.nip.io:3000',
      'localhost.evil.example:3000',
      '',
      undefined,
      'user@127.0.0.1:3000',
      '127.0.0.1:3000/x',
      '[::2]:3000',
    ]) {
      expect(isLoopbackHost(host), String(host)).toBe(false);
    }
  });
});

describe('isLoopbackOrigin', () => {
  it('accepts http pages of this machine on any port', () => {
    expect(isLoopbackOrigin('http://127.0.0.1:3000')).toBe(true);
    expect(isLoopbackOrigin('http://localhost:8080')).toBe(true);
    expect(isLoopbackOrigin('http://[::1]:3000')).toBe(true);
  });

  it('refuses other sites, null and paths', () => {
    for (const origin of [
      'https://evil.example',
      'null',
      'http://127.0.0.1.evil.example',
      'http://127.0.0.1:3000/x',
      undefined,
    ]) {
      expect(isLoopbackOrigin(origin), String(origin)).toBe(false);
    }
  });
});
