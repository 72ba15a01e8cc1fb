/**
 * The HTTP API's routes and binary media types (DESIGN.md "HTTP API"), in one place with no
 * dependencies: the REST API in infra/, the local API Gateway stand-in and the router in
 * lib/api/app.ts all read them, so the three cannot drift.
 */

/** Every route (all served by one proxy-integrated function). */
export const API_ROUTES = [
  { method: 'GET', path: '/health' },
  { method: 'GET', path: '/datasets' },
  { method: 'GET', path: '/datasets/{d}' },
  { method: 'POST', path: '/datasets/{d}/predictions' },
  { method: 'POST', path: '/datasets/{d}/trainings' },
  { method: 'GET', path: '/datasets/{d}/model' },
  { method: 'POST', path: '/datasets/{d}/reindex' },
] as const satisfies ReadonlyArray<{ method: 'GET' | 'POST'; path: string }>;

type ApiRoute = (typeof API_ROUTES)[number];

/** `"GET /datasets/{d}"`: one route as a key (a union of exactly the routes above). */
export type RouteKey = ApiRoute extends infer R
  ? R extends { method: infer M extends string; path: infer P extends string }
    ? `${M} ${P}`
    : never
  : never;

/** Request body types API Gateway passes to the function base64-encoded (raw image uploads). */
export const BINARY_MEDIA_TYPES: readonly string[] = ['image/*', 'application/octet-stream'];
