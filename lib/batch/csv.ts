/**
 * `results.csv` of a batch: one row per image (key, label, confidence, abstained, one column per
 * class's probability, error), RFC 4180 quoting, and no cell a spreadsheet would run as a formula.
 */
import type { BatchRow } from './layout.ts';

/**
 * Cells a spreadsheet reads as a formula (OWASP "CSV injection"): a leading `=`, `+`, `-` or `@`,
 * or a tab / carriage return before one. Keys and labels are the user's text, so any may start so.
 */
const FORMULA_START_RE = /^[=+\-@\t\r]/;

/**
 * One CSV field: a text that would start a formula gets a leading `'` (the spreadsheet shows it as
 * text), then the field is quoted when it holds a comma, quote, CR or LF (quotes doubled).
 * Numbers are written by the caller with `String(n)` and never pass through the escape.
 */
export function csvField(value: string): string {
  const text = FORMULA_START_RE.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A numeric field: `-0.5` must stay a number, so it skips the formula escape of {@link csvField}. */
function numberField(value: number | undefined): string {
  return value === undefined ? '' : String(value);
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
      csvField(r.key),
      csvField(r.label ?? ''),
      numberField(r.confidence),
      r.error === undefined ? String(r.abstained ?? false) : '',
      ...classes.map((c) => numberField(probs.get(c))),
      csvField(r.error ?? ''),
    ];
    lines.push(fields.join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
