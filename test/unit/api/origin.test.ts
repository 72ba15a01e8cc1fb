import { describe, expect, it } from 'vitest';
import { CrossOriginRequestError, checkRequestOrigin } from '../../../lib/api/origin.ts';

const event = (headers: Record<string, string>, httpMethod = 'POST') => ({ headers, httpMethod });
const LOCAL = { Host: '127.0.0.1:3000' };
const AWS = { Host: 'abc123.execute-api.eu-west-1.amazonaws.com', 'X-Forwarded-Proto': 'https' };

describe('checkRequestOrigin', () => {
  it('lets clients that are not browsers through (no Origin, no Sec-Fetch-Site)', () => {
    expect(() => checkRequestOrigin(event(LOCAL), undefined)).not.toThrow();
  });

  it("accepts the API's own origin, locally over http and on AWS over https", () => {
    expect(() =>
      checkRequestOrigin(event({ ...LOCAL, Origin: 'http://127.0.0.1:3000' }), undefined),
    ).not.toThrow();
    expect(() =>
      checkRequestOrigin(
        event({ ...AWS, origin: 'https://abc123.execute-api.eu-west-1.amazonaws.com' }),
        undefined,
      ),
    ).not.toThrow();
  });

  it('refuses another origin, null, or the right host over the wrong scheme', () => {
    for (const origin of [
      'https://evil.example',
      'null',
      'http://127.0.0.1:8080',
      'https://127.0.0.1:3000',
    ]) {
      expect(() => checkRequestOrigin(event({ ...LOCAL, Origin: origin }), undefined)).toThrow(
        CrossOriginRequestError,
      );
    }
  });

  it('accepts the configured CORS origin, and any origin when it is *', () => {
    const other = event({ ...AWS, Origin: 'https://console.example' });
    expect(() => checkRequestOrigin(other, 'https://console.example')).not.toThrow();
    expect(() => checkRequestOrigin(other, '*')).not.toThrow();
    expect(() => checkRequestOrigin(other, 'https://else.example')).toThrow(CrossOriginRequestError);
  });

  it('refuses a no-cors request of another site but lets a link navigate', () => {
    const img = event({ ...LOCAL, 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors' }, 'GET');
    const link = event({ ...LOCAL, 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate' }, 'GET');
    const formPost = event({ ...LOCAL, 'Sec-Fetch-Site': 'same-site', 'Sec-Fetch-Mode': 'navigate' }, 'POST');
    const own = event({ ...LOCAL, 'Sec-Fetch-Site': 'same-origin' }, 'GET');

    expect(() => checkRequestOrigin(img, undefined)).toThrow(CrossOriginRequestError);
    expect(() => checkRequestOrigin(link, undefined)).not.toThrow();
    expect(() => checkRequestOrigin(formPost, undefined)).toThrow(/Sec-Fetch-Site: same-site/);
    expect(() => checkRequestOrigin(own, undefined)).not.toThrow();
  });

  it('answers 403 with the code CrossOriginRequest', () => {
    try {
      checkRequestOrigin(event({ ...LOCAL, Origin: 'https://evil.example' }), undefined);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ status: 403, code: 'CrossOriginRequest' });
    }
  });
});
