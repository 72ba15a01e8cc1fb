/**
 * Monitoring on the Training tab: per model version, predictions per day (bars) with the drift
 * score (PSI of the predicted labels against the held-out set, a line with the alert threshold),
 * the predicted-label and confidence histograms. Inline SVG, numbers also in words and titles.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';
import { Bar, ErrorLine, pct } from './format.tsx';
import type { MonitoringResponse } from './types.ts';

const W = 560;
const H = 150;
const LEFT = 34;
const BOTTOM = 18;

type Version = MonitoringResponse['versions'][number];

function DailyChart({ days, v }: { days: string[]; v: Version }) {
  const byDay = new Map(v.days.map((d) => [d.day, d]));
  const max = Math.max(1, ...v.days.map((d) => d.predictions));
  const ALERT_PSI = v.drift.threshold;
  // PSI runs from 0 to large values for a class that vanished: the scale stops at 1 (points above
  // sit on the top edge; their value is in the bar's title).
  const psiMax = Math.min(1, Math.max(ALERT_PSI * 2, ...v.days.map((d) => (d.labelPsi ?? 0) * 1.1)));
  const plotW = W - LEFT - 58;
  const plotH = H - BOTTOM - 8;
  const bw = plotW / Math.max(1, days.length);
  const y = (n: number) => 8 + plotH - (n / max) * plotH;
  const yPsi = (p: number) => 8 + plotH - (Math.min(p, psiMax) / psiMax) * plotH;
  const line = days
    .map((d, i) => {
      const psi = byDay.get(d)?.labelPsi;
      return psi == null ? '' : `${LEFT + (i + 0.5) * bw},${yPsi(psi)}`;
    })
    .filter(Boolean)
    .join(' ');
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img">
      <title>{`Predictions per day and drift (PSI) of model ${v.version}, ${days[0]} to ${days[days.length - 1]}`}</title>
      <line x1={LEFT} x2={LEFT + plotW} y1={y(0)} y2={y(0)} class="axis" />
      <text x={LEFT - 4} y={y(max) + 4} class="tick end">
        {max}
      </text>
      <text x={LEFT - 4} y={y(0)} class="tick end">
        0
      </text>
      {days.map((d, i) => {
        const n = byDay.get(d)?.predictions ?? 0;
        const psi = byDay.get(d)?.labelPsi;
        return n > 0 ? (
          <rect
            key={d}
            x={LEFT + i * bw + 1}
            y={y(n)}
            width={Math.max(1, bw - 2)}
            height={y(0) - y(n)}
            class="bar-day"
          >
            <title>{`${d}: ${n} prediction(s)${psi == null ? '' : `, PSI ${psi.toFixed(3)}`}`}</title>
          </rect>
        ) : null;
      })}
      <line x1={LEFT} x2={LEFT + plotW} y1={yPsi(ALERT_PSI)} y2={yPsi(ALERT_PSI)} class="alert-line" />
      <text x={LEFT + plotW + 2} y={yPsi(ALERT_PSI) + 4} class="tick">
        PSI {ALERT_PSI}
      </text>
      {line ? <polyline points={line} class="psi-line" /> : null}
      {line
        ? days.map((d, i) => {
            const psi = byDay.get(d)?.labelPsi;
            return psi == null ? null : (
              <circle key={d} cx={LEFT + (i + 0.5) * bw} cy={yPsi(psi)} r={2.5} class="psi-dot" />
            );
          })
        : null}
      <text x={LEFT} y={H - 4} class="tick">
        {days[0]}
      </text>
      <text x={LEFT + plotW} y={H - 4} class="tick end">
        {days[days.length - 1]}
      </text>
    </svg>
  );
}

function ConfidenceChart({ bins }: { bins: readonly number[] }) {
  const max = Math.max(1, ...bins);
  const w = 24;
  const h = 70;
  return (
    <svg
      class="chart"
      viewBox={`0 0 ${bins.length * w} ${h + 16}`}
      width={bins.length * w}
      height={h + 16}
      role="img"
    >
      <title>{`Top-probability histogram: ${bins.map((n, i) => `${i / 10}-${(i + 1) / 10}: ${n}`).join(', ')}`}</title>
      {bins.map((n, i) => (
        <rect
          key={i}
          x={i * w + 1}
          y={h - (n / max) * h}
          width={w - 2}
          height={(n / max) * h}
          class="bar-day"
        >
          <title>{`${(i / 10).toFixed(1)}-${((i + 1) / 10).toFixed(1)}: ${n}`}</title>
        </rect>
      ))}
      <text x={0} y={h + 13} class="tick">
        0
      </text>
      <text x={(bins.length * w) / 2} y={h + 13} class="tick mid">
        0.5
      </text>
      <text x={bins.length * w} y={h + 13} class="tick end">
        1
      </text>
    </svg>
  );
}

function VersionMonitoring({ days, v }: { days: string[]; v: Version }) {
  const psi = v.drift.labelPsi;
  const labels = Object.entries(v.labels).sort((a, b) => b[1] - a[1]);
  return (
    <section class="monitor" aria-label={`monitoring of ${v.version}`}>
      <h3>
        <code>{v.version}</code>: {v.predictions} prediction(s), {pct(v.abstainRate)} abstained, mean
        confidence {pct(v.meanConfidence)}
        {v.drift.meanConfidenceShift === null
          ? ''
          : ` (${v.drift.meanConfidenceShift >= 0 ? '+' : ''}${(v.drift.meanConfidenceShift * 100).toFixed(1)} pts vs held-out)`}{' '}
        ·{' '}
        {psi === null ? (
          <span class="muted">no held-out baseline</span>
        ) : (
          <span class={`badge ${v.drift.alert ? 'warn' : ''}`} data-testid="drift">
            {v.drift.alert ? '⚠ drift' : '✔ stable'}: PSI {psi.toFixed(3)} (alert above {v.drift.threshold})
          </span>
        )}
      </h3>
      <div class="monitor-charts">
        <div>
          <h4>Predictions per day (bars) · drift, PSI (line; dashed: alert)</h4>
          <DailyChart days={days} v={v} />
        </div>
        <div>
          <h4>Predicted labels</h4>
          {labels.map(([l, n]) => (
            <Bar key={l} label={`${l} (${n})`} value={n / Math.max(1, v.predictions)} />
          ))}
        </div>
        <div>
          <h4>Confidence (top probability)</h4>
          <ConfidenceChart bins={v.confidence} />
        </div>
      </div>
    </section>
  );
}

/** `GET /datasets/{d}/monitoring?days=30`, newest version first. */
export function Monitoring({ name, model }: { name: string; model: string | undefined }) {
  const [data, setData] = useState<MonitoringResponse | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api('GET /datasets/{d}/monitoring', { params: { d: name }, query: { days: 30 } }).then(setData, setError);
  }, [name, model]);
  return (
    <div>
      <h2>Monitoring, last 30 days</h2>
      <ErrorLine error={error} />
      {data && data.versions.length === 0 ? (
        <p class="muted">
          No prediction recorded yet (monitoring is on unless the Review tab's policy turns it off).
        </p>
      ) : null}
      {data?.versions.map((v) => (
        <VersionMonitoring key={v.version} days={data.days} v={v} />
      ))}
    </div>
  );
}
