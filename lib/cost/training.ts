import { DEFAULT_PRICE_REGION, PRICES } from './prices.ts';
import type { S3RequestCounts, Usage, UsageDocument } from './usage.ts';
import {
  emptyUsage,
  priceUsage,
  TRAINING_TRANSITIONS_HAPPY_PATH,
  TRANSITIONS_PER_READINESS_ROUND,
} from './usage.ts';

/** Where the trainer runs, for its own Lambda line (from the Lambda context). */
export interface TrainerRuntime {
  region: string;
  memoryMb?: number;
  architecture?: 'arm64' | 'x86_64';
}

/**
 * The usage document of one training (report.json `usage`): train-head's own run time × memory
 * and one invocation (measured), the S3 requests it sent (counted, plus the `pendingWrites`
 * documents it is about to write), and the state machine's transitions on the path without
 * pending-feature rounds (an estimate: the trainer cannot see the execution).
 *
 * @example trainingUsageDocument({ region: 'us-east-1', memoryMb: 3008, architecture: 'arm64' }, 5400, { put: 0, get: 120 }, 3)
 */
export function trainingUsageDocument(
  runtime: TrainerRuntime,
  durationMs: number,
  s3: S3RequestCounts,
  pendingWrites: number,
): UsageDocument {
  const usage: Usage = emptyUsage();
  if (runtime.memoryMb !== undefined && runtime.memoryMb > 0) {
    usage.lambda.push({
      function: 'train-head',
      architecture: runtime.architecture ?? 'arm64',
      memoryMb: Math.round(runtime.memoryMb),
      invocations: 1,
      durationMs: Math.round(durationMs),
    });
  }
  usage.stepFunctions.transitions = TRAINING_TRANSITIONS_HAPPY_PATH;
  usage.s3 = { put: s3.put + pendingWrites, get: s3.get };
  const known = PRICES[runtime.region] !== undefined;
  const region = known ? runtime.region : DEFAULT_PRICE_REGION;
  const notes = [
    'train-head: its run time, memory and S3 requests are measured in this run (the report and model writes included).',
    `Step Functions: ${TRAINING_TRANSITIONS_HAPPY_PATH} transitions when every feature is ready at the first check; each readiness round adds ${TRANSITIONS_PER_READINESS_ROUND}.`,
    'Not included: check-readiness and promote-model (256 MB, well under a second each), start-training, and the extraction of the features.',
    `List prices of ${region} as of the date shown, without free tier.`,
  ];
  if (runtime.memoryMb === undefined)
    notes.push('No Lambda line: the trainer ran outside Lambda (no memory size known).');
  if (!known) notes.push(`No prices for ${runtime.region}: ${region}'s are shown as an approximation.`);
  return { usage, cost: priceUsage(usage, region), notes };
}
