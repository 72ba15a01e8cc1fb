/**
 * What the local servers (API on :3000, S3 + SQS on :4566, Step Functions on :8083) accept from
 * the one caller that can reach loopback without being trusted: a web page in the developer's
 * browser. Listening on 127.0.0.1 keeps the network out, not pages: DNS rebinding points a name
 * the page controls (`evil.example`) at 127.0.0.1, making the page "same-origin" with the server,
 * so every server checks that the `Host` header names loopback. Which browser origins each server
 * accepts is its own rule (docs/ARCHITECTURE.md "Local API exposure").
 */
import type { ServerResponse } from 'node:http';
import { TlearnError } from '../errors.ts';

/** Host names that always mean this machine (a DNS name cannot be rebound to them). */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** A request whose `Host` names another server than this loopback one (DNS rebinding). */
export class MisdirectedRequestError extends TlearnError {
  constructor(message: string) {
    super('MisdirectedRequest', message, 421);
  }
}

function parseAuthority(value: string): URL | undefined {
  try {
    return new URL(`http://${value}`);
  } catch {
    return undefined;
  }
}

/**
 * Whether a `Host` header names this machine by a loopback name: `127.0.0.1`, `localhost` or
 * `[::1]`, with any port (an SSH tunnel `-L 8000:127.0.0.1:3000` makes the browser send
 * `localhost:8000`). DNS rebinding always arrives with the attacker's name, so the name is the check.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined || host === '' || /[/?#@\s]/.test(host)) return false;
  const url = parseAuthority(host);
  return url !== undefined && LOOPBACK_HOSTS.has(url.hostname);
}

/** Whether an `Origin` is a page served from this machine (`http://127.0.0.1:…`, `localhost`, `[::1]`). */
export function isLoopbackOrigin(origin: string | undefined): boolean {
  if (origin === undefined || !/^http:\/\/[^/]+$/i.test(origin.trim())) return false;
  const url = parseAuthority(origin.trim().slice('http://'.length));
  return url !== undefined && LOOPBACK_HOSTS.has(url.hostname);
}

/** The 421 thrown for a `Host` that is not loopback, naming what to use instead. */
export function misdirected(host: string | undefined, port: number): MisdirectedRequestError {
  const shown = host === undefined ? '(none)' : host.length > 100 ? `${host.slice(0, 100)}…` : host;
  return new MisdirectedRequestError(
    `this local server answers only to the host names 127.0.0.1, localhost or [::1] (e.g. Host 127.0.0.1:${port}), not ${shown}`,
  );
}

/** Writes a local server's refusal in the API's error shape `{error: {code, message}}`. */
export function sendJsonError(res: ServerResponse, err: TlearnError, requestId: string): { status: number } {
  const text = JSON.stringify({ error: { code: err.code, message: err.message } });
  res.writeHead(err.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': requestId,
    connection: 'close',
  });
  res.end(text);
  return { status: err.status };
}
