// Security headers on every response (koa-helmet is not a dependency). The CSP allows no inline
// script or style at all: pages load one stylesheet from /assets/ and post forms to themselves.
// Referrer-Policy matters here: a pay-link's query is a capability and must not leak to other sites.
import { type Context, type Middleware } from 'koa';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function setSecurityHeaders(ctx: Context, production: boolean): void {
  ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
  ctx.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
  if (production) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
}

/** Sets the headers before the route runs, so a route may deliberately relax one (e.g. /dev/mail). */
export function securityHeaders(opts: { production: boolean }): Middleware {
  return async (ctx, next) => {
    setSecurityHeaders(ctx, opts.production);
    await next();
  };
}
