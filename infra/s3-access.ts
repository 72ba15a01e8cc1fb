/**
 * Least-privilege S3 access by prefix of the S3 layout, instead of the bucket's `grant*` helpers
 * (which add `s3:List*` on the whole bucket and `s3:DeleteObject*`, i.e. permanent deletion of old
 * versions): listing only under the role's prefixes (an `s3:prefix` condition; S3 evaluates the
 * same condition with the object key to answer 404 rather than 403 for a missing object), reading,
 * writing and deleting current objects only where asked, never `s3:DeleteObjectVersion`.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';

/** What one function may do in the bucket, by key pattern (`models/*`, `models/*\/current.json`). */
export interface S3Access {
  /** Prefixes it may list (ListBucket with `s3:prefix` like `prefix*`). */
  readonly list?: readonly string[];
  /** Key patterns it may read (GetObject; HeadObject too). */
  readonly read?: readonly string[];
  /** Key patterns it may write (PutObject). */
  readonly write?: readonly string[];
  /** Key patterns it may delete (DeleteObject: a delete marker on a versioned bucket, never a version). */
  readonly delete?: readonly string[];
  /** Key patterns it may never write, whatever else allows it (an explicit Deny). */
  readonly denyWrite?: readonly string[];
}

/** Adds the statements of `access` to a function's role. */
export function grantS3Access(grantee: iam.IGrantable, bucket: s3.IBucket, access: S3Access): void {
  const objects = (patterns: readonly string[]) => patterns.map((p) => bucket.arnForObjects(p));
  const add = (statement: iam.PolicyStatement) => grantee.grantPrincipal.addToPrincipalPolicy(statement);
  if (access.list?.length) {
    add(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': access.list.map((p) => `${p}*`) } },
      }),
    );
  }
  if (access.read?.length)
    add(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: objects(access.read) }));
  if (access.write?.length)
    add(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: objects(access.write) }));
  if (access.delete?.length) {
    add(new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: objects(access.delete) }));
  }
  if (access.denyWrite?.length) {
    add(
      new iam.PolicyStatement({
        effect: iam.Effect.DENY,
        actions: ['s3:PutObject'],
        resources: objects(access.denyWrite),
      }),
    );
  }
}
