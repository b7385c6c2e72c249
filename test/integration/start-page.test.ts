// `/` (issue 10, item 15): a small start page instead of a 404 — the product name, the way to the
// back-office log-in, and in development only the captured mail and the first-order steps.
import assert from 'node:assert/strict';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import { createHttpApp } from '../../src/http/app.ts';
import { deriveCsrfKey } from '../../src/http/middleware/csrf.ts';
import { createViews } from '../../src/http/views.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService } from '../../src/services/checkout.service.ts';
import { repos } from '../helpers/db.ts';

const KEYS = [{ kid: 'sp1', secret: 'start-page-secret-start-page-secret' }];

async function start(production: boolean) {
  const app = createHttpApp({
    logger: createLogger('silent'),
    views: createViews({ templatesDir: path.resolve('templates') }),
    checkout: {
      service: createCheckoutService({ repos, acquirer: createSandboxAcquirer(), linkKeys: KEYS, mailDomain: 'paymail.test', linkFor: () => '' }),
      csrfKey: deriveCsrfKey(KEYS[0]!.secret),
    },
    production,
  });
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('start page', () => {
  const servers: http.Server[] = [];
  after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

  it('development: names the product, links the back-office log-in, /dev/mail and the first-order steps', async () => {
    const { server, base } = await start(false);
    servers.push(server);
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<html lang="en">/);
    assert.match(html, /<h1[^>]*>[^<]*paymail/);
    assert.match(html, /<main\b/);
    assert.match(html, /href="\/backoffice\/login"/);
    assert.match(html, /href="\/dev\/mail"/);
    assert.match(html, /paymail merchant create/);
    assert.match(html, /<ol\b/);
  });

  it('production: no development links; follows the browser language', async () => {
    const { server, base } = await start(true);
    servers.push(server);
    const res = await fetch(`${base}/`, { headers: { 'accept-language': 'it-IT,it;q=0.9' } });
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<html lang="it">/);
    assert.match(html, /href="\/backoffice\/login"/);
    assert.doesNotMatch(html, /\/dev\/mail|merchant create/);
  });
});
