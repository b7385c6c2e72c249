// Operations endpoints: /readyz (the database answers a ping within a short timeout and the
// outbox worker is polling) and /metrics (Prometheus text format, see src/metrics.ts). /healthz
// (process up) stays in app.ts. /metrics is not protected: expose the HTTP port publicly only
// through a reverse proxy that blocks /metrics (docs/operations.md).
import { Router } from '@koa/router';
import { registry } from '../metrics.ts';
import { type Repositories } from '../db/repositories.ts';
import { pingDatabase } from '../db/reachability.ts';
import { withTimeout } from '../domain/with-timeout.ts';

export interface OpsRoutesDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  /** Resolves when the database answers; rejects otherwise. */
  pingDatabase?: () => Promise<void>;
  outboxHealthy: () => boolean;
  pingTimeoutMs?: number;
}

export function createOpsRouter(deps: OpsRoutesDeps): Router {
  const ping = deps.pingDatabase ?? pingDatabase;
  const timeoutMs = deps.pingTimeoutMs ?? 1_000;
  const router = new Router();

  router.get('/readyz', async (ctx) => {
    const checks: Record<string, { ok: boolean; error?: string }> = {};
    try {
      await withTimeout(ping(), timeoutMs, 'database ping');
      checks.database = { ok: true };
    } catch (err) {
      checks.database = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    checks.outbox = deps.outboxHealthy() ? { ok: true } : { ok: false, error: 'outbox worker not polling' };
    const ready = Object.values(checks).every((c) => c.ok);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'unavailable', checks };
  });

  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });

  return router;
}
