/**
 * The AWS resources a piece of work used and what they cost: every training report and every
 * batch summary carries one `UsageDocument`. Counts are recorded where the code can
 * see them (S3 requests through an SDK middleware, the function's own duration and memory);
 * what only AWS sees (the state machine's other steps) is an estimate and says so in `notes`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { PRICES_AS_OF, pricesFor } from './prices.ts';

const count = z.number().int().nonnegative();
const amount = z.number().nonnegative();

/** One Lambda function's share. */
export const LambdaUsageSchema = z.object({
  function: z.string(),
  architecture: z.enum(['arm64', 'x86_64']),
  memoryMb: z.number().int().positive(),
  invocations: count,
  /** Milliseconds of run time (Lambda bills per ms). */
  durationMs: amount,
});
export type LambdaUsage = z.infer<typeof LambdaUsageSchema>;

/** Resources used. */
export const UsageSchema = z.object({
  lambda: z.array(LambdaUsageSchema),
  stepFunctions: z.object({ transitions: count }),
  /** S3 requests by price class: PUT/COPY/POST/LIST, and GET/HEAD. */
  s3: z.object({ put: count, get: count }),
  sqs: z.object({ requests: count }),
  apiGateway: z.object({ requests: count }),
});
export type Usage = z.infer<typeof UsageSchema>;

/** One priced line. */
export const CostLineSchema = z.object({
  item: z.string(),
  quantity: amount,
  unit: z.string(),
  usd: amount,
});
export type CostLine = z.infer<typeof CostLineSchema>;

/** `usage` of report.json / summary.json: what was used, its price, and how it was counted. */
export const UsageDocumentSchema = z.object({
  usage: UsageSchema,
  cost: z.object({
    region: z.string(),
    pricesAsOf: z.string(),
    currency: z.literal('USD'),
    lines: z.array(CostLineSchema),
    totalUsd: amount,
  }),
  notes: z.array(z.string()),
});
export type UsageDocument = z.infer<typeof UsageDocumentSchema>;

/** An empty usage record to add to. */
export function emptyUsage(): Usage {
  return {
    lambda: [],
    stepFunctions: { transitions: 0 },
    s3: { put: 0, get: 0 },
    sqs: { requests: 0 },
    apiGateway: { requests: 0 },
  };
}

/** Lambda GB-seconds of one function's usage. */
export function gbSeconds(l: LambdaUsage): number {
  return (l.memoryMb / 1024) * (l.durationMs / 1000);
}

/**
 * Prices a usage record with the region's list prices: one line per resource with a non-zero
 * quantity, and the total.
 *
 * @example priceUsage(usage, 'us-east-1').totalUsd
 */
export function priceUsage(usage: Usage, region: string): UsageDocument['cost'] {
  const p = pricesFor(region);
  const lines: CostLine[] = [];
  const add = (item: string, quantity: number, unit: string, unitPrice: number) => {
    if (quantity > 0) lines.push({ item, quantity: round(quantity, 4), unit, usd: quantity * unitPrice });
  };
  for (const l of usage.lambda) {
    add(
      `Lambda ${l.function} compute (${l.architecture}, ${l.memoryMb} MB)`,
      gbSeconds(l),
      'GB-s',
      p.lambdaGbSecond[l.architecture],
    );
    add(`Lambda ${l.function} requests`, l.invocations, 'requests', p.lambdaRequest);
  }
  add('Step Functions state transitions', usage.stepFunctions.transitions, 'transitions', p.sfnTransition);
  add('S3 PUT/COPY/POST/LIST requests', usage.s3.put, 'requests', p.s3PutRequest);
  add('S3 GET/HEAD requests', usage.s3.get, 'requests', p.s3GetRequest);
  add('SQS requests', usage.sqs.requests, 'requests', p.sqsRequest);
  add('API Gateway requests', usage.apiGateway.requests, 'requests', p.apiGatewayRequest);
  const totalUsd = lines.reduce((s, l) => s + l.usd, 0);
  return { region, pricesAsOf: PRICES_AS_OF, currency: 'USD', lines, totalUsd };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** S3 commands billed in the PUT/COPY/POST/LIST class (everything else but deletes is GET-class). */
const S3_PUT_CLASS = /^(Put|Copy|Post|List|CreateMultipartUpload|UploadPart|CompleteMultipartUpload)/;
/** Free S3 requests. */
const S3_FREE = /^(Delete|AbortMultipartUpload)/;

/** Counts of S3 requests sent through a client, by price class. */
export interface S3RequestCounts {
  put: number;
  get: number;
}

const scope = new AsyncLocalStorage<S3RequestCounts>();
const instrumented = new WeakSet<S3Client>();

/**
 * Runs `work` and counts the S3 requests it sends through `s3`, by price class. The count
 * follows the async context (an SDK middleware added once per client reads it), so concurrent
 * work on the same client (the local stack runs several trainings in one process) is counted
 * apart. Retries are not counted separately.
 *
 * @example const { result, counts } = await countS3Requests(s3, () => runTraining());
 */
export async function countS3Requests<T>(
  s3: S3Client,
  work: (counts: S3RequestCounts) => Promise<T>,
): Promise<{ result: T; counts: S3RequestCounts }> {
  if (!instrumented.has(s3)) {
    instrumented.add(s3);
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        const counts = scope.getStore();
        if (counts) {
          const name = String((context as { commandName?: string }).commandName ?? '');
          if (S3_PUT_CLASS.test(name)) counts.put++;
          else if (!S3_FREE.test(name)) counts.get++;
        }
        return next(args);
      },
      { step: 'initialize', name: 'tlearnS3RequestCounter' },
    );
  }
  const counts: S3RequestCounts = { put: 0, get: 0 };
  const result = await scope.run(counts, () => work(counts));
  return { result, counts };
}

/**
 * State transitions of a training execution that finds every feature ready at once: Start,
 * Settle, CheckReadiness, FeaturesReady, TrainHead, Promote, Finish, TrainAgain?, Done (the state machine of
 * infra/constructs/training-state-machine.ts; a test walks the synthesized definition to keep
 * this true). Each extra readiness round adds {@link TRANSITIONS_PER_READINESS_ROUND}.
 */
export const TRAINING_TRANSITIONS_HAPPY_PATH = 9;
/** WaitForFeatures, NextRound, CheckReadiness, FeaturesReady. */
export const TRANSITIONS_PER_READINESS_ROUND = 4;
