import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyPresigned } from '../../../lib/local/presigned-check.ts';

const SECRETS = { local: 'local' };

describe('verifyPresigned', () => {
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:4566',
    forcePathStyle: true,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  afterAll(() => s3.destroy());

  /** A URL the SDK presigns, as the server receives it (path + query) with the headers to send. */
  const presign = async (key: string, expiresIn = 900) => {
    const url = new URL(
      await getSignedUrl(
        s3,
        new PutObjectCommand({
          Bucket: 'b',
          Key: key,
          ContentType: 'image/png',
          ContentLength: 5,
          IfNoneMatch: '*',
        }),
        { expiresIn, signableHeaders: new Set(['content-type', 'content-length', 'if-none-match']) },
      ),
    );
    return {
      url: `${url.pathname}${url.search}`,
      headers: { host: url.host, 'content-type': 'image/png', 'content-length': '5', 'if-none-match': '*' },
    };
  };

  it("accepts the SDK's own presigned PUT, unicode and spaces in the key included", async () => {
    const req = await presign('datasets/d/café/a b+c.png');

    expect(verifyPresigned({ method: 'PUT', ...req }, SECRETS)).toBeUndefined();
  });

  it('refuses another body size, a dropped header, another method or key, and a wrong secret', async () => {
    const req = await presign('datasets/d/cat/a.png');

    const results = [
      verifyPresigned({ method: 'PUT', ...req, headers: { ...req.headers, 'content-length': '6' } }, SECRETS),
      verifyPresigned({ method: 'PUT', ...req, headers: { ...req.headers, 'if-none-match': '' } }, SECRETS),
      verifyPresigned({ method: 'POST', ...req }, SECRETS),
      verifyPresigned({ method: 'PUT', ...req, url: req.url.replace('a.png', 'b.png') }, SECRETS),
      verifyPresigned({ method: 'PUT', ...req }, { local: 'other' }),
    ];

    expect(results.map((r) => r?.code)).toEqual([
      'SignatureDoesNotMatch',
      'SignatureDoesNotMatch',
      'SignatureDoesNotMatch',
      'SignatureDoesNotMatch',
      'SignatureDoesNotMatch',
    ]);
    expect(verifyPresigned({ method: 'PUT', ...req }, {})?.code).toBe('InvalidAccessKeyId');
  });

  it('refuses an expired URL', async () => {
    const req = await presign('datasets/d/cat/a.png', 60);

    const later = verifyPresigned({ method: 'PUT', ...req }, SECRETS, new Date(Date.now() + 61_000));

    expect(later).toMatchObject({ status: 403, code: 'AccessDenied', message: 'Request has expired' });
  });
});
