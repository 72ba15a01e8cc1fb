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
