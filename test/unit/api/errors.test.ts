import { S3ServiceException } from '@aws-sdk/client-s3';
import { createError } from '@middy/util';
import { describe, expect, it } from 'vitest';
import {
  errorResponse,
  ForbiddenError,
  MethodNotAllowedError,
  mapError,
  TooManyRequestsError,
} from '../../../lib/api/errors.ts';
import {
  ConflictError,
  ImageDecodeError,
  NotFoundError,
  PayloadTooLargeError,
  SpecMismatchError,
  TlearnError,
  UnsupportedMediaTypeError,
  ValidationError,
  WeightsError,
} from '../../../lib/errors.ts';
import type { Log } from '../../../lib/util/log.ts';

function recordingLog(): Log & {
  lines: { level: string; message: string; extra?: Record<string, unknown> }[];
} {
  const lines: { level: string; message: string; extra?: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, extra?: Record<string, unknown>): void => {
      lines.push({ level, message, ...(extra ? { extra } : {}) });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('mapError', () => {
  it.each([
    [new ValidationError('bad top'), 400, 'ValidationError'],
    [new ForbiddenError('not yours', { code: 'KeyOutsideDataset' }), 403, 'KeyOutsideDataset'],
    [new NotFoundError('no such dataset', { code: 'DatasetNotFound' }), 404, 'DatasetNotFound'],
    [new MethodNotAllowedError('use GET', ['GET']), 405, 'MethodNotAllowed'],
    [new ConflictError('no model', { code: 'NoPromotedModel' }), 409, 'NoPromotedModel'],
    [new SpecMismatchError('other spec'), 409, 'SpecMismatch'],
    [new PayloadTooLargeError('too big'), 413, 'PayloadTooLarge'],
    [new UnsupportedMediaTypeError('text/plain'), 415, 'UnsupportedMediaType'],
    [new ImageDecodeError('CorruptImage', 'truncated'), 422, 'CorruptImage'],
    [new TooManyRequestsError('slow down'), 429, 'TooManyRequests'],
  ])('shows a client error as it is: %s', (err, status, code) => {
    const mapped = mapError(err, 'req-1');
    expect(mapped).toMatchObject({ status, code, message: err.message, expose: true });
  });

  it('sends Allow with a 405 and Retry-After with a 429', () => {
    expect(mapError(new MethodNotAllowedError('x', ['GET', 'POST']), undefined).headers).toEqual({
      allow: 'GET, POST',
    });
    expect(mapError(new TooManyRequestsError('x', 3), undefined).headers).toEqual({ 'retry-after': '3' });
  });

  it('hides the message of a server error and of a non-project error, naming only the request id', () => {
    for (const err of [
      new WeightsError('s3://secret-bucket/base-models/x is missing'),
      new TlearnError('CorruptObject', 'models/pets/v/model.json does not parse', 500),
      new TypeError("Cannot read properties of undefined (reading 'coef')"),
      'a thrown string',
    ]) {
      const mapped = mapError(err, 'req-42');
      expect(mapped).toEqual({
        status: 500,
        code: 'InternalError',
        message: 'internal error (request id req-42); it has been logged',
        headers: {},
        expose: false,
      });
    }
  });

  it('maps middy HttpErrors below 500 by their status', () => {
    expect(mapError(createError(404, 'Route does not exist'), undefined)).toMatchObject({
      status: 404,
      code: 'NotFound',
      message: 'Route does not exist',
    });
    expect(mapError(createError(502, 'upstream'), undefined).status).toBe(500);
  });

  it('turns AWS throttling into a 429 the client can retry', () => {
    const throttled = new S3ServiceException({
      name: 'SlowDown',
      $fault: 'server',
      $metadata: { httpStatusCode: 503 },
      message: 'Please reduce your request rate.',
    });
    expect(mapError(throttled, undefined)).toMatchObject({
      status: 429,
      code: 'TooManyRequests',
      headers: { 'retry-after': '1' },
    });
  });
});

describe('errorResponse', () => {
  it('writes a JSON error body and logs a client error at info, never at error', () => {
    const log = recordingLog();
    const res = errorResponse(
      new ConflictError("dataset 'pets' has no promoted model yet", { code: 'NoPromotedModel' }),
      {
        requestId: 'r1',
        log,
        route: 'POST /datasets/{d}/predictions',
        extraHeaders: { 'access-control-allow-origin': '*' },
      },
    );
    expect(res.statusCode).toBe(409);
    expect(res.headers).toEqual({ 'content-type': 'application/json', 'access-control-allow-origin': '*' });
    expect(JSON.parse(res.body)).toEqual({
      error: { code: 'NoPromotedModel', message: "dataset 'pets' has no promoted model yet" },
    });
    expect(log.lines.map((l) => l.level)).toEqual(['info']);
  });

  it('logs a server error at error level with its cause chain, and keeps it out of the body', () => {
    const log = recordingLog();
    const cause = new Error('ECONNRESET while reading models/pets/v/model.json');
    const res = errorResponse(new TlearnError('CorruptObject', 'bad model', 500, { cause }), {
      requestId: 'r2',
      log,
      route: 'GET /datasets/{d}/model',
    });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('model.json');
    expect(res.body).not.toContain('ECONNRESET');
    expect(log.lines).toHaveLength(1);
    const [line] = log.lines;
    expect(line?.level).toBe('error');
    const logged = line?.extra?.error as { message: string; cause: { message: string } };
    expect(logged.message).toBe('CorruptObject: bad model');
    expect(logged.cause.message).toBe('Error: ECONNRESET while reading models/pets/v/model.json');
  });

  it('logs a throttled request at warn', () => {
    const log = recordingLog();
    errorResponse(new TooManyRequestsError('busy'), { requestId: undefined, log, route: 'GET /datasets' });
    expect(log.lines.map((l) => l.level)).toEqual(['warn']);
  });
});
