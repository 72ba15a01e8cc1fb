/**
 * The OpenAPI document against the REST API the CDK app synthesizes: the same paths and methods
 * (the gateway's OPTIONS and ANY catch-alls aside), the same keyless methods, so neither can
 * drift from the route table without this test failing.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../../lib/api/openapi.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

type Ref = { Ref?: string; 'Fn::GetAtt'?: [string, string] };
type Resource = { Properties: Record<string, unknown> };

let testApp: TestApp;
let template: Template;

beforeAll(() => {
  testApp = createTestApp();
  template = Template.fromStack(createTestStack(testApp.app, 'OpenApi'));
});

afterAll(() => testApp.cleanup());

/** Every method of the synthesized REST API as `METHOD /path`, with whether it needs a key. */
function synthesizedMethods(): Map<string, boolean> {
  const resources = template.findResources('AWS::ApiGateway::Resource') as Record<string, Resource>;
  const pathOf = (ref: Ref): string => {
    if (ref['Fn::GetAtt']?.[1] === 'RootResourceId') return '';
    const id = ref.Ref ?? '';
    const r = resources[id];
    if (r === undefined) throw new Error(`unknown resource ${JSON.stringify(ref)}`);
    return `${pathOf(r.Properties.ParentId as Ref)}/${String(r.Properties.PathPart)}`;
  };
  const out = new Map<string, boolean>();
  for (const m of Object.values(
    template.findResources('AWS::ApiGateway::Method') as Record<string, Resource>,
  )) {
    const method = String(m.Properties.HttpMethod);
    if (method === 'OPTIONS' || method === 'ANY') continue;
    out.set(
      `${method} ${pathOf(m.Properties.ResourceId as Ref) || '/'}`,
      m.Properties.ApiKeyRequired === true,
    );
  }
  return out;
}

describe('the OpenAPI document and the synthesized API', () => {
  it('have the same paths and methods (minus OPTIONS and ANY)', () => {
    const doc = openApiDocument();
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );

    expect(documented.sort()).toEqual([...synthesizedMethods().keys()].sort());
  });

  it('need a key on the same methods: none on GET /openapi.json and the other keyless routes', () => {
    const doc = openApiDocument();
    const synthesized = synthesizedMethods();

    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        expect(synthesized.get(`${m.toUpperCase()} ${path}`), `${m} ${path}`).toBe(op.security.length > 0);
      }
    }
    expect(synthesized.get('GET /openapi.json')).toBe(false);
  });
});
