/**
 * The end of a batch: once every chunk has its part, the results (results.jsonl, results.csv) and
 * summary.json with what the batch cost. The last worker (lib/batch/worker.ts) and the dead-letters
 * function (lib/batch/dead-letters.ts) both finish batches, so this module loads no model and no
 * image decoder: the dead-letters function's zip bundle carries neither.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { emptyUsage, priceUsage, type UsageDocument } from '../cost/usage.ts';
import { batchKeys } from '../storage/keys.ts';
import { putJson, putObject } from '../storage/s3.ts';
import type { Log } from '../util/log.ts';
import { batchCsv } from './csv.ts';
import type { BatchRow, Manifest, Summary } from './layout.ts';
import { BATCH_SETTINGS } from './settings.ts';
import { type ReadPart, readParts } from './start.ts';

/** What finishing a batch needs. */
export interface FinishDeps {
  s3: S3Client;
  bucket: string;
  log: Log;
  now?: () => Date;
  /** Region whose prices the summary's cost uses. @default us-east-1 */
  region?: string;
}

/**
 * What a batch used: the workers' measured run time (one invocation per chunk, x86_64 container
 * at the worker's memory), S3 and SQS requests from the code's request pattern, priced.
 */
export function batchUsage(parts: readonly ReadPart[], region: string): UsageDocument {
  const n = parts.length;
  const usage = emptyUsage();
  usage.lambda.push({
    function: 'batch-predict',
    architecture: 'x86_64',
    memoryMb: BATCH_SETTINGS.memorySize,
    invocations: n,
    durationMs: parts.reduce((s, p) => s + p.ms, 0),
  });
  // PUT class: the manifest, one part per chunk, the three results, one LIST per chunk (+ the POST's).
  usage.s3.put = 1 + n + 3 + n + 1;
  // GET class: each worker's reads, and the finisher's read of every part.
  usage.s3.get = parts.reduce((s, p) => s + p.gets, 0) + n;
  // A send per 10 chunks, a receive and a delete per chunk.
  usage.sqs.requests = Math.ceil(n / 10) + 2 * n;
  usage.apiGateway.requests = 1;
  return {
    usage,
    cost: priceUsage(usage, region),
    notes: [
      'Lambda: measured run time of each chunk (the last one includes writing the results); cold starts not included.',
      'S3 and SQS: counted from the request pattern; status polls (GET …/batches/{id}) and redeliveries not included.',
    ],
  };
}

/**
 * Writes results.jsonl, results.csv and summary.json (last) once every chunk has a part; returns
 * false (and writes nothing) while parts are missing. Safe to call any number of times.
 */
export async function finishBatch(
  deps: FinishDeps,
  manifest: Manifest,
  classes: readonly string[],
): Promise<boolean> {
  const parts = await readParts(deps.s3, deps.bucket, manifest);
  if (parts.size < manifest.chunks.length) return false;
  const rows: BatchRow[] = [];
  for (let n = 0; n < manifest.chunks.length; n++) rows.push(...(parts.get(n)?.rows ?? []));
  const k = batchKeys(manifest.dataset, manifest.id);
  await putObject(deps.s3, deps.bucket, k.jsonl, rows.map((r) => `${JSON.stringify(r)}\n`).join(''), {
    contentType: 'application/x-ndjson',
  });
  await putObject(deps.s3, deps.bucket, k.csv, batchCsv(classes, rows), { contentType: 'text/csv' });
  const labels: Record<string, number> = {};
  let failed = 0;
  for (const r of rows) {
    if (r.error !== undefined) failed++;
    else labels[r.label ?? 'null'] = (labels[r.label ?? 'null'] ?? 0) + 1;
  }
  const finishedAt = (deps.now ?? (() => new Date()))();
  const summary: Summary = {
    id: manifest.id,
    dataset: manifest.dataset,
    prefix: manifest.prefix,
    modelVersion: manifest.modelVersion,
    counts: { total: manifest.total, done: rows.length, failed },
    labels,
    timings: {
      createdAt: manifest.createdAt,
      finishedAt: finishedAt.toISOString(),
      seconds: Math.max(0, (finishedAt.getTime() - Date.parse(manifest.createdAt)) / 1000),
    },
    usage: batchUsage([...parts.values()], deps.region ?? 'us-east-1'),
  };
  await putJson(deps.s3, deps.bucket, k.summary, summary);
  deps.log.info('batch finished', { dataset: manifest.dataset, id: manifest.id, ...summary.counts });
  return true;
}
