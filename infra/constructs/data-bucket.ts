import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { CAPTURES_PREFIX, MONITORING_PREFIX } from '../../lib/storage/keys.ts';
import { UPLOAD_CORS } from '../../lib/storage/upload-cors.ts';

export interface DataBucketProps {
  /**
   * What happens to the data when the stack is deleted. DESTROY also empties the bucket first
   * (autoDeleteObjects), for throw-away dev stacks.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /** Days a replaced or deleted object version is kept (undo window). @default 30 */
  readonly noncurrentVersionDays?: number;
  /** Days incomplete multipart uploads are kept before S3 aborts them. @default 1 */
  readonly abortIncompleteUploadDays?: number;
  /**
   * Write S3 server access logs to a second bucket (who read or wrote which image).
   * @default true
   */
  readonly serverAccessLogs?: boolean;
  /** Days access logs are kept. @default 90 */
  readonly accessLogDays?: number;
  /** Days a captured production prediction (captures/) is kept for review. @default 30 */
  readonly captureDays?: number;
  /** Days monitoring records and rollups (monitoring/) are kept. @default 400 */
  readonly monitoringDays?: number;
}

/**
 * The one bucket of the S3 layout (datasets/, features/, models/, base-models/) with secure
 * defaults: all public access blocked, S3-managed encryption, TLS-only bucket policy, versioning
 * (a bad upload or a wrong promotion can be undone), lifecycle rules, and server access logs in a
 * dedicated log bucket.
 */
export class DataBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket | undefined;

  constructor(scope: Construct, id: string, props: DataBucketProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    if (removalPolicy !== RemovalPolicy.RETAIN && removalPolicy !== RemovalPolicy.DESTROY) {
      throw new Error(`${id}: removalPolicy must be RETAIN or DESTROY (got ${removalPolicy})`);
    }
    const noncurrentVersionDays = props.noncurrentVersionDays ?? 30;
    const abortDays = props.abortIncompleteUploadDays ?? 1;
    const accessLogDays = props.accessLogDays ?? 90;
    const captureDays = props.captureDays ?? 30;
    const monitoringDays = props.monitoringDays ?? 400;
    for (const [name, value] of [
      ['noncurrentVersionDays', noncurrentVersionDays],
      ['abortIncompleteUploadDays', abortDays],
      ['accessLogDays', accessLogDays],
      ['captureDays', captureDays],
      ['monitoringDays', monitoringDays],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new Error(`${id}: ${name} must be a positive integer (got ${value})`);
      }
    }
    const destroy = removalPolicy === RemovalPolicy.DESTROY;
    const secure = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      removalPolicy,
      autoDeleteObjects: destroy,
    };

    if (props.serverAccessLogs ?? true) {
      // Access log delivery only supports SSE-S3 on the target bucket, which `secure` uses.
      this.accessLogBucket = new s3.Bucket(this, 'AccessLogs', {
        ...secure,
        lifecycleRules: [{ expiration: Duration.days(accessLogDays) }],
      });
      NagSuppressions.addResourceSuppressions(this.accessLogBucket, [
        {
          id: 'AwsSolutions-S1',
          reason: 'This is the access-log bucket itself; logging it into itself would loop.',
        },
      ]);
    }

    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...secure,
      versioned: true,
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: this.accessLogBucket ? 'data-bucket/' : undefined,
      lifecycleRules: [
        {
          id: 'abort-incomplete-uploads-and-expire-old-versions',
          abortIncompleteMultipartUploadAfter: Duration.days(abortDays),
          noncurrentVersionExpiration: Duration.days(noncurrentVersionDays),
        },
        // Captured images are users' production data: kept only for the review window.
        { id: 'expire-captures', prefix: CAPTURES_PREFIX, expiration: Duration.days(captureDays) },
        { id: 'expire-monitoring', prefix: MONITORING_PREFIX, expiration: Duration.days(monitoringDays) },
      ],
    });
    if (!this.accessLogBucket) {
      NagSuppressions.addResourceSuppressions(this.bucket, [
        {
          id: 'AwsSolutions-S1',
          reason:
            'Server access logs turned off on purpose (serverAccessLogs: false); CloudTrail data events can replace them.',
        },
      ]);
    }
  }

  /**
   * Lets pages served from `origins` (the API's origin: the console) PUT images to presigned URLs
   * of this bucket (CORS, UPLOAD_CORS of lib/storage/upload-cors.ts). Nothing else is allowed
   * cross-origin; the presigned URL itself is the authorization.
   */
  allowBrowserUploads(origins: readonly string[]): void {
    if (origins.length === 0) throw new Error('allowBrowserUploads: name at least one origin');
    this.bucket.addCorsRule({
      allowedMethods: UPLOAD_CORS.allowedMethods.map((m) => s3.HttpMethods[m]),
      allowedOrigins: [...origins],
      allowedHeaders: [...UPLOAD_CORS.allowedHeaders],
      exposedHeaders: [...UPLOAD_CORS.exposedHeaders],
      maxAge: UPLOAD_CORS.maxAgeSeconds,
    });
  }
}
