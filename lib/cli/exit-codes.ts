/** Exit codes of every `tlearn` command (documented in README). */
export const EXIT = {
  /** Everything asked for was done. */
  OK: 0,
  /** The command failed (an error message says why). */
  FAILURE: 1,
  /** Wrong arguments or flags (usage printed). */
  USAGE: 2,
  /** Done, but some items failed (e.g. images that could not be decoded); the summary lists them. */
  PARTIAL: 3,
  /** A remote resource could not be reached (offline, endpoint down). */
  UNAVAILABLE: 4,
} as const;
