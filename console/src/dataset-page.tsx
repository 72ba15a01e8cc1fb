/** One dataset: tabs for its data (labels, failures, upload), training (and monitoring), report, "try it" and review. */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api } from './api.ts';
import { StatusWord } from './datasets-page.tsx';
import { ErrorLine, pct, RandomBadge, TableHead, when } from './format.tsx';
import { Monitoring } from './monitoring.tsx';
import { QualityFindings } from './quality.tsx';
import { ReportView } from './report.tsx';
import { ReviewTab } from './review.tsx';
import { TryIt } from './try-it.tsx';
import type { DatasetStatus, FailureItem, ModelResponse, ModelVersionItem } from './types.ts';
import { Upload } from './upload.tsx';

export type Tab = 'data' | 'training' | 'report' | 'try' | 'review';
const TAB_NAMES: Record<Tab, string> = {
  data: 'Data',
  training: 'Training',
  report: 'Report',
  try: 'Try it',
  review: 'Review',
};

/** Polls the dataset's status: fast while something moves, slowly otherwise. */
function useStatus(name: string, fast: boolean) {
  const [status, setStatus] = useState<DatasetStatus | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let live = true;
    api('GET /datasets/{d}', { params: { d: name } }).then(
      (s) => {
        if (!live) return;
        setStatus(s);
        setError(null);
      },
      (err: unknown) => {
        if (!live) return;
        if (err instanceof ApiError && err.code === 'DatasetNotFound') setStatus(null);
        else setError(err);
      },
    );
    const moving =
      fast ||
      (status !== undefined &&
        status !== null &&
        (!status.featuresSettled || status.lastExecution?.status === 'RUNNING'));
    const timer = setTimeout(refresh, moving ? 1000 : 5000);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [name, tick]);
  return { status, error, refresh };
}

export function DatasetPage({ name, tab }: { name: string; tab: Tab }) {
  const [uploading, setUploading] = useState(false);
  const { status, error, refresh } = useStatus(name, uploading);
  const [versions, setVersions] = useState<ModelVersionItem[] | null>(null);
  const [model, setModel] = useState<ModelResponse | null>(null);
  const [failures, setFailures] = useState<FailureItem[] | null>(null);
  const [modelError, setModelError] = useState<unknown>(null);
  const modelVersion = status?.model?.version;
  const newest = status?.lastTraining?.version;
  const failed = status?.images.failed ?? 0;

  useEffect(() => {
    if (!status) return;
    api('GET /datasets/{d}/models', { params: { d: name } }).then(
      (r) => setVersions(r.versions),
      setModelError,
    );
    if (modelVersion)
      api('GET /datasets/{d}/model', { params: { d: name } }).then((m) => {
        setModel(m);
        setModelError(null);
      }, setModelError);
  }, [name, modelVersion, newest, status === undefined || status === null]);

  useEffect(() => {
    if (failed === 0) {
      setFailures([]);
      return;
    }
    api('GET /datasets/{d}/failures', { params: { d: name } }).then(
      (r) => setFailures(r.failures),
      setModelError,
    );
  }, [name, failed]);

  const random = status?.model?.randomWeights ?? false;
  return (
    <section>
      <h1>
        {name} {random ? <RandomBadge show /> : null}
      </h1>
      <nav class="tabs" aria-label="dataset sections">
        {(Object.keys(TAB_NAMES) as Tab[]).map((t) => (
          <a key={t} href={`#/d/${name}/${t}`} aria-current={t === tab ? 'page' : undefined} class="tab">
            {TAB_NAMES[t]}
          </a>
        ))}
      </nav>
      <ErrorLine error={error} />
      {status === undefined && !error ? <p aria-live="polite">Loading…</p> : null}
      {tab === 'data' ? (
        <DataTab
          name={name}
          status={status ?? null}
          failures={failures}
          onUploading={setUploading}
          onUploaded={refresh}
        />
      ) : null}
      {tab === 'training' ? (
        <TrainingTab name={name} status={status ?? null} versions={versions} onChange={refresh} />
      ) : null}
      {tab === 'report' ? (
        <>
          <ErrorLine error={modelError} />
          {model?.report ? (
            <ReportView
              dataset={name}
              report={model.report}
              random={model.model.randomWeights}
              version={model.model.version}
            />
          ) : (
            <p class="muted">
              {status?.model
                ? 'Loading the report…'
                : 'No model yet: upload images, a training starts by itself.'}
            </p>
          )}
        </>
      ) : null}
      {tab === 'try' ? <TryIt dataset={name} hasModel={Boolean(status?.model)} /> : null}
      {tab === 'review' ? (
        status?.model ? (
          <ReviewTab name={name} classes={status.model.classes} />
        ) : (
          <p class="muted">No model is served yet: captures and suggestions come from a promoted model.</p>
        )
      ) : null}
    </section>
  );
}

function DataTab(props: {
  name: string;
  status: DatasetStatus | null;
  failures: FailureItem[] | null;
  onUploading: (b: boolean) => void;
  onUploaded: () => void;
}) {
  const { status, failures } = props;
  const labels = status ? Object.entries(status.labels).sort(([a], [b]) => (a < b ? -1 : 1)) : [];
  const max = Math.max(1, ...labels.map(([, l]) => l.images));
  return (
    <div class="cols">
      <div>
        <h2>Labels</h2>
        {status === null ? <p>This dataset has no images yet: drop a folder per label here.</p> : null}
        {status ? (
          <p>
            <strong>{status.images.total}</strong> images: {status.images.ready} features ready,{' '}
            {status.images.pending} pending, {status.images.failed} failed
            {status.images.skipped > 0 ? `, ${status.images.skipped} skipped (not image names)` : ''}
          </p>
        ) : null}
        {labels.length > 0 ? (
          <table class="grid labels">
            <TableHead columns={['Label', 'Images', 'Ready', 'Pending', 'Failed']} />
            <tbody>
              {labels.map(([label, l]) => (
                <tr key={label}>
                  <th scope="row">{label}</th>
                  <td class="num">
                    <span
                      class="count-bar"
                      style={{ width: `${(l.images / max) * 80}px` }}
                      aria-hidden="true"
                    />{' '}
                    {l.images}
                  </td>
                  <td class="num">{l.ready}</td>
                  <td class="num">{l.pending}</td>
                  <td class={`num ${l.failed > 0 ? 'bad' : ''}`}>{l.failed}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        <QualityFindings dataset={props.name} version={status?.lastTraining?.version} />
        {failures && failures.length > 0 ? (
          <>
            <h2>Images that cannot be used</h2>
            <ul class="failures">
              {failures.map((f) => (
                <li key={f.key}>
                  <code>{f.key.split('/').slice(2).join('/')}</code>:{' '}
                  {f.code ? <strong>{f.code}</strong> : null} {f.reason}
                </li>
              ))}
            </ul>
          </>
        ) : null}
      </div>
      <div>
        <h2>Upload</h2>
        <Upload
          dataset={props.name}
          labels={labels.map(([l]) => l)}
          onUploading={props.onUploading}
          onDone={props.onUploaded}
        />
      </div>
    </div>
  );
}

function TrainingTab(props: {
  name: string;
  status: DatasetStatus | null;
  versions: ModelVersionItem[] | null;
  onChange: () => void;
}) {
  const { status, versions, name } = props;
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const exec = status?.lastExecution;
  const act = async (what: string, run: () => Promise<unknown>) => {
    setBusy(what);
    setError(null);
    try {
      await run();
      props.onChange();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };
  const currentIndex = versions?.findIndex((v) => v.current) ?? -1;
  return (
    <div>
      <h2>Status</h2>
      <div aria-live="polite" class="training-status">
        {status ? (
          <>
            <p>
              Features: {status.images.ready} of {status.images.total} ready
              {status.images.pending > 0 ? `, ${status.images.pending} being extracted…` : ''}
              {status.images.failed > 0 ? `, ${status.images.failed} failed` : ''}
            </p>
            <progress
              max={Math.max(1, status.images.total)}
              value={status.images.ready + status.images.failed}
            />
            {exec ? (
              <p>
                Training <code>{exec.name}</code>: <StatusWord status={exec.status} /> (
                {exec.trigger ?? 'manual'}, started {when(exec.startedAt)}
                {exec.stoppedAt ? `, ended ${when(exec.stoppedAt)}` : ''})
                {exec.error ? (
                  <span class="bad">
                    {' '}
                    — {exec.error}: {exec.cause}
                  </span>
                ) : null}
              </p>
            ) : (
              <p class="muted">No training has run yet.</p>
            )}
          </>
        ) : null}
      </div>
      <button
        type="button"
        disabled={busy !== null || !status}
        onClick={() => act('train', () => api('POST /datasets/{d}/trainings', { params: { d: name } }))}
      >
        {busy === 'train' ? 'Starting…' : 'Train now'}
      </button>
      <ErrorLine error={error} />
      <h2>Model versions</h2>
      {versions && versions.length > 0 ? (
        <table class="grid versions">
          <TableHead columns={['Version', 'Trained', 'Accuracy', 'Served', 'Action']} />
          <tbody>
            {versions.map((v, i) => (
              <tr key={v.version} class={v.current ? 'current' : ''}>
                <th scope="row">
                  <code>{v.version}</code>
                </th>
                <td>{when(v.trainedAt)}</td>
                <td class="num">
                  {v.complete ? pct(v.accuracy) : <span class="muted">incomplete</span>}{' '}
                  <RandomBadge show={v.randomWeights} />
                </td>
                <td>{v.current ? <strong>★ current</strong> : ''}</td>
                <td>
                  {v.complete && !v.current ? (
                    <button
                      type="button"
                      disabled={busy !== null}
                      onClick={() =>
                        act(v.version, () =>
                          api('POST /datasets/{d}/model/promote', {
                            params: { d: name },
                            body: { version: v.version },
                          }),
                        )
                      }
                    >
                      {currentIndex >= 0 && i > currentIndex ? 'Roll back to this' : 'Promote'}
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">No model version yet.</p>
      )}
      {status?.model ? <Monitoring name={name} model={status.model.version} /> : null}
    </div>
  );
}
