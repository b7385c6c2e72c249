// Security headers on every response, as helmet sets them, with a strict Content Security
// Policy: scripts and styles only from this origin (/assets/), no inline script or style, forms
// post only to this origin, never framed. Referrer-Policy matters here: a pay-link's query is a
// capability and must not leak to other sites. Permissions-Policy is not helmet's, so set here.
// No directive depends on the request (no nonce, no function), so helmet is asked once, at start,
// and every response gets the headers it set (bench P2: its chain of middleware ran per request).
import { type IncomingMessage, type ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';
import { type Context, type Middleware } from 'koa';

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

function helmetOptions(production: boolean): HelmetOptions {
  return {
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
  };
}

/** What helmet does to a response with these options: the headers it sets and those it removes. */
function recordHelmet(options: HelmetOptions): { set: Array<[string, string]>; remove: string[] } {
  const set: Array<[string, string]> = [];
  const remove: string[] = [];
  const res = {
    setHeader: (name: string, value: unknown) => void set.push([name, String(value)]),
    removeHeader: (name: string) => void remove.push(name),
  };
  let done = false;
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
    done = true;
  });
  if (!done || set.length === 0) throw new Error('helmet did not set its headers at once');
  return { set, remove };
}

const PERMISSIONS_POLICY = 'camera=(), microphone=(), geolocation=(), payment=()';

export interface SecurityHeaders {
  middleware: Middleware;
  /** Sets the headers again, e.g. after the error handler cleared the response. */
  apply(ctx: Context): void;
}

/** Sets the headers before the route runs, so a route may deliberately relax one (e.g. /dev/mail). */
export function createSecurityHeaders(opts: { production: boolean }): SecurityHeaders {
  const { set, remove } = recordHelmet(helmetOptions(opts.production));
  set.push(['Permissions-Policy', PERMISSIONS_POLICY]);
  const apply = (ctx: Context) => {
    for (const name of remove) ctx.res.removeHeader(name);
    for (const [name, value] of set) ctx.res.setHeader(name, value);
  };
  return {
    apply,
    middleware: (ctx, next) => {
      apply(ctx);
      return next();
    },
  };
}
