/**
 * quality.json for people: the text `tlearn quality` prints and the section of report.html.
 */
import type { QualityDocument } from '../quality/document.ts';
import { escapeHtml, formatPercent } from '../util/format.ts';

/** One-line counts: `2 exact + 3 near duplicate groups, 1 conflict, 0 leaks, 5 likely label errors`. */
export function summarizeQuality(q: QualityDocument): string {
  const exact = q.duplicates.filter((d) => d.kind === 'exact').length;
  const near = q.duplicates.filter((d) => d.kind === 'near').length;
  const more = q.totals.duplicates > q.duplicates.length ? ` (${q.totals.duplicates} in all)` : '';
  return `${exact} exact + ${near} near duplicate group(s)${more}, ${q.totals.conflicts} conflict(s) across labels, ${q.totals.leaks} leak(s) across the split, ${q.totals.labelErrors} likely label error(s)`;
}

/** The finding tables of a document (title, header, rows), shared by the text and HTML views. */
export function qualityTables(
  q: QualityDocument,
): { id: string; title: string; header: string[]; rows: string[][] }[] {
  return [
    {
      id: 'duplicates',
      title: 'duplicates',
      header: ['kind', 'similarity', 'images (label)'],
      rows: q.duplicates.map((d) => [
        d.kind,
        d.similarity.toFixed(4),
        d.keys.map((k, i) => `${k} (${d.labels[i]})`).join(', '),
      ]),
    },
    {
      id: 'conflicts',
      title: 'conflicts (one image, several labels)',
      header: ['labels', 'images'],
      rows: q.conflicts.map((c) => [[...new Set(c.labels)].join(' / '), c.keys.join(', ')]),
    },
    {
      id: 'leaks',
      title: 'leaks across the split (held-out image with a copy in train)',
      header: ['held out', 'train', 'similarity'],
      rows: q.leaks.map((l) => [l.heldOutKey, l.trainKey, l.similarity.toFixed(4)]),
    },
    {
      id: 'label-errors',
      title: 'likely label errors (most suspicious first)',
      header: ['image', 'label', 'p(label)', 'suggested', 'p(suggested)'],
      rows: q.labelErrors.map((e) => [
        e.key,
        e.label,
        e.probabilityOfLabel.toFixed(3),
        e.suggested,
        e.probabilityOfSuggested.toFixed(3),
      ]),
    },
  ];
}

/** The tables of a quality document as text lines (`tlearn quality`, `tlearn fit`). */
export function formatQuality(
  q: QualityDocument,
  table: (header: string[], rows: string[][]) => string[],
): string[] {
  const lines: string[] = [];
  lines.push(
    `data quality${q.dataset ? ` of ${q.dataset}` : ''}${q.version ? ` ${q.version}` : ''}: ${q.images} images; ${summarizeQuality(q)}`,
  );
  for (const t of qualityTables(q))
    if (t.rows.length > 0) lines.push('', t.title, ...table(t.header, t.rows));
  lines.push('');
  lines.push(
    `accuracy ${formatPercent(q.accuracy.plain)} as reported${q.accuracy.heldOutRemoved > 0 ? `, ${formatPercent(q.accuracy.withoutLeaks)} without the ${q.accuracy.heldOutRemoved} leaked held-out image(s)` : ''}; split ${q.split.groupAware ? `kept ${q.split.groups} duplicate group(s) on one side` : 'not group-aware'}`,
  );
  lines.push(
    `labels ${Object.entries(q.imbalance.counts)
      .map(([l, n]) => `${l} ${n}`)
      .join(', ')} (largest/smallest ${q.imbalance.ratio})`,
  );
  for (const note of q.notes) lines.push(`note: ${note}`);
  return lines;
}

/** The "Data quality" section of report.html (escaped; no scripts). */
export function renderQualityHtml(q: QualityDocument): string {
  const e = escapeHtml;
  const tableOf = (header: string[], rows: string[][]) =>
    `<table><thead><tr>${header.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>
${rows.map((r) => `<tr>${r.map((c) => `<td>${e(c)}</td>`).join('')}</tr>`).join('\n')}
</tbody></table>`;
  const parts: string[] = [`<h2>Data quality</h2>\n<p>${e(summarizeQuality(q))}.</p>`];
  parts.push(`<table><tbody>
<tr><th>accuracy as reported</th><td>${formatPercent(q.accuracy.plain)}</td></tr>
<tr><th>without leaked held-out images</th><td>${formatPercent(q.accuracy.withoutLeaks)} (${q.accuracy.heldOutRemoved} removed)</td></tr>
<tr><th>split</th><td>${q.split.groupAware ? `duplicate groups kept on one side (${q.split.groups} groups, ${q.split.groupedImages} images)` : 'not group-aware'}</td></tr>
<tr><th>label imbalance (largest / smallest)</th><td>${q.imbalance.ratio}</td></tr>
</tbody></table>`);
  for (const t of qualityTables(q))
    if (t.rows.length > 0)
      parts.push(`<h3 id="quality-${t.id}">${e(t.title)}</h3>\n${tableOf(t.header, t.rows)}`);
  if (q.notes.length > 0) parts.push(`<ul>\n${q.notes.map((n) => `<li>${e(n)}</li>`).join('\n')}\n</ul>`);
  return parts.join('\n');
}
