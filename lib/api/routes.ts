/**
 * The HTTP API's routes and binary media types (docs/ARCHITECTURE.md "HTTP API"), in one place with no
 * dependencies: the REST API in infra/, the local API Gateway stand-in and the router in
 * lib/api/app.ts all read them, so the three cannot drift.
 */

/**
 * Who may call a route: `none` needs no API key (the gateway lets it through without one),
 * `predict` is open to predict keys for their own datasets and to admin keys, `admin` to admin keys
 * only (lib/api/auth.ts). A new route declares its role here; docs/openapi.json lists them.
 */
export type RouteRole = 'none' | 'predict' | 'admin';

/** Every route (all served by one proxy-integrated function). */
export const API_ROUTES = [
  { method: 'GET', path: '/health', role: 'none' },
  // This API as OpenAPI 3.1, generated from this table and lib/api/contract.ts (lib/api/openapi.ts).
  { method: 'GET', path: '/openapi.json', role: 'none' },
  { method: 'GET', path: '/datasets', role: 'predict' },
  { method: 'GET', path: '/datasets/{d}', role: 'admin' },
  { method: 'POST', path: '/datasets/{d}/predictions', role: 'predict' },
  { method: 'POST', path: '/datasets/{d}/trainings', role: 'admin' },
  { method: 'GET', path: '/datasets/{d}/model', role: 'predict' },
  { method: 'GET', path: '/datasets/{d}/model/export', role: 'predict' },
  // The report's parts that grow with the held-out images, paginated (lib/api/model-report.ts).
  { method: 'GET', path: '/datasets/{d}/model/predictions', role: 'predict' },
  { method: 'GET', path: '/datasets/{d}/model/curves', role: 'predict' },
  { method: 'GET', path: '/datasets/{d}/quality', role: 'admin' },
  { method: 'POST', path: '/datasets/{d}/reindex', role: 'admin' },
  { method: 'POST', path: '/datasets/{d}/model/promote', role: 'admin' },
  { method: 'GET', path: '/keys', role: 'admin' },
  { method: 'POST', path: '/keys', role: 'admin' },
  { method: 'DELETE', path: '/keys/{id}', role: 'admin' },
  // The console: the page itself is public (static, no data); its data calls need the key.
  { method: 'GET', path: '/', role: 'none' },
  { method: 'POST', path: '/datasets/{d}/uploads', role: 'admin' },
  { method: 'GET', path: '/datasets/{d}/images', role: 'admin' },
  { method: 'GET', path: '/datasets/{d}/failures', role: 'admin' },
  { method: 'GET', path: '/datasets/{d}/models', role: 'admin' },
  { method: 'POST', path: '/datasets/{d}/batches', role: 'admin' },
  { method: 'GET', path: '/datasets/{d}/batches/{id}', role: 'admin' },
  // The console's lazily loaded onnxruntime-web files (public like the page).
  { method: 'GET', path: '/console/ort/{file}', role: 'none' },
  // Closing the loop (lib/api/loop.ts): a predict key's predictions are captured by the policy,
  // but reading captures, reviewing them and monitoring are admin.
  { method: 'GET', path: '/datasets/{d}/settings', role: 'admin' },
  { method: 'PUT', path: '/datasets/{d}/settings', role: 'admin' },
  { method: 'GET', path: '/datasets/{d}/captures', role: 'admin' },
  { method: 'POST', path: '/datasets/{d}/captures/{id}/label', role: 'admin' },
  { method: 'POST', path: '/datasets/{d}/captures/{id}/undo', role: 'admin' },
  { method: 'DELETE', path: '/datasets/{d}/captures/{id}', role: 'admin' },
  { method: 'GET', path: '/datasets/{d}/monitoring', role: 'admin' },
  { method: 'GET', path: '/datasets/{d}/suggestions', role: 'admin' },
  { method: 'POST', path: '/datasets/{d}/suggestions/label', role: 'admin' },
] as const satisfies ReadonlyArray<{
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  role: RouteRole;
}>;

type ApiRoute = (typeof API_ROUTES)[number];

/** `"GET /datasets/{d}"`: one route as a key (a union of exactly the routes above). */
export type RouteKey = ApiRoute extends infer R
  ? R extends { method: infer M extends string; path: infer P extends string }
    ? `${M} ${P}`
    : never
  : never;

/** Request body types API Gateway passes to the function base64-encoded (raw image uploads). */
export const BINARY_MEDIA_TYPES: readonly string[] = ['image/*', 'application/octet-stream'];
