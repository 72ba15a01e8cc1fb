/**
 * Number and text formatting shared by the pages and texts people read (report.html, the quality
 * section, the CLI's tables, the local stack's demo summary): one rule each, so a percentage or an
 * escaped label looks the same everywhere.
 */

/**
 * Python's `format(x, '.{digits}f')`: correctly rounded, exact ties to even (JS `toFixed`
 * rounds exact ties up, e.g. 0.125 → '0.13' where Python prints '0.12').
 */
export function formatFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const wide = Math.abs(x).toFixed(Math.min(100, digits + 30));
  const cut = wide.indexOf('.') + 1 + digits;
  const rest = wide.slice(cut);
  let out = x.toFixed(digits);
  if (/^50*$/.test(rest) && Math.abs(x) < 1e15) {
    // Exact tie: toFixed went away from zero; go to the even neighbour instead.
    const kept = wide.slice(0, cut).replace('.', '');
    const lastDigit = Number(kept.at(-1));
    if (lastDigit % 2 === 0) {
      const truncated = wide.slice(0, digits === 0 ? cut - 1 : cut);
      out = (x < 0 ? '-' : '') + truncated;
    }
  }
  return out;
}

/**
 * A fraction as a percentage with `digits` decimals and a space before the sign, rounded like
 * {@link formatFixed}; `—` for a missing value (e.g. the accuracy of a model without a holdout).
 *
 * @example formatPercent(0.9731) // '97.3 %'
 */
export function formatPercent(x: number | null, digits = 1): string {
  return x === null ? '—' : `${formatFixed(x * 100, digits)} %`;
}

/** Escapes text for HTML element content and quoted attribute values (`&<>"'` as numeric references). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
