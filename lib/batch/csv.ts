/**
 * `results.csv` of a batch: one row per image (key, label, confidence, abstained, one column per
 * class's probability, error), RFC 4180 quoting.
 */
import type { BatchRow } from './layout.ts';

/** Quotes a CSV field when it holds a comma, quote, CR or LF (quotes doubled). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/**
 * The CSV text of rows: header `key,label,confidence,abstained,p:{class}…,error`, one line per row
 * (CRLF line ends). An unusable image has empty scores and its message in `error`.
 */
export function batchCsv(classes: readonly string[], rows: readonly BatchRow[]): string {
  const header = ['key', 'label', 'confidence', 'abstained', ...classes.map((c) => `p:${c}`), 'error'];
  const lines = [header.map(csvField).join(',')];
  for (const r of rows) {
    const probs = new Map((r.scores ?? []).map((s) => [s.label, s.probability]));
    const fields = [
      r.key,
      r.label ?? '',
      r.confidence === undefined ? '' : String(r.confidence),
      r.error === undefined ? String(r.abstained ?? false) : '',
      ...classes.map((c) => {
        const p = probs.get(c);
        return p === undefined ? '' : String(p);
      }),
      r.error ?? '',
    ];
    lines.push(fields.map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
