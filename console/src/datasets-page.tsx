/** Datasets page: every dataset with counts, features, current model and last training. */
import { useEffect, useState } from 'preact/hooks';
import { DATASET_NAME_RE } from '../../lib/storage/keys.ts';
import { api } from './api.ts';
import { ErrorLine, pct, RandomBadge, TableHead, when } from './format.tsx';
import type { DatasetListItem, DatasetStatus, ModelVersionItem } from './types.ts';

interface Row {
  item: DatasetListItem;
  status?: DatasetStatus;
  current?: ModelVersionItem;
  error?: unknown;
}

export function DatasetsPage() {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [newName, setNewName] = useState('');
  useEffect(() => {
    let live = true;
    const load = async () => {
      try {
        const { datasets } = await api('GET /datasets', {});
        const filled = await Promise.all(
          datasets.map(async (item): Promise<Row> => {
            try {
              const [status, versions] = await Promise.all([
                api('GET /datasets/{d}', { params: { d: item.name } }),
                api('GET /datasets/{d}/models', { params: { d: item.name } }),
              ]);
              return { item, status, current: versions.versions.find((v) => v.current) };
            } catch (err) {
              return { item, error: err };
            }
          }),
        );
        if (live) setRows(filled);
      } catch (err) {
        if (live) setError(err);
      }
    };
    void load();
    const timer = setInterval(load, 5000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  const valid = DATASET_NAME_RE.test(newName);
  return (
    <section>
      <h1>Datasets</h1>
      <ErrorLine error={error} />
      {rows === null && !error ? <p aria-live="polite">Loading…</p> : null}
      {rows !== null && rows.length === 0 ? (
        <p>No dataset yet: create one below and drop images on it.</p>
      ) : null}
      {rows !== null && rows.length > 0 ? (
        <table class="grid datasets">
          <TableHead
            columns={[
              'Dataset',
              'Images',
              'Features ready / pending / failed',
              'Current model',
              'Accuracy',
              'Training',
            ]}
          />
          <tbody>
            {rows.map(({ item, status, current, error: rowError }) => (
              <tr key={item.name}>
                <th scope="row">
                  <a href={`#/d/${item.name}`}>{item.name}</a>
                </th>
                <td class="num">
                  {item.images} <span class="muted">in {item.labels} labels</span>
                </td>
                <td class="num">
                  {status ? (
                    <>
                      {status.images.ready} ready · {status.images.pending} pending ·{' '}
                      <span class={status.images.failed > 0 ? 'bad' : ''}>{status.images.failed} failed</span>
                    </>
                  ) : (
                    <ErrorLine error={rowError} />
                  )}
                </td>
                <td>
                  {status?.model ? (
                    <>
                      <code>{status.model.version}</code>
                      <div class="muted">promoted {when(status.model.promotedAt)}</div>
                    </>
                  ) : (
                    <span class="muted">none yet</span>
                  )}
                </td>
                <td class="num">
                  {pct(current?.accuracy)} <RandomBadge show={current?.randomWeights ?? false} />
                </td>
                <td>
                  {status?.lastExecution ? (
                    <>
                      <StatusWord status={status.lastExecution.status} />
                      <div class="muted">{when(status.lastExecution.startedAt)}</div>
                    </>
                  ) : status?.lastTraining ? (
                    <span class="muted">last {when(status.lastTraining.at)}</span>
                  ) : (
                    <span class="muted">—</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (valid) window.location.hash = `#/d/${newName}`;
        }}
      >
        <label>
          New dataset{' '}
          <input
            value={newName}
            placeholder="pets"
            aria-describedby="name-rule"
            onInput={(e) => setNewName((e.target as HTMLInputElement).value.trim())}
          />
        </label>
        <button type="submit" disabled={!valid}>
          Open
        </button>
        <span id="name-rule" class="muted">
          lower-case letters, digits and '-'
        </span>
      </form>
    </section>
  );
}

/** An execution status in words with a symbol (never colour alone). */
export function StatusWord({ status }: { status: string }) {
  const sym: Record<string, string> = {
    RUNNING: '⟳',
    SUCCEEDED: '✔',
    FAILED: '✖',
    TIMED_OUT: '✖',
    ABORTED: '■',
  };
  const cls = status === 'SUCCEEDED' ? 'good' : status === 'RUNNING' ? 'info' : 'bad';
  return (
    <span class={`status ${cls}`}>
      {sym[status] ?? '•'} {status.toLowerCase().replace('_', ' ')}
    </span>
  );
}
