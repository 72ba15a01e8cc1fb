import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the NodejsFunction project root and the container image's build context. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The `context` block of the repo's cdk.json (feature flags and `tlearn:*` defaults). Tests and
 * `synthesizeTrainingDefinition` build their App with it, so they synthesize what `cdk synth` does.
 */
export function readCdkJsonContext(): Record<string, unknown> {
  const raw: unknown = JSON.parse(readFileSync(resolve(REPO_ROOT, 'cdk.json'), 'utf8'));
  if (typeof raw === 'object' && raw !== null && 'context' in raw) {
    const context = (raw as { context: unknown }).context;
    if (typeof context === 'object' && context !== null) return { ...(context as Record<string, unknown>) };
  }
  return {};
}
