/** The console: a hash-routed single page (datasets → one dataset's data, training, report, try it, review). */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { getApiKey, setApiKey, whenKeyNeeded } from './api.ts';
import { DatasetPage, type Tab } from './dataset-page.tsx';
import { DatasetsPage } from './datasets-page.tsx';

type Route = { page: 'datasets' } | { page: 'dataset'; name: string; tab: Tab };

const TABS: readonly Tab[] = ['data', 'training', 'report', 'try', 'review'];

function parseHash(hash: string): Route {
  const m = /^#\/d\/([a-z0-9-]+)(?:\/([a-z]+))?/.exec(hash);
  if (!m?.[1]) return { page: 'datasets' };
  const tab = TABS.find((t) => t === m[2]) ?? 'data';
  return { page: 'dataset', name: m[1], tab };
}

function KeyDialog({ reason, onDone }: { reason: string; onDone: () => void }) {
  const [value, setValue] = useState(getApiKey() ?? '');
  const input = useRef<HTMLInputElement>(null);
  // A modal dialog takes the focus the user needs to type the key.
  useEffect(() => input.current?.focus(), []);
  return (
    <div class="overlay">
      <form
        class="dialog"
        aria-labelledby="key-title"
        onSubmit={(e) => {
          e.preventDefault();
          setApiKey(value.trim());
          onDone();
        }}
      >
        <h2 id="key-title">API key</h2>
        <p>{reason}. The key is kept in this tab only (session storage) and sent as x-api-key.</p>
        <label>
          Key{' '}
          <input
            type="password"
            ref={input}
            value={value}
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
            autoComplete="off"
          />
        </label>
        <button type="submit" class="primary">
          Use this key
        </button>
      </form>
    </div>
  );
}

function App() {
  const [route, setRoute] = useState<Route>(() => parseHash(window.location.hash));
  const [keyReason, setKeyReason] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const onHash = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', onHash);
    whenKeyNeeded((reason) => setKeyReason(reason));
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  return (
    <>
      <header class="top">
        <a href="#/" class="brand">
          tlearn
        </a>
        <nav aria-label="breadcrumb">
          <a href="#/">Datasets</a>
          {route.page === 'dataset' ? (
            <>
              {' / '}
              <a href={`#/d/${route.name}`}>{route.name}</a>
            </>
          ) : null}
        </nav>
        <button type="button" class="link" onClick={() => setKeyReason('Set or change the API key')}>
          {getApiKey() ? 'API key ✓' : 'API key'}
        </button>
      </header>
      <main key={generation}>
        {route.page === 'datasets' ? <DatasetsPage /> : <DatasetPage name={route.name} tab={route.tab} />}
      </main>
      {keyReason !== null ? (
        <KeyDialog
          reason={keyReason}
          onDone={() => {
            setKeyReason(null);
            setGeneration((g) => g + 1);
          }}
        />
      ) : null}
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
