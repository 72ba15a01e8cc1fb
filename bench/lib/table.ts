/**
 * The printed table of a run (plain text for the terminal, Markdown for docs/BENCHMARKS.md).
 */
import type { MachineHeader } from './machine.ts';
import type { TargetResult } from './reference.ts';
import type { Figure } from './types.ts';

/** A number with precision that suits its size: 24,000 · 830 · 96.4 · 7.12. */
export function formatNumber(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

const COLUMNS = [
  'benchmark',
  'backend',
  'median',
  'min',
  'max',
  'unit',
  'runs',
  'peak RSS MB',
  'notes',
] as const;
const RIGHT = new Set<string>(['median', 'min', 'max', 'runs', 'peak RSS MB']);

function row(f: Figure): string[] {
  const s = f.summary;
  const notes =
    f.status === 'ok' ? (f.note ?? '') : `${f.status.toUpperCase()}: ${(f.error ?? '').split('\n')[0]}`;
  return [
    f.name,
    f.backend ?? '',
    formatNumber(s?.median),
    formatNumber(s?.min),
    formatNumber(s?.max),
    f.unit,
    s ? String(s.n) : '',
    f.peakRssMB === undefined ? '' : String(f.peakRssMB),
    notes,
  ];
}

/** Fixed-width text table of the figures. */
export function textTable(figures: readonly Figure[]): string {
  const rows = [COLUMNS.map(String), ...figures.map(row)];
  const widths = COLUMNS.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((cell, c) => {
        const w = widths[c] ?? 0;
        const name = COLUMNS[c] ?? '';
        // The last column is not padded (notes can be long).
        if (c === r.length - 1) return cell;
        return RIGHT.has(name) ? cell.padStart(w) : cell.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  const [head, ...body] = rows;
  return [line(head ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

const mdCell = (s: string): string => s.replace(/\|/g, '\\|');

/** Markdown table of the figures (what docs/BENCHMARKS.md shows). */
export function markdownTable(figures: readonly Figure[]): string {
  const header = `| ${COLUMNS.join(' | ')} |`;
  const align = `|${COLUMNS.map((c) => (RIGHT.has(c) ? '---:' : '---')).join('|')}|`;
  return [header, align, ...figures.map((f) => `| ${row(f).map(mdCell).join(' | ')} |`)].join('\n');
}

/** The run's header in a few lines. */
export function headerLines(h: MachineHeader, mode: string): string[] {
  return [
    `tlearn benchmarks (${mode}) · ${h.date}`,
    `commit ${h.gitCommit}${h.gitDirty ? ' (+ uncommitted changes)' : ''} · Node ${h.node} · ${h.platform}/${h.arch}`,
    `${h.cores} cores · ${h.cpuModel} [${h.cpuFlags.join(' ')}] · ${h.memoryMB} MB RAM`,
    `load average at start ${h.loadAverageStart.join(' / ')}${h.loadAverageEnd ? `, at end ${h.loadAverageEnd.join(' / ')}` : ''}${
      (h.loadAverageStart[0] ?? 0) > h.cores ? ' (busy machine: expect noisy numbers)' : ''
    }`,
    `backends: ${h.backends?.join(', ') || '–'}`,
  ];
}

/** Targets as lines: `[met] description: actual (goal)`. */
export function targetLines(targets: readonly TargetResult[]): string[] {
  return targets.map((t) => {
    const mark = t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS';
    const note = t.note ? `\n      note: ${t.note}` : '';
    return `${mark}  ${t.description}\n      ${t.actual}${t.goal ? `  (goal ${t.goal})` : ''}${note}`;
  });
}

/** Targets as a Markdown table. */
export function markdownTargets(targets: readonly TargetResult[]): string {
  return [
    '| target | goal | this run | met |',
    '|---|---|---|---|',
    ...targets.map(
      (t) =>
        `| ${mdCell(t.description)} | ${mdCell(t.goal)} | ${mdCell(t.actual + (t.note ? ` (${t.note})` : ''))} | ${t.met === null ? 'not measured' : t.met ? 'met' : 'not met'} |`,
    ),
  ].join('\n');
}
