/**
 * The OpenAPI document (lib/api/openapi.ts): valid OpenAPI 3.1 by an independent validator, the
 * committed docs/openapi.json current, every route of the table in it with its role as security,
 * and every error code of the error table and the gateway contract answered in the shared shape.
 */
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS_CODES } from '../../../lib/api/errors.ts';
import { GATEWAY_ERRORS } from '../../../lib/api/gateway.ts';
import { openApiDocument } from '../../../lib/api/openapi.ts';
import { API_ROUTES } from '../../../lib/api/routes.ts';
import { OPENAPI_FILE, openApiText } from '../../../scripts/openapi.ts';

type Op = {
  security?: unknown[];
  parameters?: Array<{ name: string; in: string; required?: boolean }>;
  requestBody?: { required?: boolean; content: Record<string, unknown> };
  responses: Record<string, { $ref?: string; content?: Record<string, { schema?: { $ref?: string } }> }>;
};

const doc = openApiDocument();
const op = (path: string, method: string): Op => {
  const found = doc.paths[path]?.[method] as Op | undefined;
  if (found === undefined) throw new Error(`no ${method} ${path} in the document`);
  return found;
};

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1 for an independent validator', async () => {
    const validator = new Validator();

    const result = await validator.validate(JSON.parse(JSON.stringify(doc)));

    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('is committed as docs/openapi.json exactly as generated (npm run openapi rewrites it)', () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(openApiText());
  });

  it('has each route of the table with its method, and nothing else', () => {
    const inDoc = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );

    expect(inDoc.sort()).toEqual(API_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });

  it('asks for the x-api-key header on keyed routes and for nothing on the keyless ones', () => {
    const scheme = (doc.components.securitySchemes as Record<string, unknown>).apiKey;

    expect(scheme).toEqual(expect.objectContaining({ type: 'apiKey', in: 'header', name: 'x-api-key' }));
    for (const r of API_ROUTES) {
      expect(op(r.path, r.method.toLowerCase()).security, `${r.method} ${r.path}`).toEqual(
        r.role === 'none' ? [] : [{ apiKey: [] }],
      );
    }
    expect(op('/openapi.json', 'get').security).toEqual([]);
  });

  it('answers every code of the error table and of the gateway contract in the shared error shape', () => {
    const responses = doc.components.responses as Record<
      string,
      { description: string; content: Record<string, { schema: { $ref: string } }> }
    >;
    const expected: Array<[number, string]> = [
      ...Object.entries(ERROR_STATUS_CODES).map(([s, c]): [number, string] => [Number(s), c]),
      [500, 'InternalError'],
      ...Object.values(GATEWAY_ERRORS)
        .filter((g) => g.status !== undefined)
        .map((g): [number, string] => [g.status ?? 0, g.code]),
    ];

    for (const [status, code] of expected) {
      const r = responses[`Error${status}`];
      expect(r?.description, `${status} ${code}`).toContain(`\`${code}\``);
      expect(r?.content['application/json']?.schema.$ref).toBe('#/components/schemas/Error');
      expect(op('/datasets/{d}', 'get').responses[String(status)]?.$ref).toBe(
        `#/components/responses/Error${status}`,
      );
    }
    expect(op('/datasets/{d}', 'get').responses.default?.$ref).toBe('#/components/responses/ErrorDefault');
    expect(doc.components.schemas?.Error).toEqual(
      expect.objectContaining({
        required: ['error'],
        properties: expect.objectContaining({ error: expect.anything() }),
      }),
    );
  });

  it('takes a prediction as a raw image or as JSON, with top and threshold, and answers a Prediction', () => {
    const predict = op('/datasets/{d}/predictions', 'post');

    expect(Object.keys(predict.requestBody?.content ?? {}).sort()).toEqual([
      'application/json',
      'application/octet-stream',
      'image/*',
    ]);
    expect(predict.parameters?.map((p) => `${p.in}:${p.name}`)).toEqual([
      'path:d',
      'query:top',
      'query:threshold',
    ]);
    expect(predict.responses['200']?.content?.['application/json']?.schema?.$ref).toBe(
      '#/components/schemas/Prediction',
    );
  });

  it('gives a route without declared schemas its path parameters, security and the error answers', () => {
    const undeclared = op('/console/ort/{file}', 'get');

    expect(undeclared.parameters).toEqual([
      expect.objectContaining({ name: 'file', in: 'path', required: true }),
    ]);
    expect(undeclared.responses['404']?.$ref).toBe('#/components/responses/Error404');
  });
});
