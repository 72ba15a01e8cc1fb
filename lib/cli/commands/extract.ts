import type { Command } from '../main.ts';

// Placeholder until this command is built; owned by the issue that builds it.
export const command: Command = {
  summary: 'extract',
  help: 'tlearn extract: not available yet',
  async run() {
    console.error('tlearn extract: not available yet');
    return 1;
  },
};
