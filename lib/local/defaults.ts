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
