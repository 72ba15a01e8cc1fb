/**
 * The Lambda functions of the app, in one list: the CDK stack creates them (infra/stack.ts),
 * `npm run bundle` bundles them (bin/bundle.ts) and the local stack loads their handlers
 * (lib/local/stack.ts). Each is a folder under functions/ with a `handler.ts`.
 */

/** How a function is deployed: a zip asset (CDK `NodejsFunction`) or the container image. */
export const FUNCTION_PACKAGES = ['zip', 'image'] as const;
export type FunctionPackage = (typeof FUNCTION_PACKAGES)[number];

/**
 * Every function, its package and its default memory in MB (the CDK stack's default, which the
 * `functions.<name>.memorySize` prop overrides: infra/stack-props.ts says why each size; `tlearn
 * cost` prices with it: lib/estimate/estimate.ts). The image holds what needs tfjs-node, sharp and
 * the VGG16 weights (functions/Dockerfile builds exactly these; test/infra/container-image.test.ts checks).
 */
export const FUNCTIONS = [
  { name: 'extract-features', package: 'image', memoryMb: 3008 },
  { name: 'api', package: 'image', memoryMb: 3008 },
  { name: 'start-training', package: 'zip', memoryMb: 256 },
  { name: 'check-readiness', package: 'zip', memoryMb: 1024 },
  { name: 'train-head', package: 'zip', memoryMb: 10240 },
  { name: 'promote-model', package: 'zip', memoryMb: 256 },
  { name: 'finish-training', package: 'zip', memoryMb: 256 },
  { name: 'batch-predict', package: 'image', memoryMb: 3008 },
  { name: 'dead-letters', package: 'zip', memoryMb: 256 },
  { name: 'drift-metric', package: 'zip', memoryMb: 512 },
] as const satisfies readonly { name: string; package: FunctionPackage; memoryMb: number }[];

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

/** A function's default memory, MB (Lambda: 128-10240). */
export function defaultMemoryMb(name: FunctionName): number {
  const f = FUNCTIONS.find((x) => x.name === name);
  if (f === undefined) throw new Error(`no function '${name}'`);
  return f.memoryMb;
}
