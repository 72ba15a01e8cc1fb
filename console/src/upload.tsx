/**
 * Upload by drag and drop (files or whole folders: a file's folder name is its label) or with the
 * file/folder pickers; loose files take the label picked here. Images go straight to S3 through
 * presigned PUT URLs from `POST /datasets/{d}/uploads`, with a progress bar over the bytes sent.
 */
import { useRef, useState } from 'preact/hooks';
import { api, putWithProgress } from './api.ts';
import { DropZone, ErrorLine } from './format.tsx';

const IMAGE_RE = /\.(jpe?g|png|webp|gif|tiff?)$/i;
const PRESIGN_CHUNK = 200;
const PARALLEL_PUTS = 4;

/** A file to upload; `folder` is the name of the folder it came from (its label), if any. */
interface Pending {
  file: File;
  folder: string | null;
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

export function Upload(props: {
  dataset: string;
  labels: string[];
  onUploading: (b: boolean) => void;
  onDone: () => void;
}) {
  const [pending, setPending] = useState<Pending[]>([]);
  const [label, setLabel] = useState('');
  const [progress, setProgress] = useState<{
    sent: number;
    total: number;
    files: number;
    done: number;
  } | null>(null);
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

  const labelOf = (p: Pending) => p.folder ?? (label.trim() || null);
  const byLabel = new Map<string, number>();
  let unlabelled = 0;
  for (const p of pending) {
    const l = labelOf(p);
    if (l === null) unlabelled += 1;
    else byLabel.set(l, (byLabel.get(l) ?? 0) + 1);
  }

  const start = async () => {
    const todo = pending.filter((p) => labelOf(p) !== null);
    const total = todo.reduce((a, p) => a + p.file.size, 0);
    const sentBy = new Map<number, number>();
    setError(null);
    setMessage(null);
    setProgress({ sent: 0, total, files: todo.length, done: 0 });
    props.onUploading(true);
    let done = 0;
    const rejected: string[] = [];
    try {
      for (let i = 0; i < todo.length; i += PRESIGN_CHUNK) {
        const chunk = todo.slice(i, i + PRESIGN_CHUNK);
        const r = await api('POST /datasets/{d}/uploads', {
          params: { d: props.dataset },
          // `todo` holds labelled files only (the `?? ''` is for the type checker).
          body: {
            files: chunk.map((p) => ({ label: labelOf(p) ?? '', name: p.file.name, size: p.file.size })),
          },
        });
        rejected.push(...r.rejected.map((x) => `${x.name}: ${x.reason}`));
        const jobs = r.uploads.map((u) => {
          const index = chunk.findIndex((p) => p.file.name === u.name && labelOf(p) === u.label);
          return { u, p: chunk[index], id: i + index };
        });
        let next = 0;
        const worker = async () => {
          while (next < jobs.length) {
            const job = jobs[next++];
            if (!job?.p) continue;
            await putWithProgress(job.u.url, job.p.file, job.u.headers, (sent) => {
              sentBy.set(job.id, sent);
              const sum = [...sentBy.values()].reduce((a, b) => a + b, 0);
              setProgress((cur) => (cur ? { ...cur, sent: sum } : cur));
            });
            sentBy.set(job.id, job.p.file.size);
            done += 1;
            setProgress((cur) => (cur ? { ...cur, done } : cur));
          }
        };
        await Promise.all(Array.from({ length: PARALLEL_PUTS }, worker));
      }
      setPending((cur) => cur.filter((p) => labelOf(p) === null));
      setMessage(
        `Uploaded ${done} image(s)${rejected.length ? `; ${rejected.length} refused: ${rejected.slice(0, 3).join('; ')}` : ''}. Features are extracted now; a training starts by itself.`,
      );
      props.onDone();
    } catch (err) {
      setError(err);
    } finally {
      props.onUploading(false);
    }
  };

  const busy = progress !== null && progress.done < progress.files && !error;
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
            Ready to upload: <strong>{pending.length - unlabelled}</strong> image(s)
            {byLabel.size > 0 ? ` — ${[...byLabel].map(([l, n]) => `${l} ${n}`).join(', ')}` : ''}
            {unlabelled > 0 ? <span class="bad"> · {unlabelled} need a label (type one above)</span> : null}
          </p>
          <button
            type="button"
            class="primary"
            disabled={busy || pending.length === unlabelled}
            onClick={start}
          >
            Upload {pending.length - unlabelled} image(s)
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
      {message ? (
        <p class="note" role="status">
          {message}
        </p>
      ) : null}
      <ErrorLine error={error} />
    </div>
  );
}
