// Security headers on every response, set by koa-helmet (helmet) with a strict Content Security
// Policy: scripts and styles only from this origin (/assets/), no inline script or style, forms
// post only to this origin, never framed. Referrer-Policy matters here: a pay-link's query is a
// capability and must not leak to other sites. Permissions-Policy is not helmet's, so set here.
import { type Context, type Middleware } from 'koa';
import helmet from 'koa-helmet';

const DIRECTIVES = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'"],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
};

function helmetFor(production: boolean): Middleware {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      // upgrade-insecure-requests only where the site is served over https.
      directives: production ? { ...DIRECTIVES, upgradeInsecureRequests: [] } : DIRECTIVES,
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    // HSTS on a plain-http development host would pin browsers to https for localhost.
    strictTransportSecurity: production ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  });
}

const PERMISSIONS_POLICY = 'camera=(), microphone=(), geolocation=(), payment=()';

export interface SecurityHeaders {
  middleware: Middleware;
  /** Sets the headers again, e.g. after the error handler cleared the response. */
  apply(ctx: Context): Promise<void>;
}

/** Sets the headers before the route runs, so a route may deliberately relax one (e.g. /dev/mail). */
export function createSecurityHeaders(opts: { production: boolean }): SecurityHeaders {
  const h = helmetFor(opts.production);
  const apply = async (ctx: Context) => {
    await h(ctx, async () => {});
    ctx.set('Permissions-Policy', PERMISSIONS_POLICY);
  };
  return {
    apply,
    middleware: async (ctx, next) => {
      await apply(ctx);
      await next();
    },
  };
}
