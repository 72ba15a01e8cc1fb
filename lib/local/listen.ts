import type { Server } from 'node:http';
import { PortInUseError } from './emulator.ts';

/**
 * Binds a server to 127.0.0.1 only (the local stack never listens beyond loopback) and returns the
 * port it got (`port` 0 picks a free one). A taken port becomes PortInUseError naming the flag
 * that changes it.
 */
export async function listenOnLoopback(server: Server, port: number, flag: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new PortInUseError(`port ${port} on 127.0.0.1 is in use; pick another with ${flag}`, {
              cause: err,
            })
          : err,
      );
    });
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : port;
}

/**
 * The graceful stop both local servers share: stop accepting connections, close idle keep-alive
 * ones, wait for `drain(graceMs)` (the server's own in-flight work, bounded by the grace period),
 * then close whatever connections remain and wait for the server to close. Calling it again is a
 * no-op. `graceMs` defaults to 30 s.
 */
export function gracefulStop(
  server: Server,
  drain: (graceMs: number) => Promise<unknown>,
): (graceMs?: number) => Promise<void> {
  let stopped = false;
  return async (graceMs = 30_000) => {
    if (stopped) return;
    stopped = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await drain(graceMs);
    server.closeAllConnections();
    await closed;
  };
}
