// The merchant back office under /backoffice: log-in, orders (list, detail, actions, new link),
// CSV export, password change. Thin edge: each route checks the session, the CSRF token (every
// POST) and its one permission from permissions.ts, calls one service, and picks the page.
//
// Anonymous requests are sent to the log-in page (303); a logged-in role without the permission
// gets 403; a POST without the session's CSRF token gets 403. The log-in form itself has no
// session yet, so it uses a double-submit token (a cookie that the form must echo).
//
// One module per area (api-keys, auth, new-order, orders, refunds, settings, users, webhooks .routes.ts)
// registers its routes on the one router built here; the guard and rendering are in
// backoffice.kit.ts.
import { Router } from '@koa/router';
import { isAppError } from '../../domain/errors.ts';
import { acceptedLanguages } from '../views.ts';
import { BACKOFFICE_PREFIX, createBackofficeKit, pageLocale, requestLocale, type BackofficeRouterDeps } from './backoffice.kit.ts';
import { registerApiKeyRoutes } from './api-keys.routes.ts';
import { registerAuthRoutes } from './auth.routes.ts';
import { registerAcquirerRoutes } from './acquirer.routes.ts';
import { registerNewOrderRoutes } from './new-order.routes.ts';
import { registerOrderRoutes } from './orders.routes.ts';
import { registerRefundRoutes } from './refunds.routes.ts';
import { registerSavedCardRoutes } from './saved-cards.routes.ts';
import { registerSettingsRoutes } from './settings.routes.ts';
import { registerUserRoutes } from './users.routes.ts';
import { registerWebhookRoutes } from './webhooks.routes.ts';

export { BACKOFFICE_PREFIX, SESSION_COOKIE, type BackofficeRouterDeps } from './backoffice.kit.ts';

export function createBackofficeRouter(deps: BackofficeRouterDeps): Router {
  const router = new Router({ prefix: BACKOFFICE_PREFIX });
  const kit = createBackofficeKit(deps);
  const { t, page } = kit;

  router.use((ctx, next) => requestLocale.run({ locale: pageLocale(...acceptedLanguages(ctx.get('accept-language'))) }, next));

  // Client errors inside the back office get a back-office page (with the navigation when logged in).
  router.use(async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
    } catch (err) {
      if (!isAppError(err) || err.httpStatus >= 500) throw err;
      ctx.state.log.info({ status: err.httpStatus, code: err.code }, 'back-office request refused');
      page(ctx, err.httpStatus, 'error', { title: t('error.title'), code: err.code, message: t(`problem.${err.code}`), status: err.httpStatus });
    }
  });

  registerAuthRoutes(router, deps, kit);
  // Before the order routes: GET /orders/new must not reach GET /orders/:id (its 404).
  registerNewOrderRoutes(router, deps, kit);
  const { orderAction, renderDetail } = registerOrderRoutes(router, deps, kit);
  registerSavedCardRoutes(router, deps, kit, renderDetail);
  registerRefundRoutes(router, deps, orderAction);
  registerSettingsRoutes(router, deps, kit);
  registerAcquirerRoutes(router, deps, kit);
  registerUserRoutes(router, deps, kit);
  registerWebhookRoutes(router, deps, kit);
  registerApiKeyRoutes(router, deps, kit);

  return router;
}
