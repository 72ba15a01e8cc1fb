/** "Try it": drop, paste or pick an image; see the label, every class's probability and the timings. */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';
import { BrowserRun } from './browser-run.tsx';
import { Bar, DropZone, ErrorLine, ms, RandomBadge } from './format.tsx';
import type { Prediction } from './types.ts';

export function TryIt({ dataset, hasModel }: { dataset: string; hasModel: boolean }) {
  const [preview, setPreview] = useState<string | null>(null);
  const [result, setResult] = useState<Prediction | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [file, setFile] = useState<Blob | null>(null);
  const [inBrowser, setInBrowser] = useState(false);

  const predict = async (file: File | Blob) => {
    setError(null);
    setResult(null);
    if (preview) URL.revokeObjectURL(preview);
    setPreview(URL.createObjectURL(file));
    setFile(file);
    setBusy(true);
    try {
      setResult(
        await api('POST /datasets/{d}/predictions', {
          params: { d: dataset },
          raw: { data: file, contentType: file.type || 'application/octet-stream' },
        }),
      );
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
      if (file) void predict(file);
    };
    window.addEventListener('paste', onPaste);
    return () => window.removeEventListener('paste', onPaste);
  });

  if (!hasModel) return <p class="muted">No model is served yet: upload images first.</p>;
  return (
    <div class="cols">
      <div>
        <DropZone
          label="image to predict"
          onDrop={(e) => {
            const f = e.dataTransfer?.files[0];
            if (f) void predict(f);
          }}
        >
          <p>
            <strong>Drop an image here</strong>, paste one (Ctrl+V), or{' '}
            <label class="button">
              choose a file
              <input
                type="file"
                accept="image/*"
                class="hidden"
                data-testid="try-input"
                onChange={(e) => {
                  const f = (e.target as HTMLInputElement).files?.[0];
                  if (f) void predict(f);
                }}
              />
            </label>
          </p>
          {preview ? <img class="try-preview" src={preview} alt="being predicted" /> : null}
        </DropZone>
        <p>
          <label>
            <input
              type="checkbox"
              checked={inBrowser}
              onChange={(e) => setInBrowser((e.target as HTMLInputElement).checked)}
            />{' '}
            Also run in this browser
          </label>{' '}
          <span class="muted">
            (the model's ONNX export with onnxruntime-web: downloads ~15 MB of runtime and the model once)
          </span>
        </p>
      </div>
      <div aria-live="polite">
        {busy ? <p>Predicting…</p> : null}
        <ErrorLine error={error} />
        {result ? (
          <div class="prediction">
            <p class="big">
              <span class="muted">label</span> <strong data-testid="predicted-label">{result.label}</strong>{' '}
              {(result.confidence * 100).toFixed(1)} % <RandomBadge show={result.model.randomWeights} />
            </p>
            {[...result.scores]
              .sort((a, b) => b.probability - a.probability)
              .map((s) => (
                <Bar
                  key={s.label}
                  label={s.label}
                  value={s.probability}
                  kind={s.label === result.label ? 'top' : 'plain'}
                />
              ))}
            <p class="muted">
              model <code>{result.model.version}</code> · timings:{' '}
              {Object.entries(result.timingsMs)
                .map(([k, v]) => `${k} ${ms(v)}`)
                .join(' · ')}
            </p>
          </div>
        ) : null}
        {inBrowser && result && file ? <BrowserRun dataset={dataset} file={file} server={result} /> : null}
      </div>
    </div>
  );
}
