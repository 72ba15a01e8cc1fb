/** The text the local stack prints: where everything listens, demo progress, paths as typed. */
import { relative } from 'node:path';
import { ENV } from '../config.ts';
import type { DemoProgress } from './demo.ts';
import type { ResolvedWeights } from './weights.ts';

/** A path as the user would type it: relative inside the working directory, absolute outside. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
}

/** The "where everything listens" block. */
export function describeStack(s: {
  apiUrl: string;
  awsEndpoint: string;
  sfnEndpoint: string;
  bucket: string;
  stateMachineArn: string;
  dataDir: string;
  restored: number;
  weights: ResolvedWeights;
  apiKey?: string;
}): string {
  const dir = displayPath(s.dataDir);
  return [
    'tlearn local stack is up (loopback only)',
    `  Console         ${s.apiUrl}/   (the web console: upload, training, report, try it)`,
    `  API             ${s.apiUrl}   GET /health, GET /datasets, POST /datasets/{d}/predictions …${s.apiKey ? ' (x-api-key required)' : ''}`,
    `  S3 + SQS        ${s.awsEndpoint}   bucket ${s.bucket} (${ENV.ENDPOINT})`,
    `  Step Functions  ${s.sfnEndpoint}   ${s.stateMachineArn} (${ENV.SFN_ENDPOINT})`,
    `  data            ${dir}/ (${s.restored} objects restored)`,
    `  weights         ${s.weights.description}`,
    'add a dataset:    npx tlearn upload ./images --dataset pets   (folders per label, or cat.1.jpg names)',
    `stop with Ctrl-C: work in flight finishes, everything stays under ${dir}/`,
  ].join('\n');
}

/** One line of demo progress, for the log. */
export function describeProgress(p: DemoProgress): string {
  switch (p.phase) {
    case 'uploading':
      return `uploaded ${p.done}/${p.total} images`;
    case 'features':
      return `features ready ${p.done}/${p.total}${p.failed ? ` (${p.failed} failed)` : ''}`;
    case 'training':
      return 'training';
    case 'promoted':
      return `model ${p.version} promoted`;
  }
}

/** Splits text into lines of at most `width` characters at spaces (long words are cut). */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    for (let w = word; w.length > 0; w = w.slice(width)) {
      const piece = w.slice(0, width);
      if (line.length > 0 && line.length + 1 + piece.length > width) {
        lines.push(line);
        line = piece;
      } else {
        line = line.length > 0 ? `${line} ${piece}` : piece;
      }
    }
  }
  if (line.length > 0) lines.push(line);
  return lines;
}
