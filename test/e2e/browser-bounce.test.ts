// Issue 13 part 8 as the merchant sees it, against paymail started as a process: an order mailed
// for customer delivery leaves with its VERP return path; the customer's mail server bounces it
// (a Postfix DSN, delivered to paymail's MX door with the null sender); the merchant gets one mail
// asking for a corrected address, the order's history in the back office (Chromium, JavaScript
// off) says "Pay-link undeliverable to …", and `RESEND <ref> new@address` sends the link there,
// as does the corrected address typed on the order page.
// Screenshot: test-output/screenshots/backoffice-order-bounced.png.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { SHOTS, useE2eBrowser } from '../helpers/e2e-app.ts';
import { rawClient } from '../helpers/smtp-raw-client.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/bounces/postfix-user-unknown.eml');
const FIXTURE_RETURN_PATH = 'bounce+65f0c0ffee0000000000abcd-0123456789ab@paymail.example';

describe('e2e: an undeliverable customer address comes back to the merchant', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'Hotel Bellavista', email: 'desk@bellavista.example' });

  it('bounce → history, one merchant mail, RESEND to the corrected address', async () => {
    const { sink, app, merchant, base, browser } = e2e;
    assert.ok(app.ports.mx, 'the MX door port is logged');
    const reference = `BK-${Date.now()}`;
    await e2e.mailAsMerchant(`Booking ${reference}`, `Amount: 129,90 €\nReference: ${reference}\nCustomer: Anna Rossi\nEmail: anna.rosi@example.org\nDelivery: customer\n`);
    const payLink = await sink.waitFor((m) => m.to.includes('anna.rosi@example.org'));
    assert.match(payLink.envelope.from, /^bounce\+[0-9a-f]{24}-[0-9a-f]{12}@paymail\.test$/);

    // The customer's server refuses the mistyped address; the relay bounces it to the return path.
    const dsn = (await readFile(FIXTURE, 'utf8'))
      .replaceAll(FIXTURE_RETURN_PATH, payLink.envelope.from)
      .replaceAll('anna.rossi@example.org', 'anna.rosi@example.org')
      .replace(/\r?\n/g, '\r\n');
    const c = rawClient(app.ports.mx);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO relay.example')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<>')).code, 250);
    assert.equal((await c.cmd(`RCPT TO:<${payLink.envelope.from}>`)).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const stored = await c.cmd(`${dsn.replace(/^\./gm, '..')}.`);
    assert.equal(stored.code, 250, stored.text);
    c.end();

    const notice = await sink.waitFor((m) => m.to.includes('desk@bellavista.example') && /^Undeliverable:/.test(m.parsed.subject ?? ''));
    assert.equal(notice.parsed.subject, `Undeliverable: the pay-link for order ${reference} to anna.rosi@example.org`);
    assert.match(notice.parsed.text ?? '', new RegExp(`RESEND ${reference} new@address`));
    assert.equal(notice.parsed.replyTo?.value[0]?.address, merchant.inboundAddress);

    // The order's history in the back office, JavaScript off.
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    const page = await (await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1200, height: 900 } })).newPage();
    await page.goto(`${base}/backoffice/orders/${encodeURIComponent(order._id)}`);
    await page.getByLabel('E-mail').fill(merchant.adminEmail);
    await page.getByLabel('Password').fill(merchant.adminPassword);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForLoadState();
    const history = (await page.locator('.timeline').textContent()) ?? '';
    assert.match(history, /Pay-link undeliverable to anna\.rosi@example\.org: 550 5\.1\.1 <anna\.rosi@example\.org>: Recipient address rejected: User unknown/);
    assert.match(history, /Undeliverable-address notice mailed to desk@bellavista\.example/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-order-bounced.png'), fullPage: true });

    // The merchant answers with the corrected address.
    await e2e.mailAsMerchant(`Re: ${notice.parsed.subject}`, `RESEND ${reference} anna.rossi@example.org\n\n> ${notice.parsed.subject}\n`);
    const resent = await sink.waitFor((m) => m.to.includes('anna.rossi@example.org'));
    assert.ok(resent.to.includes('desk@bellavista.example'), 'the merchant in copy');
    assert.notEqual(resent.envelope.from, payLink.envelope.from, 'a return path of its own');
    const reply = await sink.waitFor((m) => m.to.includes('desk@bellavista.example') && /anna\.rossi@example\.org/.test(m.parsed.text ?? '') && /is now/.test(m.parsed.text ?? ''));
    assert.ok(reply);
    assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.customer?.email, 'anna.rossi@example.org');

    // The same correction from the back office's order page (JavaScript off).
    await page.goto(`${base}/backoffice/orders/${encodeURIComponent(order._id)}`);
    const field = page.getByLabel('Customer e-mail for the pay-link');
    assert.equal(await field.inputValue(), 'anna.rossi@example.org');
    // A malformed address is refused on the server too (the browser's own check bypassed).
    const csrf = await page.locator('#resend-to-form input[name=_csrf]').inputValue();
    const refused = await page.request.post(`${base}/backoffice/orders/${encodeURIComponent(order._id)}/resend-to`, { form: { email: 'anna@@example.org', _csrf: csrf }, maxRedirects: 0 });
    assert.equal(refused.status(), 422);
    assert.match(await refused.text(), /Enter the customer&#x27;s e-mail address|Enter the customer's e-mail address/);
    await field.fill('anna.r@example.com');
    await page.getByRole('button', { name: 'Send to this address' }).click();
    await page.waitForLoadState();
    assert.match((await page.locator('body').textContent()) ?? '', /The customer's address was changed and the pay-link queued for it\./);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-order-resend-to.png'), fullPage: true });
    const fromBackoffice = await sink.waitFor((m) => m.to.includes('anna.r@example.com'));
    assert.match(fromBackoffice.envelope.from, /^bounce\+/);
    assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.customer?.email, 'anna.r@example.com');
  });
});
