/**
 * The Lambda functions of the app, in one list: the CDK stack creates them (infra/stack.ts),
 * `npm run bundle` bundles them (bin/bundle.ts) and the local stack loads their handlers
 * (lib/local/stack.ts). Each is a folder under functions/ with a `handler.ts`.
 */

/** How a function is deployed: a zip asset (CDK `NodejsFunction`) or the container image. */
export const FUNCTION_PACKAGES = ['zip', 'image'] as const;
export type FunctionPackage = (typeof FUNCTION_PACKAGES)[number];

/**
 * Every function and its package. The image holds what needs tfjs-node, sharp and the VGG16
 * weights (functions/Dockerfile builds exactly these; test/infra/container-image.test.ts checks).
 */
export const FUNCTIONS = [
  { name: 'extract-features', package: 'image' },
  { name: 'api', package: 'image' },
  { name: 'start-training', package: 'zip' },
  { name: 'check-readiness', package: 'zip' },
  { name: 'train-head', package: 'zip' },
  { name: 'promote-model', package: 'zip' },
  { name: 'finish-training', package: 'zip' },
  { name: 'batch-predict', package: 'image' },
  { name: 'dead-letters', package: 'zip' },
  { name: 'drift-metric', package: 'zip' },
] as const satisfies readonly { name: string; package: FunctionPackage }[];

/** A function's name: its folder under functions/. */
export type FunctionName = (typeof FUNCTIONS)[number]['name'];

/** The functions' names, in the order of {@link FUNCTIONS}. */
export const FUNCTION_NAMES: readonly FunctionName[] = FUNCTIONS.map((f) => f.name);

/** Functions that run in the container image (tfjs-node, sharp, VGG16 weights). */
export const IMAGE_FUNCTIONS: readonly FunctionName[] = FUNCTIONS.filter((f) => f.package === 'image').map(
  (f) => f.name,
);

/** Whether `name` is one of the app's functions. */
export function isFunctionName(name: string): name is FunctionName {
  return (FUNCTION_NAMES as readonly string[]).includes(name);
}

/** How a function is deployed. */
export function packageOf(name: FunctionName): FunctionPackage {
  return IMAGE_FUNCTIONS.includes(name) ? 'image' : 'zip';
}

/** Entry file of a function's handler, relative to the repository root. */
export function handlerEntry(name: string): string {
  return `functions/${name}/handler.ts`;
}
