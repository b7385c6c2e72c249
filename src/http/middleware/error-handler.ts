// Maps errors to responses once, like Koa itself: client errors (`expose`, e.g. an AppError with a
// 4xx status or a body-parser 413) show their message; 5xx answers show only the status text and
// the real error goes to the request's log. HTML clients get the error page, others JSON.
import { STATUS_CODES } from 'node:http';
import { type Middleware } from 'koa';
import { isAppError } from '../../domain/errors.ts';
import { acceptedLanguages, type Views } from '../views.ts';
import { type SecurityHeaders } from './security-headers.ts';

interface HttpLikeError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  message?: string;
}

export function errorHandler(opts: { views: Views; securityHeaders: SecurityHeaders }): Middleware {
  const { views } = opts;
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      let status = 500;
      let expose = false;
      let code = 'INTERNAL';
      if (isAppError(err)) {
        status = err.httpStatus;
        expose = err.expose;
        code = err.code;
      } else if (err && typeof err === 'object') {
        const e = err as HttpLikeError;
        const s = e.status ?? e.statusCode;
        if (typeof s === 'number' && s >= 400 && s < 600) status = s;
        expose = status < 500 && e.expose !== false;
        code = status < 500 ? 'HTTP_ERROR' : 'INTERNAL';
      }
      const statusText = STATUS_CODES[status] ?? 'Error';
      const message = expose && err instanceof Error ? err.message : statusText;
      if (status >= 500) ctx.state.log?.error({ err, status }, 'request failed');
      else ctx.state.log?.info({ status, code }, 'request refused');

      // Start from a clean response, as Koa's own error handler does, keeping the protective headers.
      for (const name of ctx.res.getHeaderNames()) ctx.res.removeHeader(name);
      opts.securityHeaders.apply(ctx);
      if (ctx.state.requestId) ctx.set('x-request-id', ctx.state.requestId);
      ctx.set('Cache-Control', 'no-store');
      ctx.status = status;
      if (ctx.accepts('html', 'json') === 'json') {
        ctx.body = { error: { code: expose ? code : 'INTERNAL', message } };
        return;
      }
      const locale = ctx.state.locale ?? views.resolveLocale(ctx.query['lang'], ...acceptedLanguages(ctx.get('accept-language')));
      try {
        ctx.type = 'html';
        ctx.body = views.render('error', {
          locale,
          title: views.t(locale, 'error.title'),
          status,
          message: expose ? message : views.t(locale, status >= 500 ? 'error.server' : 'error.generic'),
          requestId: ctx.state.requestId,
        });
      } catch (renderErr) {
        ctx.state.log?.error({ err: renderErr }, 'error page failed to render');
        ctx.type = 'text';
        ctx.body = message;
      }
    }
  };
}
