/**
 * What the local S3 + SQS endpoint accepts beyond fauxqs' own rules (docs/ARCHITECTURE.md "Local
 * API exposure"): the endpoint has no authentication, so a web page in the developer's browser
 * must not be able to use it.
 * - `Host` must name loopback (DNS rebinding), else 421.
 * - A request with an `Origin` (a page made it) must come from a loopback page and may only do what
 *   the bucket's CORS rule allows a page (lib/storage/upload-cors.ts): a preflight, or a GET / PUT
 *   of a presigned URL. Form POSTs to SQS or S3, unsigned writes: 403.
 * - A presigned PUT must carry a valid signature (lib/local/presigned-check.ts), as on S3: the
 *   signed size and `If-None-Match` cannot be dropped or changed.
 */
import type { buildApp } from 'fauxqs';
import { isLoopbackHost, isLoopbackOrigin, misdirected } from './loopback.ts';
import { isPresigned, verifyPresigned } from './presigned-check.ts';

type FauxApp = ReturnType<typeof buildApp>;

function errorXml(code: string, message: string): string {
  const text = message.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${text}</Message></Error>`;
}

/**
 * Adds the checks as the first `onRequest` hook of the emulator's app (before CORS preflights).
 * `port` is read per request (the port is known once the app listens); `secrets` maps the access
 * key ids presigned URLs may be signed with to their secrets.
 */
export function guardEmulator(
  app: FauxApp,
  port: () => number,
  secrets: Readonly<Record<string, string>>,
): void {
  app.addHook('onRequest', async (request, reply) => {
    const refuse = (status: number, code: string, message: string) => {
      reply.header('connection', 'close');
      return reply.code(status).type('application/xml').send(errorXml(code, message));
    };
    const host = request.headers.host;
    if (!isLoopbackHost(host)) return refuse(421, 'MisdirectedRequest', misdirected(host, port()).message);
    const origin = request.headers.origin;
    const url = request.url;
    if (origin !== undefined) {
      if (!isLoopbackOrigin(origin)) {
        return refuse(403, 'AccessForbidden', 'CORSResponse: This CORS request is not allowed.');
      }
      const method = request.method.toUpperCase();
      const allowed = method === 'OPTIONS' || ((method === 'GET' || method === 'PUT') && isPresigned(url));
      if (!allowed) {
        return refuse(403, 'AccessDenied', 'a page may only GET or PUT presigned URLs on the local endpoint');
      }
    }
    if (request.method.toUpperCase() === 'PUT' && isPresigned(url)) {
      const refusal = verifyPresigned({ method: request.method, url, headers: request.headers }, secrets);
      if (refusal) return refuse(refusal.status, refusal.code, refusal.message);
    }
  });
}
