import { describe, expect, it } from 'vitest';
import {
  datasetParam,
  decodeBase64,
  formatBytes,
  getHeader,
  mediaType,
  parseJsonBody,
  readBodyBytes,
  requireMediaType,
} from '../../../lib/api/http.ts';
import { TlearnError } from '../../../lib/errors.ts';

function thrown(fn: () => unknown): TlearnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TlearnError) return err;
    throw err;
  }
  throw new Error('expected a TlearnError');
}

describe('decodeBase64', () => {
  it('decodes standard and URL-safe base64, ignoring line breaks', () => {
    const bytes = Buffer.from([0xfb, 0xff, 0x00, 0x10, 0x7e]);
    expect(decodeBase64(bytes.toString('base64'), 100, 'x')).toEqual(bytes);
    expect(decodeBase64(bytes.toString('base64url'), 100, 'x')).toEqual(bytes);
    const wrapped = Buffer.alloc(120, 7)
      .toString('base64')
      .replace(/(.{76})/g, '$1\r\n');
    expect(decodeBase64(wrapped, 200, 'x')).toEqual(Buffer.alloc(120, 7));
  });

  it('refuses characters outside the alphabet instead of skipping them like Buffer.from does', () => {
    const err = thrown(() => decodeBase64('iVBOR*w0KGgo=', 100, "'image'"));
    expect(err.status).toBe(400);
    expect(err.code).toBe('InvalidBase64');
    expect(err.message).toBe("'image' is not valid base64");
  });

  it('refuses padding in the middle and an impossible length', () => {
    expect(thrown(() => decodeBase64('AA==AAAA', 100, 'x')).code).toBe('InvalidBase64');
    expect(thrown(() => decodeBase64('AAAAA', 100, 'x')).code).toBe('InvalidBase64');
  });

  it('accepts exactly the limit and refuses one byte more with 413', () => {
    expect(decodeBase64(Buffer.alloc(300).toString('base64'), 300, 'x')).toHaveLength(300);
    const err = thrown(() => decodeBase64(Buffer.alloc(301).toString('base64'), 300, 'request body'));
    expect(err.status).toBe(413);
    expect(err.message).toBe('request body is larger than the limit of 300 bytes');
  });
});

describe('readBodyBytes', () => {
  it('decodes a base64-encoded binary body and takes a text body as UTF-8', () => {
    expect(
      readBodyBytes({ body: Buffer.from('héllo').toString('base64'), isBase64Encoded: true }, 10),
    ).toEqual(Buffer.from('héllo'));
    expect(readBodyBytes({ body: 'héllo', isBase64Encoded: false }, 10)).toEqual(Buffer.from('héllo'));
    expect(readBodyBytes({ body: null, isBase64Encoded: false }, 10)).toHaveLength(0);
  });

  it('counts a text body in UTF-8 bytes against the limit', () => {
    // 4 characters, 8 bytes.
    expect(thrown(() => readBodyBytes({ body: 'éééé', isBase64Encoded: false }, 7)).status).toBe(413);
    expect(readBodyBytes({ body: 'éééé', isBase64Encoded: false }, 8)).toHaveLength(8);
  });
});

describe('headers and media types', () => {
  it('finds headers whatever their case and drops media type parameters', () => {
    const event = { headers: { 'CONTENT-TYPE': 'Application/JSON; charset=utf-8' } };
    expect(getHeader(event, 'content-type')).toBe('Application/JSON; charset=utf-8');
    expect(mediaType(event)).toBe('application/json');
    expect(mediaType({ headers: {} })).toBeUndefined();
  });

  it('matches image/* against any image type and refuses others with 415 naming what is accepted', () => {
    expect(requireMediaType('image/webp', ['image/*', 'application/json'])).toBe('image/webp');
    const err = thrown(() => requireMediaType('text/plain', ['image/*', 'application/json']));
    expect(err.status).toBe(415);
    expect(err.message).toBe("content type 'text/plain' is not accepted; send image/*, application/json");
    expect(thrown(() => requireMediaType(undefined, ['image/*'])).message).toContain('(none)');
  });
});

describe('parseJsonBody', () => {
  it('parses JSON and turns a syntax error into a 400 InvalidJson with the reason', () => {
    expect(parseJsonBody(Buffer.from('{"a":1}'))).toEqual({ a: 1 });
    const err = thrown(() => parseJsonBody(Buffer.from('{"image": ')));
    expect(err.status).toBe(400);
    expect(err.code).toBe('InvalidJson');
    expect(err.message).toMatch(/^request body is not valid JSON: /);
  });
});

describe('datasetParam', () => {
  it('accepts a valid name', () => {
    expect(datasetParam({ pathParameters: { d: 'pets-2' } })).toBe('pets-2');
  });

  it.each([['..'], ['Pets'], ['pëts'], ['-pets'], ['a'.repeat(64)], ['a'.repeat(200)], ['']])(
    'refuses %j with a 400 InvalidDatasetName',
    (name) => {
      const err = thrown(() => datasetParam({ pathParameters: { d: name } }));
      expect(err.status).toBe(400);
      expect(err.code).toBe('InvalidDatasetName');
      expect(err.message).toContain('invalid dataset name');
    },
  );

  it('decodes percent-encoding once so the message shows the name the client meant', () => {
    const err = thrown(() => datasetParam({ pathParameters: { d: 'p%C3%ABts' } }));
    expect(err.message).toContain("'pëts'");
  });

  it('shortens a very long name in the message', () => {
    const err = thrown(() => datasetParam({ pathParameters: { d: 'x'.repeat(500) } }));
    expect(err.message.length).toBeLessThan(400);
  });
});

describe('formatBytes', () => {
  it('formats the 6 MB body limit readably', () => {
    expect(formatBytes(6 * 1024 * 1024)).toBe('6 MB');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(12)).toBe('12 bytes');
  });
});
