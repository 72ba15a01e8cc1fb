import { describeError, TlearnError } from '../errors.ts';
import { UsageError } from './args.ts';
import { EXIT } from './exit-codes.ts';

/** A `tlearn` sub-command: `run` returns the exit code; `help` is printed for `--help`. */
export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<number>;
}

/** Commands are loaded lazily so `tlearn --help` does not load tfjs. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  'base-model': async () => (await import('./commands/base-model.ts')).command,
  extract: async () => (await import('./commands/extract.ts')).command,
  fit: async () => (await import('./commands/fit.ts')).command,
  predict: async () => (await import('./commands/predict.ts')).command,
  local: async () => (await import('./commands/local.ts')).command,
  upload: async () => (await import('./commands/upload.ts')).command,
  status: async () => (await import('./commands/status.ts')).command,
  train: async () => (await import('./commands/train.ts')).command,
  model: async () => (await import('./commands/model.ts')).command,
  keys: async () => (await import('./commands/keys.ts')).command,
  export: async () => (await import('./commands/export.ts')).command,
  cost: async () => (await import('./commands/cost.ts')).command,
  quality: async () => (await import('./commands/quality.ts')).command,
  reindex: async () => (await import('./commands/reindex.ts')).command,
  captures: async () => (await import('./commands/captures.ts')).command,
  suggest: async () => (await import('./commands/suggest.ts')).command,
};

const SUMMARIES: Record<string, string> = {
  'base-model': 'import (Keras .h5) or fetch the VGG16 weights as a tfjs layers model',
  extract: 'turn images into VGG16 feature vectors (.npy), offline',
  fit: 'fit the logistic-regression head on a features folder, offline',
  predict: 'predict images: offline with --model DIR, or against a stack with a dataset name',
  local: 'run the whole pipeline on this machine (= npm start)',
  upload: 'upload a folder of labelled images to a dataset',
  status: "show a dataset's images, features and model",
  train: 'start a training of a dataset',
  model: "show a dataset's current model, or --rollback to the previous one",
  keys: 'create, list or revoke scoped API keys (predict or admin)',
  export: 'write a model as one ONNX file (from a stack, or offline from a tlearn fit folder)',
  cost: "estimate a dataset's extraction, training and serving cost, and the stack's idle cost",
  quality: "show a dataset's duplicates, leaks and likely label errors",
  reindex: 'send the images of a dataset without a current feature to the extractor (backfill)',
  captures: 'list (or export) the production predictions captured for review',
  suggest: 'which unlabelled images to label next (uncertain and varied)',
};

function usage(): string {
  const lines = Object.entries(SUMMARIES).map(([name, s]) => `  ${name.padEnd(12)}${s}`);
  return `tlearn: transfer-learning image classifier (VGG16 features + logistic regression)

usage: tlearn <command> [options]    (tlearn <command> --help for details)

commands:
${lines.join('\n')}

exit codes: 0 ok, 1 failure, 2 usage error, 3 partly done (see summary), 4 unreachable`;
}

/** Entry point of the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`tlearn: unknown command '${name}'\n\n${usage()}`);
    return EXIT.USAGE;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return EXIT.OK;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`tlearn ${name}: ${err.message}\n\n${command.help}`);
      return EXIT.USAGE;
    }
    console.error(`tlearn ${name}: ${err instanceof TlearnError ? err.message : describeError(err)}`);
    if (process.env.TLEARN_DEBUG && err instanceof Error) console.error(err.stack);
    return EXIT.FAILURE;
  }
}
