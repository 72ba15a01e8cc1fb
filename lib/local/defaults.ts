/**
 * Where `npm start` (the local stack) listens. The CLI's target resolution (lib/cli/target.ts)
 * re-exports these, so the CLI's defaults and the servers cannot drift.
 */
export const LOCAL_DEFAULTS = {
  /** The HTTP API. */
  apiUrl: 'http://127.0.0.1:3000',
  apiPort: 3000,
  /** The S3 + SQS emulator (the port LocalStack users know). */
  s3Endpoint: 'http://127.0.0.1:4566',
  s3Port: 4566,
  bucket: 'tlearn-local',
  region: 'us-east-1',
} as const;

/**
 * Environment the local stack's process starts with (`tlearn local` re-executes itself with it,
 * bin/tlearn.js; the benchmark's stack child too, bench/local-stack.ts). glibc's malloc keeps an
 * arena per thread that ever allocated (onnxruntime's and libvips' worker threads), each holding
 * memory it freed; two arenas keep the resident set ~55 MB lower (docs/BENCHMARKS.md "The local
 * stack"). glibc reads it once, when the process starts, so it cannot be set from inside.
 */
export const LOCAL_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
