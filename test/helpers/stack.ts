import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../lib/local/stack.ts';
import { silentLog } from '../../lib/util/log.ts';

/**
 * The local stack as end-to-end tests run it: free ports, seeded random weights (never a fetch of
 * the real ones), a small fast spec (32x32, avg pooling), no demo, silent. `overrides` wins.
 */
export function startTestStack(
  dataDir: string,
  overrides: Partial<LocalStackOptions> = {},
): Promise<LocalStack> {
  return startLocalStack({
    dataDir,
    apiPort: 0,
    awsPort: 0,
    sfnPort: 0,
    weights: 'random:11',
    // Never try the network in a test, whatever the default becomes.
    fetchWeights: false,
    inputSize: 32,
    pooling: 'avg',
    demo: false,
    log: silentLog,
    print: () => {},
    ...overrides,
  });
}
