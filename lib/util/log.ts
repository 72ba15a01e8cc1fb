/**
 * The minimal logger `lib/` code takes as an argument. Powertools' Logger satisfies it in
 * Lambda; the CLI and tests pass `consoleLog` or `silentLog`.
 */
export interface Log {
  debug(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

/** Discards everything (tests). */
export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

/** Writes `level message {extra}` lines to stderr (CLI). Debug only when TLEARN_DEBUG is set. */
export const consoleLog: Log = {
  debug(message, extra) {
    if (process.env.TLEARN_DEBUG) console.error(`debug ${message}`, extra ?? '');
  },
  info(message, extra) {
    console.error(`${message}`, extra ? JSON.stringify(extra) : '');
  },
  warn(message, extra) {
    console.error(`warning: ${message}`, extra ? JSON.stringify(extra) : '');
  },
  error(message, extra) {
    console.error(`error: ${message}`, extra ? JSON.stringify(extra) : '');
  },
};
