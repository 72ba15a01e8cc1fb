/**
 * Signature V4 check of presigned S3 requests (query `X-Amz-Signature`), which fauxqs 1.9 never
 * verifies. S3 does, and the console's uploads rely on it: `POST /datasets/{d}/uploads` signs the
 * body's `content-length` (the size limit) and `if-none-match: *` (no silent overwrite), so a PUT
 * with another body size or without the header must fail here as it fails on S3 (403
 * `SignatureDoesNotMatch`), and so must an expired URL (403 `AccessDenied`).
 * The canonical request follows the SigV4 query-string rules S3 uses: the path as sent (S3 does
 * not normalize it), every query parameter but the signature, the signed headers' values, and
 * `UNSIGNED-PAYLOAD`.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Why a presigned request is refused, in S3's words. */
export interface PresignRefusal {
  status: 403;
  code: 'SignatureDoesNotMatch' | 'AccessDenied' | 'InvalidAccessKeyId' | 'AuthorizationQueryParametersError';
  message: string;
}

/** A request as the server received it. */
export interface PresignedRequest {
  method: string;
  /** Path and query exactly as sent. */
  url: string;
  /** Lower-case header names (Node's `IncomingMessage.headers`). */
  headers: Record<string, string | string[] | undefined>;
}

/** RFC 3986 encoding as SigV4 wants it (`encodeURIComponent` leaves `!'()*` alone). */
function strictEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, '%20'));
  } catch {
    return value;
  }
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** `20261207T053000Z` → epoch ms. */
function amzDateMs(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return Date.UTC(y ?? 0, (mo ?? 1) - 1, d ?? 1, h ?? 0, mi ?? 0, s ?? 0);
}

/** Whether a request is presigned (its signature is in the query). */
export function isPresigned(url: string): boolean {
  return /[?&]X-Amz-Signature=/.test(url);
}

/**
 * Checks a presigned request against the secrets of the access keys it may be signed with;
 * undefined when it holds. `now` is for tests.
 *
 * @example verifyPresigned({ method: req.method, url: req.url, headers: req.headers }, { local: 'local' })
 */
export function verifyPresigned(
  req: PresignedRequest,
  secrets: Readonly<Record<string, string>>,
  now: Date = new Date(),
): PresignRefusal | undefined {
  const [rawPath = '/', rawQuery = ''] = req.url.split('?', 2);
  const pairs = rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      return i < 0 ? [safeDecode(p), ''] : [safeDecode(p.slice(0, i)), safeDecode(p.slice(i + 1))];
    }) as [string, string][];
  const param = (name: string) => pairs.find(([k]) => k === name)?.[1];
  const signature = param('X-Amz-Signature');
  const credential = param('X-Amz-Credential');
  const date = param('X-Amz-Date');
  const expires = Number(param('X-Amz-Expires'));
  const signedHeaders = param('X-Amz-SignedHeaders');
  if (
    param('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' ||
    signature === undefined ||
    credential === undefined ||
    date === undefined ||
    signedHeaders === undefined ||
    !Number.isInteger(expires)
  ) {
    return {
      status: 403,
      code: 'AuthorizationQueryParametersError',
      message:
        'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    };
  }
  const [accessKey = '', ...scopeParts] = credential.split('/');
  const secret = secrets[accessKey];
  if (secret === undefined) {
    return {
      status: 403,
      code: 'InvalidAccessKeyId',
      message: 'The AWS Access Key Id you provided does not exist in our records.',
    };
  }
  const signedAt = amzDateMs(date);
  if (signedAt === undefined || now.getTime() > signedAt + expires * 1000) {
    return { status: 403, code: 'AccessDenied', message: 'Request has expired' };
  }
  const canonicalQuery = pairs
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [strictEncode(k), strictEncode(v)])
    .sort(([a = '', x = ''], [b = '', y = '']) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = signedHeaders.split(';');
  const canonicalHeaders = names
    .map((n) => {
      const v = req.headers[n];
      const value = (Array.isArray(v) ? v.join(',') : (v ?? '')).trim().replace(/\s+/g, ' ');
      return `${n}:${value}\n`;
    })
    .join('');
  const canonicalRequest = [
    req.method.toUpperCase(),
    rawPath,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const scope = scopeParts.join('/');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    date,
    scope,
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  const [day = '', region = '', service = '', terminator = ''] = scopeParts;
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), terminator);
  const expected = hmac(key, stringToSign);
  const given = Buffer.from(signature, 'hex');
  if (given.length === expected.length && timingSafeEqual(given, expected)) return undefined;
  return {
    status: 403,
    code: 'SignatureDoesNotMatch',
    message: `The request signature we calculated does not match the signature you provided. Check your key and signing method (signed headers: ${names.join(', ')}).`,
  };
}
