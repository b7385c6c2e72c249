// The Koa application (no listen: main.ts and tests bind it). Middleware order matters: request id
// and logger first, then security headers (helmet) and the error mapper, static assets, the form body
// parser, /healthz, the checkout routes and whatever routers the composition root adds.
import { bodyParser } from '@koa/bodyparser';
import { type Router } from '@koa/router';
import Koa from 'koa';
import { AppError } from '../domain/errors.ts';
import { type Logger } from '../logger.ts';
import { createCheckoutRouter, type CheckoutRoutesDeps } from './checkout/checkout.routes.ts';
import { errorHandler } from './middleware/error-handler.ts';
import { requestContext } from './middleware/request-context.ts';
import { createSecurityHeaders } from './middleware/security-headers.ts';
import { staticAssets } from './middleware/static-assets.ts';
import { PUBLIC_DIR } from '../paths.ts';
import { acceptedLanguages, type Views } from './views.ts';

export const DEFAULT_PUBLIC_DIR = PUBLIC_DIR;

export interface HttpAppOptions {
  logger: Logger;
  views: Views;
  checkout: CheckoutRoutesDeps;
  extraRouters?: Router[];
  production: boolean;
  /** Trust X-Forwarded-* (behind a reverse proxy), so ctx.ip is the customer's address. */
  proxy?: boolean;
  publicDir?: string;
}

export function createHttpApp(opts: HttpAppOptions): Koa {
  const app = new Koa({ proxy: opts.proxy ?? false });
  // Errors are logged by errorHandler; this only catches what escapes it (e.g. a broken socket).
  app.on('error', (err: unknown) => opts.logger.warn({ err }, 'http error outside a request'));

  app.use(requestContext(opts.logger));
  const securityHeaders = createSecurityHeaders({ production: opts.production });
  app.use(securityHeaders.middleware);
  app.use(errorHandler({ views: opts.views, securityHeaders }));
  app.use(staticAssets(opts.publicDir ?? DEFAULT_PUBLIC_DIR));
  // Forms only, and small: a checkout form is well under 1 kB.
  app.use(bodyParser({ enableTypes: ['form'], formLimit: '16kb' }));
  app.use(async (ctx, next) => {
    if (ctx.path === '/healthz' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'ok' };
      return;
    }
    await next();
  });

  // `/`: a small start page (the product, the back-office log-in; in development, the first steps).
  app.use(async (ctx, next) => {
    if (ctx.path !== '/' || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const locale = opts.views.resolveLocale(ctx.query['lang'], ...acceptedLanguages(ctx.get('accept-language')));
    ctx.state.locale = locale;
    ctx.type = 'html';
    ctx.body = opts.views.render('home', {
      locale,
      title: opts.views.t(locale, 'home.title'),
      langNav: opts.views.langNav(ctx.path, ctx.querystring, locale),
      development: !opts.production,
    });
  });

  const checkout = createCheckoutRouter({ ...opts.checkout, views: opts.views });
  app.use(checkout.routes());
  app.use(checkout.allowedMethods());
  for (const router of opts.extraRouters ?? []) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  app.use(async (ctx, next) => {
    await next();
    if (ctx.body == null && ctx.status === 404) throw new AppError('NOT_FOUND', 'Not Found', { httpStatus: 404 });
  });
  return app;
}
