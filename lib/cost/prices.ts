/**
 * A small, dated table of the AWS list prices the cost figures use (USD, on-demand, no free
 * tier). Prices change: {@link PRICES_SOURCE} says where and when they were taken; check there
 * before relying on a figure. Only the regions below are known; others are refused.
 */
import { ValidationError } from '../errors.ts';

/** When the prices below were taken from AWS's public price pages. */
export const PRICES_AS_OF = '2025-05-01';

/**
 * Where the prices below come from: AWS's public list prices of each service for the region
 * (the pricing pages, which show the same figures as the Price List API's on-demand terms), as of
 * {@link PRICES_AS_OF}. `tlearn cost` prints it; re-read the pages (or query the API) to refresh.
 */
export const PRICES_SOURCE = {
  asOf: PRICES_AS_OF,
  description: "AWS's public on-demand list prices per region",
  pages: [
    'https://aws.amazon.com/lambda/pricing/',
    'https://aws.amazon.com/step-functions/pricing/',
    'https://aws.amazon.com/s3/pricing/',
    'https://aws.amazon.com/sqs/pricing/',
    'https://aws.amazon.com/api-gateway/pricing/',
    'https://aws.amazon.com/cloudwatch/pricing/',
    'https://aws.amazon.com/ecr/pricing/',
    'https://aws.amazon.com/eventbridge/pricing/',
  ],
  api: 'AWS Price List Query API (pricing:GetProducts; services AWSLambda, AWSStepFunctions, AmazonS3, AWSQueueService, AmazonApiGateway, AmazonCloudWatch, AmazonECR)',
} as const;

/** The one-line citation of the price table, as `tlearn cost` prints it. */
export function pricesCitation(region: string): string {
  return `${PRICES_SOURCE.description} for ${region}, taken ${PRICES_SOURCE.asOf} from aws.amazon.com/<service>/pricing (${PRICES_SOURCE.pages.length} pages) / the AWS Price List API`;
}

/** Unit prices of one region, USD. */
export interface RegionPrices {
  /** Lambda compute per GB-second, by architecture. */
  lambdaGbSecond: { arm64: number; x86_64: number };
  lambdaRequest: number;
  /** Step Functions Standard, per state transition. */
  sfnTransition: number;
  /** S3 Standard PUT, COPY, POST, LIST (and multipart) requests. */
  s3PutRequest: number;
  /** S3 Standard GET, HEAD and other requests. */
  s3GetRequest: number;
  s3StorageGbMonth: number;
  /** SQS standard queue, per request (a batch of up to 10 messages is one request). */
  sqsRequest: number;
  /** API Gateway REST API, per request (first 333 million a month). */
  apiGatewayRequest: number;
  /** CloudWatch standard-resolution alarm, per month. */
  cloudwatchAlarmMonth: number;
  /** CloudWatch dashboard, per month (beyond the 3 free ones an account has). */
  cloudwatchDashboardMonth: number;
  /** CloudWatch custom metric, per metric-month (first 10,000 metrics; EMF or PutMetricData alike). */
  cloudwatchMetricMonth: number;
  /** EventBridge scheduled rule, per triggered event (events of AWS services, schedules included, are free). */
  eventBridgeScheduledEvent: number;
  ecrStorageGbMonth: number;
  logsIngestGb: number;
  logsStorageGbMonth: number;
}

const US_EAST_1: RegionPrices = {
  lambdaGbSecond: { arm64: 0.0000133334, x86_64: 0.0000166667 },
  lambdaRequest: 0.2 / 1e6,
  sfnTransition: 0.025 / 1e3,
  s3PutRequest: 0.005 / 1e3,
  s3GetRequest: 0.0004 / 1e3,
  s3StorageGbMonth: 0.023,
  sqsRequest: 0.4 / 1e6,
  apiGatewayRequest: 3.5 / 1e6,
  cloudwatchAlarmMonth: 0.1,
  cloudwatchDashboardMonth: 3,
  cloudwatchMetricMonth: 0.3,
  eventBridgeScheduledEvent: 0,
  ecrStorageGbMonth: 0.1,
  logsIngestGb: 0.5,
  logsStorageGbMonth: 0.03,
};

/** List prices by region (as of {@link PRICES_AS_OF}); eu-west-1 differs only in log ingestion. */
export const PRICES: Readonly<Record<string, RegionPrices>> = {
  'us-east-1': US_EAST_1,
  'eu-west-1': { ...US_EAST_1, logsIngestGb: 0.57 },
};

/** Region whose prices are used when none is named (the CDK app's usual one). */
export const DEFAULT_PRICE_REGION = 'us-east-1';

/** The prices of a region; a ValidationError listing the known ones otherwise. */
export function pricesFor(region: string): RegionPrices {
  const p = PRICES[region];
  if (p === undefined) {
    throw new ValidationError(
      `no prices for region '${region}' (known: ${Object.keys(PRICES).join(', ')}); pass one of those as an approximation`,
      { code: 'UnknownPriceRegion' },
    );
  }
  return p;
}
