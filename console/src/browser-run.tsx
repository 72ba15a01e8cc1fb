/**
 * "Try it" → "Run in this browser": the model's ONNX export run by onnxruntime-web in the page,
 * shown next to the server's answer with the largest difference. Everything heavy (onnxruntime-web,
 * its ~15 MB wasm, the ~60 MB model) is fetched only when asked, from the stack itself.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, apiUrl } from './api.ts';
import type { BrowserModel } from './browser-model.ts';
import { Bar, ErrorLine, ms } from './format.tsx';
import type { Prediction } from './types.ts';

type BrowserModule = typeof import('./browser-model.ts');

interface Loaded {
  mod: BrowserModule;
  model: BrowserModel;
}

/** One loaded model per dataset version for the tab's life (the download is the slow part). */
const loaded = new Map<string, Promise<Loaded>>();

async function loadModel(dataset: string, version: string, onStep: (s: string) => void): Promise<Loaded> {
  onStep('loading onnxruntime-web…');
  const mod = (await import(apiUrl('console/ort/browser-model.mjs'))) as BrowserModule;
  onStep('downloading the model…');
  const exp = await api('GET /datasets/{d}/model/export', {
    params: { d: dataset },
    query: { format: 'onnx', version, redirect: 'false' },
  });
  const res = await fetch(exp.url);
  if (!res.ok) throw new Error(`model download refused by storage: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  onStep('starting onnxruntime-web (wasm)…');
  const model = await mod.loadBrowserModel(bytes, apiUrl('console/ort/ort-wasm-simd-threaded.wasm'));
  // For tests and the curious: run the loaded model on an input of your own (HWC RGB 0-255).
  (window as unknown as { tlearnBrowserModel?: BrowserModel }).tlearnBrowserModel = model;
  return { mod, model };
}

interface BrowserResult {
  classes: string[];
  probabilities: number[];
  label: string;
  maxDiff: number;
  ms: number;
}

/** Runs `file` through the export of the server's model version and compares with `server`. */
export function BrowserRun({ dataset, file, server }: { dataset: string; file: Blob; server: Prediction }) {
  const [step, setStep] = useState('');
  const [out, setOut] = useState<BrowserResult | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let live = true;
    setOut(null);
    setError(null);
    const id = `${dataset}\u0000${server.model.version}`;
    let p = loaded.get(id);
    if (p === undefined) {
      p = loadModel(dataset, server.model.version, (s) => live && setStep(s));
      p.catch(() => loaded.delete(id));
      loaded.set(id, p);
    }
    p.then(async ({ mod, model }) => {
      if (live) setStep('running…');
      const started = performance.now();
      const probs = await model.run(await mod.imageToRgb(file, model.size));
      const probabilities = [...probs];
      const serverP = new Map(server.scores.map((s) => [s.label, s.probability]));
      const maxDiff = Math.max(
        ...model.classes.map((c, i) => Math.abs((probabilities[i] ?? 0) - (serverP.get(c) ?? 0))),
      );
      const top = probabilities.indexOf(Math.max(...probabilities));
      if (live)
        setOut({
          classes: model.classes,
          probabilities,
          label: model.classes[top] ?? '',
          maxDiff,
          ms: performance.now() - started,
        });
    })
      .catch((err) => live && setError(err))
      .finally(() => live && setStep(''));
    return () => {
      live = false;
    };
  }, [dataset, file, server]);

  return (
    <div class="prediction browser-run" data-testid="browser-run">
      <h3>In this browser (onnxruntime-web)</h3>
      {step ? <p>{step}</p> : null}
      <ErrorLine error={error} />
      {out ? (
        <div
          data-probabilities={JSON.stringify(
            Object.fromEntries(out.classes.map((c, i) => [c, out.probabilities[i]])),
          )}
        >
          <p class="big">
            <span class="muted">label</span> <strong data-testid="browser-label">{out.label}</strong>{' '}
            <span data-testid="browser-max-diff">max |browser − server| = {out.maxDiff.toFixed(4)}</span>
          </p>
          {out.classes
            .map((c, i) => ({ c, p: out.probabilities[i] ?? 0 }))
            .sort((a, b) => b.p - a.p)
            .map(({ c, p }) => (
              <Bar key={c} label={c} value={p} kind={c === out.label ? 'top' : 'plain'} />
            ))}
          <p class="muted">
            forward {ms(out.ms)} · resized by this browser's canvas, not by the server's libvips, so the
            probabilities may differ slightly from the server's.
          </p>
        </div>
      ) : null}
    </div>
  );
}
