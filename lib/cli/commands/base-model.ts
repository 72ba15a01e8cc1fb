import type { Command } from '../main.ts';

// Placeholder until this command is built; owned by the issue that builds it.
export const command: Command = {
  summary: 'base-model',
  help: 'tlearn base-model: not available yet',
  async run() {
    console.error('tlearn base-model: not available yet');
    return 1;
  },
};
