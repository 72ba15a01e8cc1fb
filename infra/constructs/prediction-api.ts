import { RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';

import { API_ROUTES, BINARY_MEDIA_TYPES } from '../../lib/api/routes.ts';

export { API_ROUTES, BINARY_MEDIA_TYPES };

/** JSON Schema (draft 4, API Gateway models) of a JSON prediction request. */
export const PREDICTION_REQUEST_SCHEMA: apigw.JsonSchema = {
  schema: apigw.JsonSchemaVersion.DRAFT4,
  title: 'PredictionRequest',
  type: apigw.JsonSchemaType.OBJECT,
  oneOf: [
    {
      type: apigw.JsonSchemaType.OBJECT,
      required: ['image'],
      properties: { image: { type: apigw.JsonSchemaType.STRING, minLength: 1 } },
    },
    {
      type: apigw.JsonSchemaType.OBJECT,
      required: ['key'],
      properties: { key: { type: apigw.JsonSchemaType.STRING, pattern: '^datasets/', maxLength: 1024 } },
    },
  ],
};

/**
 * API Gateway rejections rewritten to the API's error shape: [status (undefined = keep API
 * Gateway's), code, message].
 */
export const GATEWAY_ERRORS: ReadonlyArray<[apigw.ResponseType, [string | undefined, string, string]]> = [
  [
    apigw.ResponseType.BAD_REQUEST_BODY,
    ['400', 'ValidationError', 'JSON body must be {"image": "<base64>"} or {"key": "datasets/..."}'],
  ],
  [
    apigw.ResponseType.BAD_REQUEST_PARAMETERS,
    ['400', 'ValidationError', 'missing or invalid request parameters'],
  ],
  [apigw.ResponseType.INVALID_API_KEY, ['403', 'Forbidden', 'missing or invalid x-api-key header']],
  [
    apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
    ['404', 'NotFound', 'no such route; see GET /health and the /datasets routes'],
  ],
  [apigw.ResponseType.REQUEST_TOO_LARGE, ['413', 'PayloadTooLarge', 'request body too large (limit 6 MB)']],
  [
    apigw.ResponseType.THROTTLED,
    ['429', 'TooManyRequests', 'rate limit of this API key exceeded; retry later'],
  ],
  [apigw.ResponseType.QUOTA_EXCEEDED, ['429', 'QuotaExceeded', 'daily quota of this API key used up']],
  [apigw.ResponseType.INTEGRATION_TIMEOUT, ['504', 'Timeout', 'the request took too long; retry']],
  [apigw.ResponseType.DEFAULT_5XX, [undefined, 'InternalError', 'internal error']],
];

export interface PredictionApiProps {
  /** The function behind every route (Lambda proxy integration). */
  readonly handler: lambda.IFunction;
  /** @default 'v1' */
  readonly stageName?: string;
  /** Steady-state requests per second per API key (usage plan and stage). @default 10 */
  readonly rateLimit?: number;
  /** Burst of requests per API key. @default 20 */
  readonly burstLimit?: number;
  /** Requests per day per API key. @default 10000 */
  readonly quotaPerDay?: number;
  /**
   * Create the account-wide role API Gateway uses to write execution logs. Turn off when the
   * account already has one configured (it is a per-region account setting).
   * @default true
   */
  readonly manageCloudWatchRole?: boolean;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * The prediction / status / training REST API: regional endpoint, API key required on every
 * method with a usage plan (throttle + quota), binary media types for raw image uploads, request
 * parameter validation, JSON access logs, execution logs at ERROR level (no data trace: bodies are
 * images), X-Ray tracing and detailed metrics.
 */
export class PredictionApi extends Construct {
  readonly api: apigw.RestApi;
  readonly apiKey: apigw.IApiKey;
  readonly usagePlan: apigw.UsagePlan;
  readonly accessLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: PredictionApiProps) {
    super(scope, id);
    const stageName = props.stageName ?? 'v1';
    const rateLimit = props.rateLimit ?? 10;
    const burstLimit = props.burstLimit ?? 20;
    const quotaPerDay = props.quotaPerDay ?? 10_000;
    if (!/^[A-Za-z0-9_]{1,128}$/.test(stageName)) {
      throw new Error(`${id}: stageName must be 1-128 letters, digits or '_' (got '${stageName}')`);
    }
    if (!(rateLimit > 0) || !Number.isFinite(rateLimit)) {
      throw new Error(`${id}: rateLimit must be a positive number (got ${rateLimit})`);
    }
    if (!Number.isInteger(burstLimit) || burstLimit < 1) {
      throw new Error(`${id}: burstLimit must be a positive integer (got ${burstLimit})`);
    }
    if (!Number.isInteger(quotaPerDay) || quotaPerDay < 1) {
      throw new Error(`${id}: quotaPerDay must be a positive integer (got ${quotaPerDay})`);
    }

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    const manageRole = props.manageCloudWatchRole ?? true;
    this.api = new apigw.RestApi(this, 'Api', {
      description: 'tlearn: predictions, dataset status, trainings, models',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      binaryMediaTypes: [...BINARY_MEDIA_TYPES],
      apiKeySourceType: apigw.ApiKeySourceType.HEADER,
      cloudWatchRole: manageRole,
      defaultMethodOptions: { apiKeyRequired: true },
      deployOptions: {
        stageName,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields({
          caller: false,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: false,
        }),
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        // Would log request bodies: images and keys of other users.
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: true,
        throttlingRateLimit: rateLimit,
        throttlingBurstLimit: burstLimit,
      },
    });

    // Parameters are checked on every method; bodies only where a model is attached (JSON bodies
    // of predictions: raw image bodies have no schema and go through to the function).
    // The stack publishes the URL as ApiUrl; RestApi's own generated output would duplicate it.
    this.api.node.tryRemoveChild('Endpoint');

    const validator = new apigw.RequestValidator(this, 'RequestValidator', {
      restApi: this.api,
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    const predictionJson = this.api.addModel('PredictionRequest', {
      contentType: 'application/json',
      description: 'POST /datasets/{d}/predictions JSON body: {"image": base64} or {"key": "datasets/..."}',
      schema: PREDICTION_REQUEST_SCHEMA,
    });
    // allowTestInvoke off: one Lambda permission per method instead of two.
    const integration = new apigw.LambdaIntegration(props.handler, { proxy: true, allowTestInvoke: false });
    for (const route of API_ROUTES) {
      const resource = this.api.root.resourceForPath(route.path);
      const requestParameters: Record<string, boolean> = {};
      if (route.path.includes('{d}')) requestParameters['method.request.path.d'] = true;
      const predictions = route.path.endsWith('/predictions');
      if (predictions) requestParameters['method.request.querystring.top'] = false;
      resource.addMethod(route.method, integration, {
        // The console page is public (static, no data); its data calls send the key.
        apiKeyRequired: !('role' in route && route.role === 'none'),
        requestParameters,
        requestValidator: validator,
        ...(predictions ? { requestModels: { 'application/json': predictionJson } } : {}),
      });
    }
    // API Gateway's own rejections in the API's error shape {"error": {"code", "message"}}.
    for (const [type, [statusCode, code, message]] of GATEWAY_ERRORS) {
      this.api.addGatewayResponse(`Gateway${type.responseType}`, {
        type,
        statusCode,
        responseHeaders: { 'Content-Type': "'application/json'" },
        templates: { 'application/json': JSON.stringify({ error: { code, message } }) },
      });
    }

    this.apiKey = this.api.addApiKey('ApiKey', { description: 'tlearn API key' });
    this.usagePlan = this.api.addUsagePlan('UsagePlan', {
      description: 'tlearn API usage plan',
      throttle: { rateLimit, burstLimit },
      quota: { limit: quotaPerDay, period: apigw.Period.DAY },
      apiStages: [{ api: this.api, stage: this.api.deploymentStage }],
    });
    this.usagePlan.addApiKey(this.apiKey);

    NagSuppressions.addResourceSuppressions(
      this.api,
      [
        {
          id: 'AwsSolutions-APIG3',
          reason:
            'Per-key throttling and a daily quota (usage plan) bound abuse; a WAF web ACL can be associated with the stage where IP rules are needed.',
        },
        {
          id: 'AwsSolutions-APIG4',
          reason:
            'Clients authenticate with an API key (x-api-key) on every method, as the design specifies.',
        },
        {
          id: 'AwsSolutions-COG4',
          reason: 'No Cognito user pool: access is by API key with a usage plan, as the design specifies.',
        },
      ],
      true,
    );
    if (manageRole) {
      NagSuppressions.addResourceSuppressions(
        this.api,
        [
          {
            id: 'AwsSolutions-IAM4',
            reason:
              'The account-level API Gateway CloudWatch role uses the AWS managed AmazonAPIGatewayPushToCloudWatchLogs policy, which API Gateway documents for this role.',
            appliesTo: [
              'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs',
            ],
          },
        ],
        true,
      );
    }
  }
}
