// The CSRF cookie is written as the Set-Cookie header itself (src/http/middleware/csrf.ts): it must
// be the header Koa's ctx.cookies (the cookies library) writes for the same cookie, over http and
// https, and be set once per response however many forms the page carries.
import assert from 'node:assert/strict';
import { type AddressInfo } from 'node:net';
import Koa from 'koa';
import { createCsrf, CSRF_COOKIE, deriveCsrfKey } from '../../src/http/middleware/csrf.ts';

const csrf = createCsrf(deriveCsrfKey('test-secret'));

async function withApp<T>(run: (url: string) => Promise<T>): Promise<T> {
  const app = new Koa({ proxy: true });
  app.use((ctx) => {
    if (ctx.path === '/reference') {
      // The library's header for a given cookie value.
      ctx.cookies.set(CSRF_COOKIE, String(ctx.query['v']), { httpOnly: true, sameSite: 'lax', path: '/', secure: ctx.secure, overwrite: true });
      ctx.body = 'ok';
      return;
    }
    ctx.body = [csrf.token(ctx, 'order-1'), csrf.token(ctx, 'order-1')];
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    return await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    await new Promise((r) => server.close(r));
  }
}

describe('CSRF cookie', () => {
  for (const https of [false, true]) {
    it(`is the header Koa's cookies write, once, over ${https ? 'https' : 'http'}`, () =>
      withApp(async (base) => {
        const headers: Record<string, string> = https ? { 'x-forwarded-proto': 'https' } : {};
        const res = await fetch(`${base}/`, { headers });
        const tokens = (await res.json()) as string[];
        const set = res.headers.getSetCookie();
        assert.equal(set.length, 1);
        const value = new RegExp(`^${CSRF_COOKIE}=([\\w-]{24});`).exec(set[0]!)?.[1];
        assert.ok(value, set[0]);
        const reference = (await fetch(`${base}/reference?v=${value}`, { headers })).headers.getSetCookie();
        assert.deepEqual(set, reference);
        assert.match(set[0]!, https ? /; secure; httponly$/ : /; samesite=lax; httponly$/);
        // Both forms of the page carry the same token, good for that cookie and that order only.
        assert.equal(tokens[0], tokens[1]);
        const ctx = { cookies: { get: (n: string) => (n === CSRF_COOKIE ? value : undefined) } } as never;
        assert.ok(csrf.verify(ctx, 'order-1', tokens[0]));
        assert.ok(!csrf.verify(ctx, 'order-2', tokens[0]));
      }));
  }
});
