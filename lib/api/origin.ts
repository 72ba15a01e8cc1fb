/**
 * Cross-site request refusal: a browser page on another origin can make a user's browser send
 * "simple" requests (a `text/plain` POST, a form, an `<img>` GET) to the API without a CORS
 * preflight. With an API key the browser has nothing to send; without one (the local stack without
 * `--api-key`) every request is admin, so any page the developer visits could train or start
 * batches. The rule runs in the function, so it holds on AWS and locally alike
 * (docs/ARCHITECTURE.md "Local API exposure").
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { ForbiddenError } from './errors.ts';
import { getHeader } from './http.ts';

/** A browser request from a page of another origin (or site). */
export class CrossOriginRequestError extends ForbiddenError {
  constructor(message: string) {
    super(message, { code: 'CrossOriginRequest' });
  }
}

/**
 * The API's own origin as the browser sees it: `X-Forwarded-Proto` (API Gateway sets `https`;
 * the local stand-in sends none, so `http`) and the `Host` header.
 */
export function ownOrigin(event: Pick<APIGatewayProxyEvent, 'headers'>): string | undefined {
  const host = getHeader(event, 'host');
  if (host === undefined || host === '') return undefined;
  const proto = (getHeader(event, 'x-forwarded-proto') ?? 'http').split(',')[0]?.trim().toLowerCase();
  return `${proto}://${host.toLowerCase()}`;
}

/**
 * Throws 403 `CrossOriginRequest` for a browser request that another page made:
 * - an `Origin` header (browsers send it on every cross-origin request and on same-origin POSTs)
 *   that is neither the API's own origin nor `allowedOrigin` (the deployment's CORS origin; `*`
 *   admits any), `Origin: null` included;
 * - without `Origin`, `Sec-Fetch-Site: cross-site | same-site` (a no-cors GET such as `<img>`),
 *   except a top-level navigation (`Sec-Fetch-Mode: navigate`) by GET, so a link to the console
 *   still opens it.
 * Clients that are not browsers (the CLI, curl, SDKs) send neither header and pass.
 */
export function checkRequestOrigin(
  event: Pick<APIGatewayProxyEvent, 'headers' | 'httpMethod'>,
  allowedOrigin: string | undefined,
): void {
  const origin = getHeader(event, 'origin');
  if (origin !== undefined) {
    const given = origin.trim().toLowerCase();
    if (allowedOrigin === '*' || given === allowedOrigin?.toLowerCase() || given === ownOrigin(event)) return;
    const shown = given.length > 100 ? `${given.slice(0, 100)}…` : given;
    throw new CrossOriginRequestError(
      `requests from pages of another origin (${shown}) are refused; use the console served by this API, the CLI or curl`,
    );
  }
  const site = getHeader(event, 'sec-fetch-site')?.trim().toLowerCase();
  if (site !== 'cross-site' && site !== 'same-site') return;
  const navigation =
    getHeader(event, 'sec-fetch-mode')?.trim().toLowerCase() === 'navigate' &&
    (event.httpMethod === 'GET' || event.httpMethod === 'HEAD');
  if (navigation) return;
  throw new CrossOriginRequestError(
    `requests made by a page of another site (Sec-Fetch-Site: ${site}) are refused; use the console served by this API, the CLI or curl`,
  );
}
