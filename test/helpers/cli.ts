import { vi } from 'vitest';
import type { Command } from '../../lib/cli/main.ts';

/** A stream stand-in for progress output (non-TTY, discards everything it is given). */
export const nullStream = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

/** Runs a command in-process, capturing what it prints with console.log / console.error. */
export async function runCommand(
  command: Command,
  argv: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    out.push(args.map(String).join(' '));
  });
  const error = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    err.push(args.map(String).join(' '));
  });
  try {
    const code = await command.run(argv);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}
