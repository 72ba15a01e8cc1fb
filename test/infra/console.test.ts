/**
 * The console in the CDK stack: `GET /` and `GET /console/ort/{file}` are the data-free
 * methods without an API key, the bucket lets the API's origin PUT to and GET from presigned URLs
 * (and nothing else cross-origin), the API
 * function may write only what the console needs, and it knows where the image keeps the page.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_IMAGE_DIR } from '../../infra/constructs/tlearn-function.ts';
import { ENV } from '../../lib/config.ts';
import { UPLOAD_CORS } from '../../lib/storage/upload-cors.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

describe('the console in the stack', () => {
  let testApp: TestApp;
  let template: Template;

  beforeAll(() => {
    testApp = createTestApp({ nag: true });
    template = Template.fromStack(createTestStack(testApp.app, 'Console'));
  });

  afterAll(() => testApp?.cleanup());

  it('serves GET / without an API key; every other data method needs one', () => {
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')) as {
      Properties: { HttpMethod: string; ApiKeyRequired?: boolean; ResourceId: unknown };
    }[];
    // OPTIONS (CORS preflight) is keyless on every resource; GET and ANY only on / and /health.
    const open = methods.filter(
      (m) => m.Properties.ApiKeyRequired !== true && m.Properties.HttpMethod !== 'OPTIONS',
    );
    const onRoot = open.filter((m) => JSON.stringify(m.Properties.ResourceId).includes('RootResourceId'));

    const ort = open.filter((m) => !onRoot.includes(m) && m.Properties.HttpMethod === 'GET');

    // GET and ANY on /, /health, /openapi.json and /console/ort/{file}.
    expect(open).toHaveLength(8);
    // GET on /health, /openapi.json and /console/ort/{file}.
    expect(ort).toHaveLength(3);
    // The root resource of the REST API, not a child resource.
    expect(onRoot.map((m) => m.Properties.HttpMethod).sort()).toEqual(['ANY', 'GET']);
  });

  it("lets only the API's origin PUT to and GET from the bucket cross-origin", () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      CorsConfiguration: {
        CorsRules: [
          {
            AllowedMethods: ['PUT', 'GET'],
            AllowedHeaders: [...UPLOAD_CORS.allowedHeaders],
            ExposedHeaders: [...UPLOAD_CORS.exposedHeaders],
            MaxAge: UPLOAD_CORS.maxAgeSeconds,
            AllowedOrigins: [{ 'Fn::Join': ['', Match.arrayWith(['https://', { Ref: Match.anyValue() }])] }],
          },
        ],
      },
    });
  });

  it('gives the API function the console folder and write access to images and current.json only', () => {
    const fn = Object.values(template.findResources('AWS::Lambda::Function')).find((f) =>
      JSON.stringify(f).includes(ENV.CONSOLE_DIR),
    ) as { Properties: { Environment: { Variables: Record<string, unknown> } } } | undefined;
    const policies = JSON.stringify(template.findResources('AWS::IAM::Policy'));

    expect(fn?.Properties.Environment.Variables[ENV.CONSOLE_DIR]).toBe(CONSOLE_IMAGE_DIR);
    expect(policies).toContain('/datasets/*');
    expect(policies).toContain('/models/*/current.json');
  });
});
