// Correlation id per HTTP request: taken from a sane incoming x-request-id or generated, echoed
// back, and bound into a child logger (ctx.state.log). One access line per request, with the path
// only: the query carries the pay-link signature and bodies may carry card data, so neither is logged.
import { type Middleware } from 'koa';
import { nanoid } from 'nanoid';
import { type Logger } from '../../logger.ts';

declare module 'koa' {
  interface DefaultState {
    requestId: string;
    log: Logger;
    /** The page language once a route has chosen it; the error page uses it too. */
    locale?: string;
  }
}

const INCOMING_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export function requestContext(logger: Logger): Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = INCOMING_ID.test(incoming) ? incoming : nanoid(12);
    ctx.state.requestId = requestId;
    ctx.state.log = logger.child({ reqId: requestId });
    ctx.set('x-request-id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      ctx.state.log.info(
        { method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - started) },
        'http request',
      );
    }
  };
}
