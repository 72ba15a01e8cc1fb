/**
 * Upload by drag and drop (files or whole folders: a file's folder name is its label) or with the
 * file/folder pickers; loose files take the label picked here. Images go straight to S3 through
 * presigned PUT URLs from `POST /datasets/{d}/uploads`, with a progress bar over the bytes sent.
 * Nothing is overwritten silently: names are NFC like the CLI's, two files of one drop with the same
 * label and name are reported before anything is sent (only the first goes), and a PUT the bucket
 * refuses because the image exists (412, `If-None-Match: *`) ends in a dialog: replace or skip.
 */
import { useRef, useState } from 'preact/hooks';
import { api, putWithProgress, StorageRefusedError } from './api.ts';
import { DropZone, ErrorLine } from './format.tsx';

const IMAGE_RE = /\.(jpe?g|png|webp|gif|tiff?)$/i;
const PRESIGN_CHUNK = 200;
const PARALLEL_PUTS = 4;

/** A file to upload; `folder` is the name of the folder it came from (its label), if any. */
interface Pending {
  file: File;
  folder: string | null;
}

/** The key a file will have in the dataset, as the API builds it (NFC, lib/api/uploads.ts). */
function idOf(label: string, name: string): string {
  return `${label.normalize('NFC')}/${name.normalize('NFC')}`;
}

/** What one round of PUTs did. */
interface Sent {
  done: number;
  /** Files whose image exists already (the PUT got 412). */
  exists: Pending[];
  rejected: string[];
}

function folderOf(relativePath: string): string | null {
  const parts = relativePath.split('/').filter((p) => p !== '');
  return parts.length >= 2 ? (parts[parts.length - 2] ?? null) : null;
}

/** Walks dropped folders (FileSystemEntry API), keeping each file's path. */
async function walk(entry: FileSystemEntry, out: Pending[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
    out.push({ file, folder: folderOf(entry.fullPath) });
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
    if (batch.length === 0) break;
    for (const e of batch) await walk(e, out);
  }
}

/** The labelled files of a drop, the first of each label/name only (the rest are `duplicates`). */
function planDrop(pending: readonly Pending[], labelOf: (p: Pending) => string | null) {
  const byLabel = new Map<string, number>();
  const firstOf = new Map<string, Pending>();
  const duplicates: string[] = [];
  let unlabelled = 0;
  for (const p of pending) {
    const l = labelOf(p);
    if (l === null) {
      unlabelled += 1;
      continue;
    }
    const id = idOf(l, p.file.name);
    if (firstOf.has(id)) {
      duplicates.push(id);
      continue;
    }
    firstOf.set(id, p);
    byLabel.set(l, (byLabel.get(l) ?? 0) + 1);
  }
  return { ready: [...firstOf.values()], duplicates, byLabel, unlabelled };
}

/** Upload progress over the bytes and files of one round of PUTs. */
interface Progress {
  sent: number;
  total: number;
  files: number;
  done: number;
}

/**
 * Presigns and PUTs files in chunks of {@link PRESIGN_CHUNK}, {@link PARALLEL_PUTS} at a time; a
 * 412 (the image exists and the URL may not replace it) is collected in `exists`, not thrown.
 */
async function putFiles(
  dataset: string,
  todo: readonly Pending[],
  opts: {
    replace: boolean;
    labelOf: (p: Pending) => string | null;
    onProgress: (update: (cur: Progress | null) => Progress | null) => void;
  },
): Promise<Sent> {
  const { labelOf, onProgress } = opts;
  const total = todo.reduce((a, p) => a + p.file.size, 0);
  const sentBy = new Map<Pending, number>();
  onProgress(() => ({ sent: 0, total, files: todo.length, done: 0 }));
  const out: Sent = { done: 0, exists: [], rejected: [] };
  let processed = 0;
  for (let i = 0; i < todo.length; i += PRESIGN_CHUNK) {
    const chunk = todo.slice(i, i + PRESIGN_CHUNK);
    const r = await api('POST /datasets/{d}/uploads', {
      params: { d: dataset },
      body: {
        files: chunk.map((p) => ({
          // `todo` holds labelled files only (the `?? ''` is for the type checker).
          label: labelOf(p) ?? '',
          name: p.file.name.normalize('NFC'),
          size: p.file.size,
          ...(opts.replace ? { replace: true } : {}),
        })),
      },
    });
    out.rejected.push(...r.rejected.map((x) => `${x.name}: ${x.reason}`));
    const byId = new Map(chunk.map((p) => [idOf(labelOf(p) ?? '', p.file.name), p]));
    const jobs = r.uploads.map((u) => ({ u, p: byId.get(idOf(u.label, u.name)) }));
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const job = jobs[next++];
        const p = job?.p;
        if (!job || !p) continue;
        try {
          await putWithProgress(job.u.url, p.file, job.u.headers, (sent) => {
            sentBy.set(p, sent);
            const sum = [...sentBy.values()].reduce((a, b) => a + b, 0);
            onProgress((cur) => (cur ? { ...cur, sent: sum } : cur));
          });
          out.done += 1;
        } catch (err) {
          if (!(err instanceof StorageRefusedError && err.status === 412)) throw err;
          out.exists.push(p);
        }
        sentBy.set(p, p.file.size);
        processed += 1;
        onProgress((cur) => (cur ? { ...cur, done: processed } : cur));
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_PUTS }, worker));
  }
  return out;
}

export function Upload(props: {
  dataset: string;
  labels: string[];
  onUploading: (b: boolean) => void;
  onDone: () => void;
}) {
  const [pending, setPending] = useState<Pending[]>([]);
  const [label, setLabel] = useState('');
  const [progress, setProgress] = useState<Progress | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const filesInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);

  const add = (items: Pending[]) => {
    const images = items.filter((p) => IMAGE_RE.test(p.file.name) && !p.file.name.startsWith('.'));
    setPending((cur) => [...cur, ...images]);
    setMessage(
      images.length < items.length
        ? `${items.length - images.length} file(s) ignored: not jpeg/png/webp/gif/tiff`
        : null,
    );
  };

  const onDrop = async (e: DragEvent) => {
    const out: Pending[] = [];
    const items = [...(e.dataTransfer?.items ?? [])];
    const entries = items.map((i) => i.webkitGetAsEntry?.()).filter((x): x is FileSystemEntry => Boolean(x));
    if (entries.length > 0) for (const entry of entries) await walk(entry, out);
    else for (const f of [...(e.dataTransfer?.files ?? [])]) out.push({ file: f, folder: null });
    add(out);
  };

  const fromInput = (input: HTMLInputElement | null) => {
    if (!input?.files) return;
    add([...input.files].map((file) => ({ file, folder: folderOf(file.webkitRelativePath || file.name) })));
    input.value = '';
  };

  const [conflict, setConflict] = useState<Sent | null>(null);

  const labelOf = (p: Pending) => p.folder ?? (label.trim() || null);
  const { ready, duplicates, byLabel, unlabelled } = planDrop(pending, labelOf);

  const sendFiles = (todo: Pending[], replace: boolean): Promise<Sent> =>
    putFiles(props.dataset, todo, { replace, labelOf, onProgress: setProgress });

  const finish = (r: Sent, skipped: number, notSent: number) => {
    setPending((cur) => cur.filter((p) => labelOf(p) === null));
    const parts = [
      skipped ? `${skipped} already in the dataset, skipped` : '',
      notSent ? `${notSent} with a duplicate name not sent` : '',
      r.rejected.length ? `${r.rejected.length} refused: ${r.rejected.slice(0, 3).join('; ')}` : '',
    ].filter((x) => x !== '');
    setMessage(
      `Uploaded ${r.done} image(s)${parts.length ? `; ${parts.join('; ')}` : ''}. Features are extracted now; a training starts by itself.`,
    );
    props.onDone();
  };

  const run = async (work: () => Promise<void>) => {
    setError(null);
    setMessage(null);
    props.onUploading(true);
    try {
      await work();
    } catch (err) {
      setError(err);
    } finally {
      props.onUploading(false);
    }
  };

  /** Files of the last drop not sent for a duplicate name (reported with the result). */
  const dropped = useRef(0);
  const start = () =>
    run(async () => {
      dropped.current = duplicates.length;
      const r = await sendFiles(ready, false);
      if (r.exists.length > 0) setConflict(r);
      else finish(r, 0, dropped.current);
    });

  const resolveConflict = (replace: boolean) => {
    const c = conflict;
    setConflict(null);
    if (!c) return;
    if (!replace) return finish(c, c.exists.length, dropped.current);
    return run(async () => {
      const r = await sendFiles(c.exists, true);
      finish(
        { done: c.done + r.done, exists: r.exists, rejected: [...c.rejected, ...r.rejected] },
        r.exists.length,
        dropped.current,
      );
    });
  };

  const busy = (progress !== null && progress.done < progress.files && !error) || conflict !== null;
  return (
    <div>
      <DropZone label="drop images or folders" onDrop={onDrop}>
        <p>
          <strong>Drop images or folders here.</strong> A folder's name is the label of the images in it (drop
          several label folders at once).
        </p>
        <p>
          <button type="button" onClick={() => folderInput.current?.click()}>
            Choose a folder…
          </button>{' '}
          <button type="button" onClick={() => filesInput.current?.click()}>
            Choose images…
          </button>
        </p>
        <input
          ref={folderInput}
          type="file"
          class="hidden"
          data-testid="folder-input"
          // The folder picker: non-standard but supported by every current browser (a DOM property).
          {...{ webkitdirectory: true }}
          multiple
          onChange={(e) => fromInput(e.target as HTMLInputElement)}
        />
        <input
          ref={filesInput}
          type="file"
          class="hidden"
          data-testid="files-input"
          multiple
          accept="image/*"
          onChange={(e) => fromInput(e.target as HTMLInputElement)}
        />
      </DropZone>
      <label class="block">
        Label for images dropped without a folder{' '}
        <input
          list="known-labels"
          value={label}
          placeholder="e.g. cat"
          onInput={(e) => setLabel((e.target as HTMLInputElement).value)}
        />
        <datalist id="known-labels">
          {props.labels.map((l) => (
            <option key={l} value={l} />
          ))}
        </datalist>
      </label>
      {pending.length > 0 ? (
        <div class="pending">
          <p>
            Ready to upload: <strong>{ready.length}</strong> image(s)
            {byLabel.size > 0 ? ` — ${[...byLabel].map(([l, n]) => `${l} ${n}`).join(', ')}` : ''}
            {unlabelled > 0 ? <span class="bad"> · {unlabelled} need a label (type one above)</span> : null}
          </p>
          {duplicates.length > 0 ? (
            <p class="bad" data-testid="duplicates">
              {duplicates.length} file(s) have the same label and name as another file of this drop and will
              not be sent (only the first is): {[...new Set(duplicates)].slice(0, 10).join(', ')}
              {duplicates.length > 10 ? ', …' : ''}
            </p>
          ) : null}
          <button type="button" class="primary" disabled={busy || ready.length === 0} onClick={start}>
            Upload {ready.length} image(s)
          </button>{' '}
          <button type="button" disabled={busy} onClick={() => setPending([])}>
            Clear
          </button>
        </div>
      ) : null}
      {progress ? (
        <div class="upload-progress">
          <label>
            Uploading {progress.done} / {progress.files} files (
            {Math.round((progress.sent / Math.max(1, progress.total)) * 100)} %)
            <progress max={Math.max(1, progress.total)} value={progress.sent} />
          </label>
        </div>
      ) : null}
      {conflict ? (
        <ExistsDialog
          names={conflict.exists.map((p) => idOf(labelOf(p) ?? '', p.file.name))}
          onAnswer={resolveConflict}
        />
      ) : null}
      {message ? (
        <p class="note" role="status">
          {message}
        </p>
      ) : null}
      <ErrorLine error={error} />
    </div>
  );
}

/** Asks what to do with images that exist in the dataset already: replace them or skip them. */
function ExistsDialog(props: { names: string[]; onAnswer: (replace: boolean) => void }) {
  const shown = props.names.slice(0, 20);
  return (
    <div class="overlay">
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="exists-title">
        <h2 id="exists-title">Already in the dataset</h2>
        <p>
          {props.names.length} image(s) with these names exist already. Replace them with the dropped files,
          or skip them and keep what is stored?
        </p>
        <ul data-testid="existing-names">
          {shown.map((n) => (
            <li key={n}>{n}</li>
          ))}
          {props.names.length > shown.length ? <li>… and {props.names.length - shown.length} more</li> : null}
        </ul>
        <p>
          <button type="button" class="primary" onClick={() => props.onAnswer(true)}>
            Replace them
          </button>{' '}
          <button type="button" onClick={() => props.onAnswer(false)}>
            Skip them
          </button>
        </p>
      </div>
    </div>
  );
}
