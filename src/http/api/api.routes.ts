// The server API under /api/v1 (issue 12 part 2): JSON over HTTPS for merchants' servers.
//
// Thin edge, one module per area (payment-links, orders .routes.ts) registering its routes and
// its OpenAPI paths; this file composes them behind what every request goes through:
//   1. errors become RFC 9457 problem details with the stable code (problem.ts);
//   2. `Authorization: Bearer <API key>` (src/services/api-key.service.ts): 401 otherwise;
//   3. the per-key rate limit (API_RATE_LIMIT per minute, counted in the database so that every
//      instance shares it): 429 with Retry-After;
//   4. the area's route; writes refuse read-only keys (403) and honour Idempotency-Key (api.kit.ts);
//   5. anything else under /api/v1: 404 (or 405 with Allow) as a problem.
// GET /api/v1/openapi.json (the OpenAPI 3.1 document) and /api/v1/problems/<code> need no key.
import { Router } from '@koa/router';
import { errorCodeSpec } from '../../domain/error-codes.ts';
import { AppError } from '../../domain/errors.ts';
import { STATUS_CODES } from 'node:http';
import { API_PREFIX, caller, createIdempotency, type ApiRouterDeps } from './api.kit.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { orderPaths, registerOrderRoutes } from './orders.routes.ts';
import { paymentLinkPaths, registerPaymentLinkRoutes } from './payment-links.routes.ts';
import { customerPaths, registerCustomerRoutes } from './customers.routes.ts';
import { problemMiddleware, problemType } from './problem.ts';

export { API_PREFIX, type ApiRouterDeps } from './api.kit.ts';

/** The version of the API's contract in the OpenAPI document (additions keep v1). */
export const API_VERSION = '1.0.0';
const RATE_WINDOW_MS = 60_000;
const PUBLIC_PATHS = new Set([`${API_PREFIX}/openapi.json`]);
const FALLBACK = 'api-fallback';

export function createApiRouter(deps: ApiRouterDeps): Router {
  const now = deps.now ?? (() => new Date());
  const router = new Router({ prefix: API_PREFIX });
  const idempotency = createIdempotency({ repos: deps.repos, publicUrl: deps.publicUrl, idempotencyWaitMs: deps.idempotencyWaitMs, now });
  const openapi = JSON.stringify(buildOpenApiDocument({ publicUrl: deps.publicUrl, version: API_VERSION, paths: [paymentLinkPaths, orderPaths, customerPaths] }));

  router.use(problemMiddleware(deps.publicUrl));
  router.use(async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    if (PUBLIC_PATHS.has(ctx.path) || ctx.path.startsWith(`${API_PREFIX}/problems/`)) return next();
    const apiCaller = await deps.apiKeys.authenticate(ctx.get('authorization') || undefined);
    ctx.state.apiCaller = apiCaller;
    ctx.state.log = ctx.state.log?.child({ merchantId: apiCaller.merchant._id, apiKeyId: apiCaller.key.id });
    const waitMs = await deps.repos.apiKeys.hit(apiCaller.key.id, now(), deps.rateLimit, RATE_WINDOW_MS);
    if (waitMs !== undefined) {
      const retryAfterSec = Math.max(1, Math.ceil(waitMs / 1000));
      throw new AppError('API_RATE_LIMITED', `more than ${deps.rateLimit} requests a minute with this API key; retry in ${retryAfterSec} s`, {
        httpStatus: 429,
        details: { retryAfterSec },
      });
    }
    return next();
  });

  router.get('/openapi.json', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.type = 'application/json';
    ctx.body = openapi;
  });

  router.get('/problems/:code', (ctx) => {
    const code = String(ctx.params['code'] ?? '');
    // INTERNAL: the one code of every server error (its cause is never shown).
    const spec = code === 'INTERNAL' ? { httpStatus: 500 } : errorCodeSpec(code);
    if (!spec) throw new AppError('API_ROUTE_NOT_FOUND', `no problem type ${code}`, { httpStatus: 404 });
    ctx.body = { type: problemType(deps.publicUrl, code), code, status: spec.httpStatus, title: STATUS_CODES[spec.httpStatus] ?? 'Error' };
  });

  registerPaymentLinkRoutes(router, deps, idempotency);
  registerOrderRoutes(router, deps, idempotency);
  // Saved cards (issue 12 part 3): merchant-initiated charges.
  registerCustomerRoutes(router, deps, idempotency);

  // Last: whatever no route above answered (also /api/v1 itself).
  const fallback: Parameters<typeof router.all>[1] = (ctx) => {
    caller(ctx);
    const allow = [
      ...new Set(
        router
          .match(ctx.path, ctx.method)
          .path.filter((l) => l.name !== FALLBACK)
          .flatMap((l) => l.methods),
      ),
    ];
    if (allow.length > 0 && ctx.method === 'OPTIONS') {
      ctx.set('Allow', [...allow, 'OPTIONS'].join(', '));
      ctx.status = 204;
      return;
    }
    if (allow.length > 0) {
      throw new AppError('API_METHOD_NOT_ALLOWED', `${ctx.method} is not allowed here; use ${allow.join(', ')}`, { httpStatus: 405, details: { allow } });
    }
    throw new AppError('API_ROUTE_NOT_FOUND', `no such endpoint: ${ctx.method} ${ctx.path}`, { httpStatus: 404 });
  };
  router.all(FALLBACK, '/', fallback);
  router.all(FALLBACK, '/{*rest}', fallback);

  return router;
}
