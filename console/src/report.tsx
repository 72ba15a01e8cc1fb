/**
 * The evaluation report with pictures: the confusion matrix as a heat map (counts written in the
 * cells, every cell a button: click or Enter shows those held-out images, fetched a page at a time
 * from `GET …/model/predictions?true=&predicted=`; arrow keys move between cells), per-class
 * precision/recall/F1 bars, and the most confidently wrong images (in the report's summary).
 */
import { useEffect, useState } from 'preact/hooks';
import { api, thumbnail } from './api.ts';
import { Bar, pct, RandomBadge, TableHead, when } from './format.tsx';
import type { HeldOutPrediction, Report } from './types.ts';

const CELL_SHOWN = 48;

function Thumb({ dataset, p, classes }: { dataset: string; p: HeldOutPrediction; classes: string[] }) {
  const [src, setSrc] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    thumbnail(dataset, p.key).then(
      (s) => live && setSrc(s),
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [dataset, p.key]);
  const k = classes.indexOf(p.predicted);
  const prob = p.probabilities[k] ?? 0;
  const file = p.key.split('/').slice(3).join('/');
  return (
    <figure class={`thumb ${p.true === p.predicted ? 'right' : 'wrong'}`}>
      {src ? (
        <img src={src} alt={`${file}: true ${p.true}, predicted ${p.predicted}`} width={96} height={96} />
      ) : (
        <div class="thumb-placeholder">{failed ? 'no preview' : '…'}</div>
      )}
      <figcaption>
        <span class="thumb-file" title={p.key}>
          {file}
        </span>
        <br />
        true <strong>{p.true}</strong>
        <br />
        {p.true === p.predicted ? '✔' : '✖'} predicted <strong>{p.predicted}</strong>{' '}
        {(prob * 100).toFixed(1)} %
      </figcaption>
    </figure>
  );
}

function heat(v: number): { background: string; color: string } {
  const light = 97 - v * 62;
  return { background: `hsl(212, 65%, ${light}%)`, color: light < 55 ? '#fff' : '#111' };
}

/** One cell's held-out predictions: the first page of them, and how many there are. */
function useCell(
  dataset: string,
  version: string,
  cell: { trueLabel: string; predicted: string } | null,
): { items: HeldOutPrediction[]; total: number | null; error: string | null } {
  const [state, setState] = useState<{
    items: HeldOutPrediction[];
    total: number | null;
    error: string | null;
  }>({
    items: [],
    total: null,
    error: null,
  });
  const trueLabel = cell?.trueLabel;
  const predicted = cell?.predicted;
  useEffect(() => {
    setState({ items: [], total: null, error: null });
    if (trueLabel === undefined || predicted === undefined) return;
    let live = true;
    api('GET /datasets/{d}/model/predictions', {
      params: { d: dataset },
      query: { version, true: trueLabel, predicted, limit: CELL_SHOWN },
    }).then(
      (page) => live && setState({ items: page.items, total: page.total, error: null }),
      (err: unknown) => live && setState({ items: [], total: null, error: String(err) }),
    );
    return () => {
      live = false;
    };
  }, [dataset, version, trueLabel, predicted]);
  return state;
}

export function ReportView(props: { dataset: string; report: Report; random: boolean; version: string }) {
  const { report, dataset, random } = props;
  const classes = report.classes;
  const [cell, setCell] = useState<{ t: number; p: number } | null>(null);
  const hasPredictions = report.heldOut.predictions !== null;
  const wrong = report.mostConfidentlyWrong;
  const matrix = report.confusionMatrix;
  const picked = cell ? { trueLabel: classes[cell.t] ?? '', predicted: classes[cell.p] ?? '' } : null;
  const inCell = useCell(dataset, props.version, hasPredictions ? picked : null);
  const cellCount = cell ? (matrix?.[cell.t]?.[cell.p] ?? inCell.total ?? 0) : 0;

  const onKey = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement;
    const t = Number(target.dataset.t);
    const p = Number(target.dataset.p);
    if (Number.isNaN(t) || Number.isNaN(p)) return;
    const moves: Record<string, [number, number]> = {
      ArrowUp: [-1, 0],
      ArrowDown: [1, 0],
      ArrowLeft: [0, -1],
      ArrowRight: [0, 1],
    };
    const m = moves[e.key];
    if (!m) return;
    e.preventDefault();
    const next = document.querySelector<HTMLElement>(`[data-t="${t + m[0]}"][data-p="${p + m[1]}"]`);
    next?.focus();
  };

  return (
    <div class="report">
      <p class="summary">
        Model <code>{props.version}</code> trained {when(report.trainedAt)} · accuracy{' '}
        <strong>{pct(report.accuracy)}</strong> on {report.counts.test} held-out of {report.counts.total}{' '}
        images
        {report.logLoss !== null ? ` · log loss ${report.logLoss.toFixed(3)}` : ''}{' '}
        <RandomBadge show={random} />
      </p>
      {report.note ? <p class="note">{report.note}</p> : null}
      <div class="cols">
        <div>
          <h2>Confusion matrix</h2>
          {matrix ? (
            <>
              <p class="muted">
                Rows: true label · columns: predicted · shade: share of the row. Click a cell (or focus it and
                press Enter; arrows move) to see its images.
              </p>
              <table class="matrix" onKeyDown={onKey}>
                <thead>
                  <tr>
                    <th scope="col" class="corner">
                      true ↓ / predicted →
                    </th>
                    {classes.map((c) => (
                      <th scope="col" key={c} class="col-label">
                        <span>{c}</span>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {matrix.map((row, t) => {
                    const sum = row.reduce((a, b) => a + b, 0) || 1;
                    return (
                      <tr key={classes[t]}>
                        <th scope="row">{classes[t]}</th>
                        {row.map((n, p) => {
                          const selected = cell?.t === t && cell.p === p;
                          return (
                            <td key={classes[p]} class={t === p ? 'diag' : ''}>
                              <button
                                type="button"
                                class={`cell ${selected ? 'selected' : ''}`}
                                style={heat(n / sum)}
                                data-t={t}
                                data-p={p}
                                aria-pressed={selected}
                                aria-label={`true ${classes[t]}, predicted ${classes[p]}: ${n} image${n === 1 ? '' : 's'}`}
                                onClick={() => setCell({ t, p })}
                              >
                                {n}
                                {t === p ? <span class="sr-only"> (correct)</span> : null}
                              </button>
                            </td>
                          );
                        })}
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </>
          ) : (
            <p class="muted">No held-out evaluation (test size 0).</p>
          )}
        </div>
        <div>
          {cell ? (
            <section class="cell-images" aria-live="polite">
              <h2>
                True {classes[cell.t]}, predicted {classes[cell.p]}: {cellCount} image(s)
              </h2>
              {hasPredictions ? null : (
                <p class="muted">This report predates held-out predictions: retrain to see images.</p>
              )}
              {inCell.error ? <p class="error">{inCell.error}</p> : null}
              {inCell.total !== null && inCell.total > inCell.items.length ? (
                <p class="muted">
                  The first {inCell.items.length} of {inCell.total} are shown.
                </p>
              ) : null}
              <div class="thumbs">
                {inCell.items.map((p) => (
                  <Thumb key={p.key} dataset={dataset} p={p} classes={classes} />
                ))}
              </div>
            </section>
          ) : null}
          {cell ? null : <p class="note">Pick a cell of the matrix to see its held-out images here.</p>}
          <section>
            <h2>
              Most confidently wrong <RandomBadge show={random} />
            </h2>
            {wrong.length === 0 ? (
              <p class="muted">{hasPredictions ? 'No held-out image is wrong.' : 'Retrain to list them.'}</p>
            ) : (
              <div class="thumbs">
                {wrong.map((p) => (
                  <Thumb key={p.key} dataset={dataset} p={p} classes={classes} />
                ))}
              </div>
            )}
          </section>
        </div>
      </div>
      <h2>
        Per class: precision, recall, F1 <RandomBadge show={random} />
      </h2>
      <table class="grid per-class">
        <TableHead columns={['Label', 'Precision', 'Recall', 'F1', 'Held out']} />
        <tbody>
          {report.perClass.map((c) => (
            <tr key={c.label}>
              <th scope="row">{c.label}</th>
              <td>
                <Bar compact label={`${c.label} precision`} value={c.precision} kind="p" />
              </td>
              <td>
                <Bar compact label={`${c.label} recall`} value={c.recall} kind="r" />
              </td>
              <td>
                <Bar compact label={`${c.label} F1`} value={c.f1} kind="f" />
              </td>
              <td class="num">{c.support}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
