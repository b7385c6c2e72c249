// The security headers are helmet's, asked once at start (src/http/middleware/security-headers.ts):
// each response gets them, the production set adds HSTS and upgrade-insecure-requests, and a
// header a route changes is its own until the error handler applies the set again.
import assert from 'node:assert/strict';
import { type AddressInfo } from 'node:net';
import Koa from 'koa';
import { createSecurityHeaders } from '../../src/http/middleware/security-headers.ts';

async function headersOf(production: boolean, route?: (ctx: Koa.Context) => void): Promise<Headers[]> {
  const app = new Koa();
  const security = createSecurityHeaders({ production });
  app.use(security.middleware);
  app.use((ctx) => {
    route?.(ctx);
    ctx.body = 'ok';
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    // Twice: the second response must not be missing what the first one had.
    return [(await fetch(url)).headers, (await fetch(url)).headers];
  } finally {
    await new Promise((r) => server.close(r));
  }
}

describe('security headers', () => {
  it('development: the strict CSP and helmet headers on every response, no HSTS', async () => {
    for (const h of await headersOf(false)) {
      assert.match(h.get('content-security-policy') ?? '', /^default-src 'self';.*frame-ancestors 'none'/);
      assert.doesNotMatch(h.get('content-security-policy') ?? '', /upgrade-insecure-requests/);
      assert.equal(h.get('x-frame-options'), 'DENY');
      assert.equal(h.get('x-content-type-options'), 'nosniff');
      assert.equal(h.get('referrer-policy'), 'no-referrer');
      assert.equal(h.get('cross-origin-opener-policy'), 'same-origin');
      assert.equal(h.get('cross-origin-resource-policy'), 'same-origin');
      assert.equal(h.get('origin-agent-cluster'), '?1');
      assert.equal(h.get('permissions-policy'), 'camera=(), microphone=(), geolocation=(), payment=()');
      assert.equal(h.get('strict-transport-security'), null);
    }
  });

  it('production: HSTS and upgrade-insecure-requests as well', async () => {
    for (const h of await headersOf(true)) {
      assert.equal(h.get('strict-transport-security'), 'max-age=31536000; includeSubDomains');
      assert.match(h.get('content-security-policy') ?? '', /upgrade-insecure-requests/);
    }
  });

  it('a route may relax one header for its own response', async () => {
    const [h] = await headersOf(false, (ctx) => ctx.set('Content-Security-Policy', "default-src 'none'"));
    assert.equal(h!.get('content-security-policy'), "default-src 'none'");
    assert.equal(h!.get('x-frame-options'), 'DENY');
  });
});
