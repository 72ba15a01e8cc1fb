/**
 * Polls `probe` until it returns a value; the error names what was awaited, the last thing seen
 * (`lastSeen`) and the last error.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 250,
  lastSeen: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const seen = lastSeen();
      throw new Error(
        `gave up after ${timeoutMs / 1000} s waiting for ${what}${seen ? `; last seen ${seen}` : ''}`,
        {
          cause: last,
        },
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
