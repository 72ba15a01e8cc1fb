/**
 * The "Review" tab: captured production predictions (most uncertain first) and suggestions from the
 * unlabelled pool, labelled from the keyboard (1-9 the model's classes, x discard, u undo, arrows
 * move), plus the dataset's capture policy. Labelling copies the image into `datasets/{d}/{label}/`,
 * an ordinary upload, so the next training includes it (docs/ARCHITECTURE.md "Closing the loop").
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, thumbnail } from './api.ts';
import { ErrorLine } from './format.tsx';
import type { CaptureDocument } from './types.ts';

/** One card of the grid: a capture or a pool image, with the model's guess. */
interface Card {
  /** Capture id, or the pool image's key. */
  id: string;
  imageKey: string;
  guess: string | null;
  confidence: number;
  margin: number;
  note: string;
}
type Source = 'captures' | 'suggestions';
/** What this session did, newest last (u undoes the last one). */
interface Done {
  source: Source;
  card: Card;
  label?: string;
}

const PAGE = 50;

function fromCapture(c: CaptureDocument): Card {
  return {
    id: c.id,
    imageKey: c.imageKey,
    guess: c.abstained ? null : c.label,
    confidence: c.confidence,
    margin: c.margin,
    note: `${c.reason} · ${c.capturedAt.slice(0, 16).replace('T', ' ')}`,
  };
}

function CardView(props: {
  dataset: string;
  card: Card;
  classes: string[];
  onFocus: () => void;
  onLabel: (label: string, createClass: boolean) => void;
}) {
  const { card } = props;
  const [src, setSrc] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    thumbnail(props.dataset, card.imageKey).then(
      (s) => live && setSrc(s),
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [card.imageKey]);
  const guess = card.guess ?? 'abstained';
  return (
    <figure class="thumb card" data-id={card.id}>
      {/* The focus target: the grid's keys act on the card whose face has the focus. */}
      <button
        type="button"
        class="card-face"
        onFocus={props.onFocus}
        aria-label={`guess ${guess}, ${(card.confidence * 100).toFixed(1)} %, margin ${card.margin.toFixed(2)}: press 1-9 to label, x to discard`}
      >
        {src ? (
          <img src={src} alt="" width={96} height={96} />
        ) : (
          <span class="thumb-placeholder">{failed ? 'no preview' : '…'}</span>
        )}
      </button>
      <figcaption>
        guess <strong>{guess}</strong> {(card.confidence * 100).toFixed(1)} %
        <br />
        margin {card.margin.toFixed(2)}
        <br />
        <span class="muted">{card.note}</span>
        <br />
        <select
          aria-label="label as"
          tabIndex={-1}
          value=""
          onChange={(e) => {
            const v = (e.target as HTMLSelectElement).value;
            const label = v === '\u0000' ? window.prompt('New class name')?.trim() : v;
            if (label) props.onLabel(label, v === '\u0000');
          }}
        >
          <option value="">label as…</option>
          {props.classes.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
          <option value={'\u0000'}>new class…</option>
        </select>
      </figcaption>
    </figure>
  );
}

/** The review queue and the suggestions, one grid with the keyboard. */
export function ReviewTab({ name, classes }: { name: string; classes: string[] }) {
  const [source, setSource] = useState<Source>('captures');
  const [order, setOrder] = useState<'uncertain' | 'recent'>('uncertain');
  const [cards, setCards] = useState<Card[] | null>(null);
  const [queue, setQueue] = useState<{ pending: number; reviewed: number } | null>(null);
  const [poolNote, setPoolNote] = useState('');
  const [focus, setFocus] = useState(0);
  const [done, setDone] = useState<Done[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [reload, setReload] = useState(0);
  const grid = useRef<HTMLDivElement>(null);
  /** Set when the focus must follow `focus` after the next render (an action, a move, an undo). */
  const moved = useRef(false);
  /** The card an undo brought back: focused when the reloaded queue shows it. */
  const undone = useRef<string | null>(null);

  useEffect(() => {
    let live = true;
    const load =
      source === 'captures'
        ? api('GET /datasets/{d}/captures', { params: { d: name }, query: { order, limit: PAGE } }).then(
            (p) => {
              if (live) setQueue({ pending: p.pending, reviewed: p.reviewed });
              return p.captures.map(fromCapture);
            },
          )
        : api('GET /datasets/{d}/suggestions', { params: { d: name }, query: { n: PAGE } }).then((s) => {
            if (live)
              setPoolNote(
                `${s.pool.images} image(s) in unlabelled/${name}/, ${s.pool.scored} scored by model ${s.model.version}`,
              );
            return s.suggestions.map((x) => ({
              id: x.key,
              imageKey: x.key,
              guess: x.label,
              confidence: x.confidence,
              margin: x.margin,
              note: x.key.split('/').slice(2).join('/'),
            }));
          });
    load.then(
      (c) => {
        if (!live) return;
        setCards(c);
        const back = c.findIndex((x) => x.id === undone.current);
        if (back >= 0) {
          setFocus(back);
          moved.current = true;
        }
        undone.current = null;
      },
      (err: unknown) => {
        if (!live) return;
        setError(err);
        setCards([]);
      },
    );
    return () => {
      live = false;
    };
  }, [name, source, order, reload]);

  // After an action the card now at the focused index (the next one) takes the focus, in the same
  // frame as the render (a key pressed meanwhile must not land on the page's body).
  useLayoutEffect(() => {
    if (!moved.current || !cards) return;
    moved.current = false;
    const all = grid.current?.querySelectorAll<HTMLElement>('.card-face') ?? [];
    all[Math.min(focus, all.length - 1)]?.focus();
  });

  const show = (s: Source, o: typeof order) => {
    setCards(null);
    setSource(s);
    setOrder(o);
  };

  const run = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await what();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      moved.current = true;
    }
  };

  const remove = (card: Card) => {
    setCards((cs) => (cs ?? []).filter((c) => c.id !== card.id));
    if (source === 'captures') setQueue((q) => q && { pending: q.pending - 1, reviewed: q.reviewed + 1 });
    // The page is done: read the next one (captures left beyond it, or a new ranking of the pool).
    if ((cards?.length ?? 0) <= 1) setReload((r) => r + 1);
  };

  const label = (card: Card, label: string, createClass = false) =>
    run(async () => {
      if (source === 'captures')
        await api('POST /datasets/{d}/captures/{id}/label', {
          params: { d: name, id: card.id },
          body: { label, createClass },
        });
      else
        await api('POST /datasets/{d}/suggestions/label', {
          params: { d: name },
          body: { key: card.id, label, createClass },
        });
      remove(card);
      setDone((d) => [...d, { source, card, label }]);
    });

  const discard = (card: Card) =>
    run(async () => {
      if (source !== 'captures') throw new Error('a suggestion stays in the pool until it is labelled');
      await api('DELETE /datasets/{d}/captures/{id}', { params: { d: name, id: card.id } });
      remove(card);
      setDone((d) => [...d, { source, card }]);
    });

  const undo = () =>
    run(async () => {
      const last = done[done.length - 1];
      if (!last) throw new Error('nothing to undo in this session');
      if (last.source !== 'captures')
        throw new Error(`a labelled suggestion is an ordinary image now: delete ${last.card.id} to undo`);
      await api('POST /datasets/{d}/captures/{id}/undo', { params: { d: name, id: last.card.id } });
      setDone((d) => d.slice(0, -1));
      undone.current = last.card.id;
      if (source === 'captures') setReload((r) => r + 1);
    });

  const onKey = (e: KeyboardEvent) => {
    if (!(e.target as HTMLElement).classList.contains('card-face') || e.ctrlKey || e.metaKey || e.altKey)
      return;
    const list = cards ?? [];
    const card = list[focus];
    const n = Number(e.key);
    const step = ({ ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 } as Record<string, number>)[
      e.key
    ];
    if (step !== undefined) {
      setFocus((f) => Math.max(0, Math.min(list.length - 1, f + step)));
      moved.current = true;
    } else if (e.key === 'u') void undo();
    else if (busy || !card) return;
    else if (Number.isInteger(n) && n >= 1 && n <= 9 && classes[n - 1])
      void label(card, classes[n - 1] as string);
    else if (e.key === 'x') void discard(card);
    else return;
    e.preventDefault();
  };

  const labelled = done.filter((d) => d.label !== undefined).length;
  const discarded = done.length - labelled;
  return (
    <div>
      <div class="inline-form review-bar">
        <span>
          {(
            [
              ['captures', 'Captured predictions'],
              ['suggestions', 'Suggested from the unlabelled pool'],
            ] as const
          ).map(([s, text]) => (
            <button
              key={s}
              type="button"
              aria-pressed={source === s}
              class={source === s ? 'primary' : ''}
              onClick={() => show(s, order)}
            >
              {text}
            </button>
          ))}
        </span>
        {source === 'captures' ? (
          <label>
            Order{' '}
            <select
              value={order}
              onChange={(e) => show(source, (e.target as HTMLSelectElement).value as typeof order)}
            >
              <option value="uncertain">most uncertain first</option>
              <option value="recent">most recent first</option>
            </select>
          </label>
        ) : null}
      </div>
      <p class="legend">
        Keys on the focused card:{' '}
        {classes.slice(0, 9).map((c, i) => (
          <span key={c}>
            <kbd>{i + 1}</kbd> {c}{' '}
          </span>
        ))}
        · <kbd>x</kbd> discard · <kbd>u</kbd> undo · <kbd>←</kbd>
        <kbd>→</kbd> move
      </p>
      <p aria-live="polite" class="session" data-testid="review-session">
        {done.length === 0
          ? 'Nothing reviewed in this session yet.'
          : `${labelled} labelled, ${discarded} discarded — the next training will include ${labelled === 1 ? 'it' : 'them'}`}
        <span class="muted">
          {' · '}
          {source === 'captures'
            ? queue && `${queue.pending} to review, ${queue.reviewed} reviewed (kept until they expire)`
            : poolNote}
        </span>
      </p>
      <ErrorLine error={error} />
      {cards === null ? <p>Loading…</p> : null}
      {cards?.length === 0 && !error ? (
        <p class="muted">
          {source === 'captures'
            ? 'Nothing to review: set a capture policy below, or predict with ?capture=true.'
            : `No suggestions: put images under unlabelled/${name}/ (their features are extracted, never trained on).`}
        </p>
      ) : null}
      {/* biome-ignore lint/a11y/noStaticElementInteractions: one listener for every card: the keys act on the card face (a button) that has the focus. */}
      <div class="thumbs review-grid" onKeyDown={onKey} ref={grid}>
        {(cards ?? []).map((card, i) => (
          <CardView
            key={card.id}
            dataset={name}
            card={card}
            classes={classes}
            onFocus={() => setFocus(i)}
            onLabel={(l, create) => {
              setFocus(i);
              void label(card, l, create);
            }}
          />
        ))}
      </div>
      <CapturePolicy name={name} />
    </div>
  );
}

/** Parses a 0-1 rate typed in the form; '' is `empty`. */
function rate(text: string, empty: number | null): number | null | string {
  if (text.trim() === '') return empty;
  const v = Number(text);
  return Number.isFinite(v) && v >= 0 && v <= 1 ? v : 'must be a number from 0 to 1';
}

/** The capture policy: `PUT /datasets/{d}/settings`, validated here and by the API. */
function CapturePolicy({ name }: { name: string }) {
  const [sample, setSample] = useState('');
  const [below, setBelow] = useState('');
  const [monitoring, setMonitoring] = useState(true);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  // The fields stay disabled until the stored policy is in them: what the user types is never
  // overwritten by an answer that arrives later.
  const [loaded, setLoaded] = useState(false);
  useEffect(() => {
    setLoaded(false);
    api('GET /datasets/{d}/settings', { params: { d: name } }).then(({ settings }) => {
      setSample(String(settings.capture.sample));
      setBelow(settings.capture.belowConfidence === null ? '' : String(settings.capture.belowConfidence));
      setMonitoring(settings.monitoring);
      setLoaded(true);
    }, setError);
  }, [name]);
  const s = rate(sample, 0);
  const b = rate(below, null);
  const save = async (e: Event) => {
    e.preventDefault();
    setMessage(null);
    setError(null);
    if (typeof s === 'string' || typeof b === 'string') return;
    try {
      await api('PUT /datasets/{d}/settings', {
        params: { d: name },
        body: { capture: { sample: s ?? 0, belowConfidence: b }, monitoring },
      });
      setMessage('Saved: every API container uses it within 30 s.');
    } catch (err) {
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : err);
    }
  };
  const invalid = (v: unknown) => (typeof v === 'string' ? v : null);
  return (
    <form class="policy" onSubmit={save} aria-labelledby="policy-title">
      <h2 id="policy-title">Capture policy</h2>
      <p class="muted">
        Captured predictions (image + answer) are kept under captures/{name}/ for review and expire (30 days
        unless the stack says otherwise): one S3 PUT of the image and one of its document per capture.
      </p>
      <label>
        Sample rate (0-1){' '}
        <input
          inputMode="decimal"
          disabled={!loaded}
          value={sample}
          aria-invalid={invalid(s) !== null}
          onInput={(e) => setSample((e.target as HTMLInputElement).value)}
        />
      </label>{' '}
      {invalid(s) ? <span class="error">{invalid(s)}</span> : null}
      <label>
        Capture below confidence (0-1, empty: off){' '}
        <input
          inputMode="decimal"
          disabled={!loaded}
          value={below}
          aria-invalid={invalid(b) !== null}
          onInput={(e) => setBelow((e.target as HTMLInputElement).value)}
        />
      </label>{' '}
      {invalid(b) ? <span class="error">{invalid(b)}</span> : null}
      <label>
        <input
          type="checkbox"
          disabled={!loaded}
          checked={monitoring}
          onChange={(e) => setMonitoring((e.target as HTMLInputElement).checked)}
        />{' '}
        Monitoring (one empty S3 PUT per prediction)
      </label>
      <button type="submit" class="primary" disabled={!loaded || invalid(s) !== null || invalid(b) !== null}>
        Save policy
      </button>
      {message ? <span aria-live="polite">{message}</span> : null}
      <ErrorLine error={error} />
    </form>
  );
}
