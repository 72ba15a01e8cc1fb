/**
 * The API's throttles (docs/ARCHITECTURE.md "Tenancy"), in one module with no dependencies: the
 * CDK stack (infra/constructs/prediction-api.ts: usage plan and stage) reads them, so the numbers
 * and the arithmetic between them live in one place.
 *
 * API Gateway applies the tighter of two limits to a request: its key's usage plan and the stage
 * (all keys together). When the stage limit equals one key's, one key at its quota takes the
 * whole stage and every other tenant gets 429s; so the stage is sized for `TENANTS_AT_FULL_RATE`
 * keys at their plan's rate at once, and a single key can never reach it.
 */

/** One key (the usage plan): steady requests per second, burst, requests per day. */
export const KEY_THROTTLE = { rateLimit: 10, burstLimit: 20, quotaPerDay: 10_000 } as const;

/** How many keys may run at their full plan rate at the same time before the stage limit bites. */
export const TENANTS_AT_FULL_RATE = 10;

/**
 * The stage's limit over all keys: `TENANTS_AT_FULL_RATE` × one key's (100 rps, burst 200).
 * Bounds: API Gateway's account-wide default is 10,000 rps (burst 5,000) per region, and at
 * ~0.1 s per warm prediction (docs/BENCHMARKS.md) 100 rps keeps ~10 API functions busy, far
 * below Lambda's default 1,000 concurrent executions.
 */
export function stageThrottle(key: { rateLimit: number; burstLimit: number } = KEY_THROTTLE): {
  rateLimit: number;
  burstLimit: number;
} {
  return {
    rateLimit: key.rateLimit * TENANTS_AT_FULL_RATE,
    burstLimit: key.burstLimit * TENANTS_AT_FULL_RATE,
  };
}

/**
 * Why a stage limit cannot serve several tenants, or undefined when it can: the stage must allow
 * at least two keys at their full rate and burst, or one busy key starves the others.
 */
export function stageThrottleProblem(
  stage: { rateLimit: number; burstLimit: number },
  key: { rateLimit: number; burstLimit: number },
): string | undefined {
  if (!(stage.rateLimit >= 2 * key.rateLimit && Number.isFinite(stage.rateLimit)))
    return `the stage rate limit (${stage.rateLimit}) must be at least twice one key's (${key.rateLimit}), or one key at its limit starves every other`;
  if (!(stage.burstLimit >= 2 * key.burstLimit))
    return `the stage burst limit (${stage.burstLimit}) must be at least twice one key's (${key.burstLimit})`;
  return undefined;
}
