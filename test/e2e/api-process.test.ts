// The server API end to end, as a merchant's server would use it: paymail runs as a process (the
// composition root in src/server.ts), the operator creates an API key with the CLI, the merchant's
// server creates a pay-link with delivery customer, and the pay-link mail arrives at a real SMTP
// relay through the outbox, as for an order mailed in; the order is then read, and the key revoked.
// The back office's API keys page, with a key just created through its form, passes axe (WCAG 2.1 AA)
// in Debian's Chromium.
import { AxeBuilder } from '@axe-core/playwright';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/paymail-process.ts';
import { launchChromium, useE2eApp } from '../helpers/e2e-app.ts';

describe('server API against a paymail process', function () {
  this.timeout(120_000);
  const e2e = useE2eApp({ name: 'API Hotel', email: 'desk@api-hotel.example' });

  it('creates a key with the CLI, a pay-link mailed to the customer, reads the order, and refuses the revoked key', async () => {
    const cli = await runCli(['apikey', 'create', '--merchant', e2e.merchant.id, '--json'], e2e.env);
    assert.equal(cli.code, 0, cli.stderr);
    const { id, key } = JSON.parse(cli.stdout) as { id: string; key: string };
    const auth = { authorization: `Bearer ${key}` };

    const doc = await fetch(`${e2e.base}/api/v1/openapi.json`);
    assert.equal(doc.status, 200);
    assert.equal(((await doc.json()) as { openapi: string }).openapi, '3.1.0');

    const res = await fetch(`${e2e.base}/api/v1/payment-links`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': 'e2e-1' },
      body: JSON.stringify({ reference: 'E2E-API-1', amount: 8900, currency: 'EUR', description: 'Suite, one night', customer: { email: 'guest@api-hotel.example', name: 'Guest' }, delivery: 'customer' }),
    });
    assert.equal(res.status, 201);
    const created = (await res.json()) as { orderId: string; url: string };
    const mail = await e2e.sink.waitFor((m) => m.to.includes('guest@api-hotel.example'));
    assert.ok((mail.parsed.text ?? '').includes(new URL(created.url).pathname), 'the pay-link is in the mail');
    assert.ok(mail.to.includes('desk@api-hotel.example'), 'the merchant in copy');

    const order = await fetch(`${e2e.base}/api/v1/orders/E2E-API-1`, { headers: auth });
    assert.equal(order.status, 200);
    assert.equal(((await order.json()) as { id: string }).id, created.orderId);

    assert.equal((await runCli(['apikey', 'revoke', id], e2e.env)).code, 0);
    const refused = await fetch(`${e2e.base}/api/v1/orders/E2E-API-1`, { headers: auth });
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
  });

  it('the back office API keys page shows a new key once and passes axe', async function () {
    const browser = await launchChromium(() => this.skip());
    try {
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${e2e.base}/backoffice/login`);
      await page.getByLabel('E-mail').fill(e2e.merchant.adminEmail);
      await page.getByLabel('Password').fill(e2e.merchant.adminPassword);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL(/\/backoffice\/orders/);
      await page.getByRole('link', { name: 'API keys' }).click();
      await page.getByLabel('Label (where it is used, optional)').fill('web shop');
      await page.getByLabel('Read-only (cannot create, cancel or refund)').check();
      await page.getByRole('button', { name: 'Create key' }).click();
      const key = (await page.locator('code.api-key').textContent())!.trim();
      assert.match(key, /^pm_[0-9A-Za-z]{16}_[0-9A-Za-z]{32}$/);
      const read = await fetch(`${e2e.base}/api/v1/orders`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(read.status, 200);
      const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
      assert.deepEqual(results.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
      await page.getByRole('button', { name: /^Revoke API key / }).first().click();
      await page.getByRole('status').filter({ hasText: 'was revoked' }).waitFor();
      assert.equal((await fetch(`${e2e.base}/api/v1/orders`, { headers: { authorization: `Bearer ${key}` } })).status, 401);
    } finally {
      await browser.close();
    }
  });
});
