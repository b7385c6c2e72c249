// CSRF tokens for the checkout forms: a random per-browser cookie (HttpOnly, SameSite=Lax) and,
// in each form, HMAC(key, cookie + scope) where the scope is the pay-link's public id. A forged
// cross-site POST can neither read the cookie nor compute the token, and a token is only good for
// its own order. Stateless (no session store), so any instance checks any form; the key is
// derived from the first link-signing key, so nothing new needs configuring.
import { createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';
import { type Context } from 'koa';

export const CSRF_COOKIE = 'pm_csrf';
export const CSRF_FIELD = '_csrf';
const COOKIE_RE = /^[A-Za-z0-9_-]{22,64}$/;

export interface Csrf {
  /** The token for `scope`, setting the browser cookie first when it has none. */
  token(ctx: Context, scope: string): string;
  /** True when the posted token matches the cookie and the scope (constant-time). */
  verify(ctx: Context, scope: string, posted: unknown): boolean;
}

// A new cookie is 18 random bytes. They are drawn from a pool the CSPRNG fills 256 cookies at a
// time (as node's randomUUID keeps a cache), not one call per first page view (bench P2); each
// value is handed out once.
const COOKIE_BYTES = 18;
const cookiePool = Buffer.alloc(COOKIE_BYTES * 256);
let cookiePoolAt = cookiePool.length;

function newCookie(): string {
  if (cookiePoolAt === cookiePool.length) {
    randomFillSync(cookiePool);
    cookiePoolAt = 0;
  }
  const value = cookiePool.toString('base64url', cookiePoolAt, cookiePoolAt + COOKIE_BYTES);
  cookiePoolAt += COOKIE_BYTES;
  return value;
}

export function deriveCsrfKey(linkSecret: string): Buffer {
  return createHmac('sha256', linkSecret).update('paymail-csrf-key-v1').digest();
}

export function createCsrf(key: Buffer): Csrf {
  const mac = (cookie: string, scope: string) =>
    createHmac('sha256', key).update(`${cookie}\n${scope}`).digest('base64url');

  function cookieOf(ctx: Context): string | undefined {
    const v = ctx.cookies.get(CSRF_COOKIE);
    return v && COOKIE_RE.test(v) ? v : undefined;
  }

  return {
    token(ctx, scope) {
      let cookie = ctx.state.csrfCookie ?? cookieOf(ctx);
      if (!cookie) {
        cookie = newCookie();
        // Written as the header itself, as the cookies library would (same attributes, same order):
        // the value is ours and base64url, so its checks and its merging of Set-Cookie headers have
        // nothing to do on a first page view (bench P2). Once per request: kept on ctx.state.
        ctx.append('Set-Cookie', `${CSRF_COOKIE}=${cookie}; path=/; samesite=lax${ctx.secure ? '; secure' : ''}; httponly`);
      }
      ctx.state.csrfCookie = cookie;
      return mac(cookie, scope);
    },
    verify(ctx, scope, posted) {
      const cookie = cookieOf(ctx);
      if (!cookie || typeof posted !== 'string' || posted.length > 100) return false;
      const expected = Buffer.from(mac(cookie, scope));
      const given = Buffer.from(posted);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

declare module 'koa' {
  interface DefaultState {
    /** The CSRF cookie set or read during this request. */
    csrfCookie?: string;
  }
}
