/**
 * Data-quality findings of the newest training (`GET /datasets/{d}/quality`), when the
 * stack has them: nothing is shown while the route is absent (404) or the document is missing.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';
import type { Quality as QualityDocument } from './types.ts';

/** Older documents may lack fields: every part is optional here. */
type Quality = Partial<QualityDocument>;

const SHOWN = 5;
const fileOf = (key: string) => key.split('/').slice(2).join('/');

export function QualityFindings({ dataset, version }: { dataset: string; version: string | undefined }) {
  const [q, setQ] = useState<Quality | null>(null);
  useEffect(() => {
    setQ(null);
    if (!version) return;
    // Absent route (404/403 on an older stack) or no findings yet: show nothing.
    api('GET /datasets/{d}/quality', { params: { d: dataset } }).then(setQ, () => setQ(null));
  }, [dataset, version]);
  if (!q) return null;
  const errors = q.labelErrors ?? [];
  return (
    <section class="quality">
      <h2>Data quality</h2>
      <ul>
        <li>{q.duplicates?.length ?? 0} group(s) of duplicate images</li>
        <li>{q.conflicts?.length ?? 0} image(s) filed under two labels</li>
        <li>{q.leaks?.length ?? 0} near-copy pair(s) across the train / held-out split</li>
        <li>
          {errors.length} likely label error(s)
          {q.imbalance ? ` · largest / smallest label: ${q.imbalance.ratio.toFixed(1)}×` : ''}
        </li>
      </ul>
      {errors.length > 0 ? (
        <ul class="label-errors">
          {errors.slice(0, SHOWN).map((e) => (
            <li key={e.key}>
              <code>{fileOf(e.key)}</code>: filed as <strong>{e.label}</strong> (
              {(e.probabilityOfLabel * 100).toFixed(0)} %), looks like <strong>{e.suggested}</strong> (
              {(e.probabilityOfSuggested * 100).toFixed(0)} %)
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
