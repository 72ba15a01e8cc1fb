import { RemovalPolicy, Tags } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';

import {
  GATEWAY_ERRORS,
  type GatewayError,
  gatewayErrorBody,
  gatewayMethods,
} from '../../lib/api/gateway.ts';
import { KEY_ROLE_TAG } from '../../lib/api/keys.ts';
import { API_ROUTES, BINARY_MEDIA_TYPES } from '../../lib/api/routes.ts';
import { KEY_THROTTLE, stageThrottle, stageThrottleProblem } from '../../lib/api/throttle.ts';

export { API_ROUTES, BINARY_MEDIA_TYPES };

export interface PredictionApiProps {
  /** The function behind every route (Lambda proxy integration). */
  readonly handler: lambda.IFunction;
  /** @default 'v1' */
  readonly stageName?: string;
  /** Steady-state requests per second per API key (usage plan). @default 10 (lib/api/throttle.ts) */
  readonly rateLimit?: number;
  /** Burst of requests per API key. @default 20 */
  readonly burstLimit?: number;
  /** Requests per day per API key. @default 10000 */
  readonly quotaPerDay?: number;
  /**
   * Requests per second over all keys (the stage); at least twice the key's.
   * @default rateLimit × TENANTS_AT_FULL_RATE (lib/api/throttle.ts)
   */
  readonly stageRateLimit?: number;
  /** Burst over all keys (the stage); at least twice the key's. @default burstLimit × TENANTS_AT_FULL_RATE */
  readonly stageBurstLimit?: number;
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
    const rateLimit = props.rateLimit ?? KEY_THROTTLE.rateLimit;
    const burstLimit = props.burstLimit ?? KEY_THROTTLE.burstLimit;
    const quotaPerDay = props.quotaPerDay ?? KEY_THROTTLE.quotaPerDay;
    const stage = {
      rateLimit: props.stageRateLimit ?? stageThrottle({ rateLimit, burstLimit }).rateLimit,
      burstLimit: props.stageBurstLimit ?? stageThrottle({ rateLimit, burstLimit }).burstLimit,
    };
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
    if (!Number.isInteger(stage.burstLimit)) {
      throw new Error(`${id}: stageBurstLimit must be an integer (got ${stage.burstLimit})`);
    }
    const stageProblem = stageThrottleProblem(stage, { rateLimit, burstLimit });
    if (stageProblem) throw new Error(`${id}: ${stageProblem}`);

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
        // All keys together (lib/api/throttle.ts): well above one key's plan, so one busy tenant
        // cannot take the others' share.
        throttlingRateLimit: stage.rateLimit,
        throttlingBurstLimit: stage.burstLimit,
      },
    });

    // The stack publishes the URL as ApiUrl; RestApi's own generated output would duplicate it.
    this.api.node.tryRemoveChild('Endpoint');

    // No request validation on the gateway: the function validates every request with the same
    // zod schemas locally and on AWS (one set of rules and codes). Methods come from the route
    // table (lib/api/gateway.ts): declared methods, OPTIONS without a key, ANY for the rest (405).
    // allowTestInvoke off: one Lambda permission per method instead of two.
    const integration = new apigw.LambdaIntegration(props.handler, { proxy: true, allowTestInvoke: false });
    for (const m of gatewayMethods(API_ROUTES)) {
      const resource = m.resource === '/' ? this.api.root : this.api.root.resourceForPath(m.resource);
      resource.addMethod(m.method, integration, { apiKeyRequired: m.apiKeyRequired });
    }
    // API Gateway's own rejections in the API's error shape {"error": {"code", "message"}}.
    for (const [name, row] of Object.entries(GATEWAY_ERRORS) as Array<
      [keyof typeof GATEWAY_ERRORS, GatewayError]
    >) {
      this.api.addGatewayResponse(`Gateway${row.type}`, {
        type: apigw.ResponseType.of(row.type),
        statusCode: row.status === undefined ? undefined : String(row.status),
        responseHeaders: { 'Content-Type': "'application/json'" },
        templates: { 'application/json': gatewayErrorBody(name) },
      });
    }

    // The stack's one admin key; scoped keys are created through the API (POST /keys).
    this.apiKey = this.api.addApiKey('ApiKey', { description: 'tlearn admin API key' });
    Tags.of(this.apiKey).add(KEY_ROLE_TAG, 'admin');
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
          id: 'AwsSolutions-APIG2',
          reason:
            'Request validation happens once, in the function, with the same zod schemas and error codes locally and on AWS (lib/api/http.ts); a gateway validator would answer the same request differently on each side.',
        },
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
