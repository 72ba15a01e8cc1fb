/**
 * report.html: the page the training writes beside report.json (lib/pipeline/train-job.ts) and
 * `tlearn fit` writes to its output folder. Self-contained: no scripts, no external resources.
 */
import type { QualityDocument } from '../quality/document.ts';
import { type ReportDocument, specIsRandom } from '../training/model-document.ts';
import { escapeHtml, formatFixed, formatPercent } from '../util/format.ts';
import { renderQualityHtml } from './quality.ts';

/**
 * A small self-contained HTML page of a report (no scripts, no external resources): accuracy,
 * log loss, confusion matrix, per-class table, counts and solver facts. Labels are escaped.
 */
export function renderReportHtml(report: ReportDocument, quality?: QualityDocument): string {
  const e = escapeHtml;
  const num = (x: number | null, digits = 2) => (x === null ? '—' : formatFixed(x, digits));
  const title = `tlearn report${report.dataset ? ` — ${report.dataset}` : ''}${report.version ? ` ${report.version}` : ''}`;
  const parts: string[] = [];
  parts.push(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
td.diag{background:#dff0d8;font-weight:600}
.note{background:#fff3cd;padding:.5rem 1rem;border-radius:4px}
code{font-size:12px}
</style></head><body>
<h1>${e(title)}</h1>
<p>Spec <code>${e(report.spec)}</code> · trained ${e(report.trainedAt)}</p>`);
  if (specIsRandom(report.spec))
    parts.push(
      '<p class="note"><strong>Demo model:</strong> these features come from seeded random VGG16 weights, not ImageNet ones.</p>',
    );
  if (report.note) parts.push(`<p class="note">${e(report.note)}</p>`);
  parts.push(`<h2>Summary</h2>
<table><tbody>
<tr><th>accuracy</th><td>${formatPercent(report.accuracy)}</td></tr>
<tr><th>log loss</th><td>${num(report.logLoss, 4)}</td></tr>
<tr><th>samples (train / test)</th><td>${report.counts.total} (${report.counts.train} / ${report.counts.test})</td></tr>
<tr><th>split</th><td>stratified, test size ${report.split.testSize}, seed ${report.split.seed}</td></tr>
<tr><th>solver</th><td>L-BFGS, ${report.solver.nIter} iterations, ${report.solver.converged ? 'converged' : '<strong>not converged</strong>'}</td></tr>
</tbody></table>`);
  if (report.confusionMatrix) {
    const head = report.classes.map((c) => `<th>${e(c)}</th>`).join('');
    const rows = report.confusionMatrix
      .map(
        (row, t) =>
          `<tr><th>${e(report.classes[t] ?? String(t))}</th>${row
            .map((v, p) => `<td${p === t ? ' class="diag"' : ''}>${v}</td>`)
            .join('')}</tr>`,
      )
      .join('\n');
    parts.push(`<h2>Confusion matrix</h2>
<p>Rows: true label · columns: predicted label</p>
<table><thead><tr><th>true \\ predicted</th>${head}</tr></thead><tbody>
${rows}
</tbody></table>`);
  }
  if (report.perClass.length > 0) {
    const row = (name: string, s: { precision: number; recall: number; f1: number; support: number }) =>
      `<tr><td>${e(name)}</td><td>${num(s.precision)}</td><td>${num(s.recall)}</td><td>${num(s.f1)}</td><td>${s.support}</td></tr>`;
    const body = report.perClass.map((s) => row(s.label, s));
    if (report.macroAvg) body.push(row('macro avg', report.macroAvg));
    if (report.weightedAvg) body.push(row('weighted avg', report.weightedAvg));
    parts.push(`<h2>Per class</h2>
<table><thead><tr><th>label</th><th>precision</th><th>recall</th><th>f1-score</th><th>support</th></tr></thead><tbody>
${body.join('\n')}
</tbody></table>`);
  }
  const counts = report.counts.perClass
    .map((c) => `<tr><td>${e(c.label)}</td><td>${c.total}</td><td>${c.train}</td><td>${c.test}</td></tr>`)
    .join('\n');
  parts.push(`<h2>Samples per class</h2>
<table><thead><tr><th>label</th><th>total</th><th>train</th><th>test</th></tr></thead><tbody>
${counts}
</tbody></table>`);
  if (quality) parts.push(renderQualityHtml(quality));
  parts.push(`</body></html>
`);
  return parts.join('\n');
}
