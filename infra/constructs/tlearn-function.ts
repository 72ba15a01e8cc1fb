import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { BUNDLE_SETTINGS, ESM_REQUIRE_BANNER, ZIP_EXTERNALS } from '../../lib/bundling.ts';
import { METRICS_NAMESPACE } from '../../lib/config.ts';

/**
 * Powertools settings every function gets. The metrics namespace is the one the handlers pass to
 * Powertools (which wins over the environment), imported so the dashboard cannot drift from it.
 */
export const POWERTOOLS_SERVICE_NAME = 'tlearn';
export { METRICS_NAMESPACE };

/**
 * The container image's build context (the repo root) as a Docker ignore allowlist: everything is
 * excluded except what the image build reads, so node_modules, cdk.out, .tlearn, .git, test/,
 * infra/ and any new top-level folder stay out of the staged asset. `.dockerignore` repeats these
 * lines for a hand-run `docker build` (a test keeps the two equal).
 */
export const IMAGE_CONTEXT_IGNORE: readonly string[] = [
  '*',
  '!package.json',
  '!package-lock.json',
  '!tsconfig.json',
  '!bin',
  '!lib',
  '!functions',
  '!console',
];

/** Where functions/Dockerfile puts the built console (index.html) in the image (TLEARN_CONSOLE_DIR of the API). */
export const CONSOLE_IMAGE_DIR = '/var/task/console';

/** Path of the Dockerfile inside the build context. */
export const IMAGE_DOCKERFILE = 'functions/Dockerfile';

/**
 * The image's CMD for a function: the Dockerfile bundles `functions/<name>/handler.ts` with esbuild
 * into `/var/task/functions/<name>/handler.mjs`, and Lambda's Node runtime resolves `.mjs`.
 */
export function imageHandlerCmd(name: string): string[] {
  return [`functions/${name}/handler.handler`];
}

/** Settings shared by both kinds of function. */
export interface TlearnFunctionBaseProps {
  /** Short role name, e.g. `train-head`; goes into the description. */
  readonly name: string;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** Reserved concurrency (0 disables the function). @default - none (unreserved account pool) */
  readonly reservedConcurrentExecutions?: number;
  /** Extra environment variables (names from lib/config.ts `ENV`). @default - Powertools settings only */
  readonly environment?: Record<string, string>;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to the log group when the stack is deleted. @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** Powertools log level. @default 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

/** A function bundled locally with esbuild (never Docker) from a TypeScript handler. */
export interface BundledFunctionProps extends TlearnFunctionBaseProps {
  readonly kind: 'bundled';
  /** Absolute path of the handler's entry file (exports `handler`). */
  readonly entry: string;
  /** Directory holding package.json / package-lock.json. */
  readonly projectRoot: string;
  /** @default Architecture.ARM_64 */
  readonly architecture?: lambda.Architecture;
}

/** A function running in the shared container image (tfjs-node + sharp + VGG16 weights). */
export interface ImageFunctionProps extends TlearnFunctionBaseProps {
  readonly kind: 'image';
  /** The image's build context (the repo root). */
  readonly buildContext: string;
  /** Extra `docker build --build-arg`s (e.g. a libtensorflow mirror). @default - none */
  readonly buildArgs?: Record<string, string>;
}

export type TlearnFunctionProps = BundledFunctionProps | ImageFunctionProps;

/** Packages the light (zip) functions never bundle (lib/bundling.ts says why they differ from the image's). */
export const LIGHT_FUNCTION_EXTERNALS = ZIP_EXTERNALS;
export { ESM_REQUIRE_BANNER };

/**
 * One Lambda function with the project's secure defaults: its own role whose only log permission
 * is writing to its own log group (no AWSLambdaBasicExecutionRole with `logs:*` on `*`), a log group
 * with retention, X-Ray active tracing, Powertools environment, and validated memory / timeout /
 * reserved concurrency. Permissions to data are added by the caller with `grant*`.
 */
export class TlearnFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  /** The function's timeout (queues derive their visibility timeout from it). */
  readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: TlearnFunctionProps) {
    super(scope, id);
    const memorySize = props.memorySize ?? 256;
    const timeout = props.timeout ?? Duration.seconds(30);
    validateFunctionSettings(props.name, memorySize, timeout, props.reservedConcurrentExecutions);
    this.timeout = timeout;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `tlearn ${props.name} function`,
    });
    this.logGroup.grantWrite(this.role);

    const environment: Record<string, string> = {
      POWERTOOLS_SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
      // Stack traces through the bundles' source maps (the image sets it in its Dockerfile).
      ...(props.kind === 'bundled' ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
      ...props.environment,
    };
    const common = {
      description: `tlearn ${props.name}`,
      memorySize,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment,
    };

    if (props.kind === 'bundled') {
      this.function = new NodejsFunction(this, 'Function', {
        ...common,
        entry: props.entry,
        handler: 'handler',
        projectRoot: props.projectRoot,
        depsLockFilePath: `${props.projectRoot}/package-lock.json`,
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: props.architecture ?? lambda.Architecture.ARM_64,
        bundling: {
          // esbuild is a devDependency: bundle on this machine, never in a Docker container.
          forceDockerBundling: false,
          // The settings of lib/bundling.ts, which the container image's bundles use too.
          format: OutputFormat.ESM,
          target: BUNDLE_SETTINGS.target,
          mainFields: [...BUNDLE_SETTINGS.mainFields],
          banner: ESM_REQUIRE_BANNER,
          sourceMap: BUNDLE_SETTINGS.sourcemap,
          sourceMapMode: SourceMapMode.DEFAULT,
          sourcesContent: BUNDLE_SETTINGS.sourcesContent,
          minify: BUNDLE_SETTINGS.minify,
          keepNames: BUNDLE_SETTINGS.keepNames,
          // Everything else is bundled, the AWS SDK included (the version the local stack and the
          // tests run, not whatever the runtime ships). Native / wasm packages belong to the
          // container image; a light function never loads them (the tensor backend is imported
          // lazily and falls back), so they stay out instead of breaking the bundle.
          externalModules: [...LIGHT_FUNCTION_EXTERNALS],
        },
      });
    } else {
      this.function = new lambda.DockerImageFunction(this, 'Function', {
        ...common,
        // tfjs-node's libtensorflow prebuilt exists for x86_64 only.
        architecture: lambda.Architecture.X86_64,
        code: lambda.DockerImageCode.fromImageAsset(props.buildContext, {
          file: IMAGE_DOCKERFILE,
          cmd: imageHandlerCmd(props.name),
          platform: Platform.LINUX_AMD64,
          // Same directory, file, ignore list and build args for every image function: one asset
          // hash, so the context is staged (and the image built and pushed) once; only CMD differs.
          exclude: [...IMAGE_CONTEXT_IGNORE],
          buildArgs: props.buildArgs,
        }),
      });
    }

    NagSuppressions.addResourceSuppressions(
      this.role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'X-Ray active tracing needs xray:PutTraceSegments/PutTelemetryRecords, which support no resource-level permissions.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
    if (props.kind === 'bundled') {
      NagSuppressions.addResourceSuppressions(this.function, [
        {
          id: 'AwsSolutions-L1',
          reason:
            'nodejs22.x on purpose: the container-image functions run the public.ecr.aws/lambda/nodejs:22 base, and all functions share one Node version.',
        },
      ]);
    }
  }
}

/** Throws when memory, timeout or reserved concurrency are outside what Lambda accepts. */
function validateFunctionSettings(
  name: string,
  memorySize: number,
  timeout: Duration,
  reserved: number | undefined,
): void {
  if (
    !Token.isUnresolved(memorySize) &&
    (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10_240)
  ) {
    throw new Error(`${name}: memorySize must be an integer from 128 to 10240 MB (got ${memorySize})`);
  }
  const seconds = timeout.toSeconds();
  if (seconds < 1 || seconds > 900) {
    throw new Error(`${name}: timeout must be from 1 s to 15 min (got ${seconds} s)`);
  }
  if (reserved !== undefined && (!Number.isInteger(reserved) || reserved < 0)) {
    throw new Error(`${name}: reservedConcurrentExecutions must be a non-negative integer (got ${reserved})`);
  }
}
