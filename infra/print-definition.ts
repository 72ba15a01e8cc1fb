/**
 * Prints the training state machine the CDK app synthesizes (`synthesizeTrainingDefinition` of
 * infra/definition.ts) as JSON on stdout, for the local stack (lib/local/stack.ts), which runs this
 * in a child process so that aws-cdk-lib (~80 MB of heap and code) never loads into the stack's own
 * process (docs/ARCHITECTURE.md, "The local stack").
 *
 *   node bin/run-ts.js infra/print-definition.ts '{"settleSeconds":6,"pollSeconds":3}'
 *
 * Exit codes: 0 printed, 1 synthesis failed (the reason on stderr), 2 the options are not JSON.
 */
import { synthesizeTrainingDefinition, type TrainingDefinitionOptions } from './definition.ts';

let opts: TrainingDefinitionOptions;
try {
  opts = JSON.parse(process.argv[2] ?? '{}') as TrainingDefinitionOptions;
} catch {
  process.stderr.write('usage: node bin/run-ts.js infra/print-definition.ts \'{"settleSeconds":6}\'\n');
  process.exit(2);
}
try {
  process.stdout.write(`${JSON.stringify(await synthesizeTrainingDefinition(opts))}\n`);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
