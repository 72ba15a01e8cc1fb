/** Small formatting helpers and shared bits of UI. */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { formatPercent } from '../../lib/util/format.ts';

/** A fraction as a percentage, written as the report and the CLI write it (lib/util/format.ts). */
export function pct(x: number | null | undefined, digits = 1): string {
  return formatPercent(x ?? null, digits);
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

export function ms(x: number | undefined): string {
  return x === undefined ? '—' : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;
}

/**
 * Marks numbers that come from a model on seeded random VGG16 weights (a demo, not ImageNet
 * features): shown next to every such number, in words (not colour alone).
 */
export function RandomBadge({ show }: { show: boolean }) {
  if (!show) return null;
  return (
    <span
      class="badge warn"
      title="features from seeded random VGG16 weights, not ImageNet ones: demo numbers"
    >
      ⚠ random weights
    </span>
  );
}

/** An inline error line. */
export function ErrorLine({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      ✖ {error instanceof Error ? error.message : String(error)}
    </p>
  );
}

/** A horizontal bar with its value written out (readable without colour). */
export function Bar({
  value,
  label,
  kind = 'plain',
  compact = false,
}: {
  value: number;
  label: string;
  kind?: string;
  /** Inside a table whose column names the bar: no label text. */
  compact?: boolean;
}) {
  const w = Math.max(0, Math.min(1, value)) * 100;
  return (
    <div class={`bar-row ${compact ? 'compact' : ''}`}>
      {compact ? null : <span class="bar-label">{label}</span>}
      <span class="bar" role="img" aria-label={`${label}: ${(value * 100).toFixed(1)} %`}>
        <span class={`bar-fill ${kind}`} style={{ width: `${w}%` }} />
      </span>
      <span class="bar-value">{(value * 100).toFixed(1)} %</span>
    </div>
  );
}

/** A table head of column names. */
export function TableHead({ columns }: { columns: readonly string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => (
          <th key={c} scope="col">
            {c}
          </th>
        ))}
      </tr>
    </thead>
  );
}

/** A drop target: highlighted while something is dragged over it, `onDrop` gets the drop. */
export function DropZone(props: {
  label: string;
  onDrop: (e: DragEvent) => void;
  children: ComponentChildren;
}) {
  const [over, setOver] = useState(false);
  return (
    <section
      aria-label={props.label}
      class={`dropzone ${over ? 'over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        props.onDrop(e);
      }}
    >
      {props.children}
    </section>
  );
}
