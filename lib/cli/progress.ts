/**
 * A one-line progress display on stderr for long work: `label [#####.....] 12/40 30% 3.1/s ETA 9s`.
 * Redraws in place on a TTY (at most ~10 times a second); on a pipe/CI prints a line every 10 %.
 */
export interface Progress {
  tick(n?: number, note?: string): void;
  done(summary?: string): void;
}

export function createProgress(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  const start = Date.now();
  let count = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  const tty = stream.isTTY === true;
  const render = (note?: string): string => {
    const frac = total > 0 ? Math.min(1, count / total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const elapsed = (Date.now() - start) / 1000;
    // A rate over the first fraction of a second is noise (one tick in 1 ms reads as 1000/s).
    const rate = elapsed >= 0.5 ? count / elapsed : 0;
    const eta = rate > 0 ? Math.max(0, (total - count) / rate) : 0;
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${count}/${total} ${Math.round(frac * 100)}% ${rate > 0 ? `${rate.toFixed(1)}/s ETA ${Math.ceil(eta)}s` : '…'}${note ? ` ${note}` : ''}`;
  };
  return {
    tick(n = 1, note) {
      count += n;
      const now = Date.now();
      if (tty) {
        if (now - lastDraw > 100 || count >= total) {
          stream.write(`\r\x1b[2K${render(note)}`);
          lastDraw = now;
        }
      } else {
        const decile = total > 0 ? Math.floor((count / total) * 10) : 10;
        if (decile !== lastDecile) {
          stream.write(`${render(note)}\n`);
          lastDecile = decile;
        }
      }
    },
    done(summary) {
      if (tty) stream.write(`\r\x1b[2K${render()}\n`);
      if (summary) stream.write(`${summary}\n`);
    },
  };
}
