// The back office in a real browser (Debian's Chromium driven by playwright-core) against paymail
// started as a process: the admin printed by `paymail merchant create` logs in with JavaScript
// off, finds a mailed order, cancels it, downloads the CSV; a viewer sees no actions; the list
// fits a phone; an operator takes a card by phone (MoTo) and refunds part of it through the form.
// Screenshots go to test-output/screenshots/.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Page } from 'playwright-core';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Refund } from '../../src/db/models/refund.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { SHOTS, useE2eBrowser } from '../helpers/e2e-app.ts';


describe('e2e: back office in a real browser', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'Hotel Bellavista', email: 'desk@bellavista.example' });
  const references: string[] = [];

  before(async () => {
    // Three orders arrive by mail through the submission door, as merchants send them.
    for (const [i, amount, customer] of [[1, '129,90 €', 'Anna Rossi'], [2, '84.00 EUR', 'Marco Bianchi'], [3, '1.250,00 €', 'Giulia Verdi']] as const) {
      const reference = `BK-${Date.now()}-${i}`;
      references.push(reference);
      await e2e.mailAsMerchant(`Booking ${reference}`, `Amount: ${amount}\nReference: ${reference}\nDescription: Double room, 2 nights\nCustomer: ${customer}\n`);
    }
    for (const reference of references) await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference));
  });

  async function logIn(page: Page, email: string, password: string) {
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForLoadState();
  }

  it('logs in, searches, cancels an order and downloads the CSV with JavaScript off', async () => {
    const ctx = await e2e.browser.newContext({ javaScriptEnabled: false, viewport: { width: 1200, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${e2e.base}/backoffice/orders`);
    assert.match(page.url(), /\/backoffice\/login\?next=/);
    await page.getByLabel('Password').fill('wrong password');
    await page.getByLabel('E-mail').fill(e2e.merchant.adminEmail);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForLoadState();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /Wrong e-mail or password/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-login-refused.png'), fullPage: true });

    await logIn(page, e2e.merchant.adminEmail, e2e.merchant.adminPassword);
    assert.match(page.url(), /\/backoffice\/orders$/);
    assert.equal(await page.locator('table.orders tbody tr').count(), 3);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-orders.png'), fullPage: true });

    const target = references[1]!;
    await page.getByLabel('Reference').fill(target);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForLoadState();
    const rows = page.locator('table.orders tbody tr');
    assert.equal(await rows.count(), 1);
    assert.match((await rows.first().textContent()) ?? '', /€84\.00/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-search.png'), fullPage: true });

    await page.getByRole('link', { name: target }).click();
    await page.waitForLoadState();
    const history = (await page.locator('.timeline').textContent()) ?? '';
    assert.match(history, /Order e-mail received/);
    assert.match(history, /Pay-link mailed to desk@bellavista\.example/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-order.png'), fullPage: true });
    await page.getByRole('button', { name: 'Cancel this order' }).click();
    await page.waitForLoadState();
    assert.match((await page.getByRole('status').textContent()) ?? '', /The order was cancelled/);
    assert.match((await page.locator('.timeline').textContent()) ?? '', /Cancelled/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-cancelled.png'), fullPage: true });
    const cancelled = (await Order.findOne({ reference: target }).lean<OrderDoc>())!;
    assert.equal(cancelled.status, 'cancelled');

    await page.getByRole('link', { name: 'Export' }).click();
    await page.waitForLoadState();
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-export.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    assert.match(download.suggestedFilename(), /^orders-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = await readFile((await download.path())!, 'utf8');
    const lines = csv.replace(/^\uFEFF/, '').trim().split('\r\n');
    assert.match(lines[0]!, /^created_at,order_id,reference,status,amount,currency,/);
    assert.equal(lines.length, 4);
    assert.ok(lines.some((l) => l.includes(target) && l.includes(',cancelled,84.00,EUR,')), csv);
    assert.ok(lines.some((l) => l.includes(references[2]!) && l.includes(',pending,1250.00,EUR,')), csv);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForLoadState();
    assert.match(page.url(), /\/backoffice\/login$/);
    await page.goto(`${e2e.base}/backoffice/orders`);
    assert.match(page.url(), /\/backoffice\/login/);
    await ctx.close();
  });

  it('shows a viewer the orders without any action, and fits a 375 px phone', async () => {
    await MerchantUser.create({ merchantId: e2e.merchant.id, email: 'viewer@bellavista.example', passwordHash: await hashPassword('viewer password 1'), role: 'viewer' });
    const ctx = await e2e.browser.newContext({ viewport: { width: 375, height: 800 } });
    const page = await ctx.newPage();
    await page.goto(`${e2e.base}/backoffice/login`);
    await logIn(page, 'viewer@bellavista.example', 'viewer password 1');
    assert.match(page.url(), /\/backoffice\/orders$/);
    const width = await page.evaluate<number>('document.documentElement.scrollWidth');
    assert.ok(width <= 375, `no horizontal scrolling at 375 px (content is ${width} px wide)`);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-orders-375px.png'), fullPage: true });
    assert.equal(await page.getByRole('link', { name: 'Export' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'New pay-link' }).count(), 0);
    await page.getByRole('link', { name: references[0]! }).click();
    await page.waitForLoadState();
    assert.equal(await page.getByRole('button', { name: 'Cancel this order' }).count(), 0);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-order-viewer-375px.png'), fullPage: true });
    const res = await page.goto(`${e2e.base}/backoffice/export`);
    assert.equal(res?.status(), 403);
    await ctx.close();
  });

  it('an operator takes a card by phone, then refunds part of it through the form', async () => {
    await MerchantUser.create({ merchantId: e2e.merchant.id, email: 'desk2@bellavista.example', passwordHash: await hashPassword('operator password 1'), role: 'operator' });
    const ctx = await e2e.browser.newContext({ javaScriptEnabled: false, viewport: { width: 1200, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${e2e.base}/backoffice/login`);
    await logIn(page, 'desk2@bellavista.example', 'operator password 1');
    const target = references[2]!;
    await page.getByRole('link', { name: target }).click();
    await page.waitForLoadState();

    await page.getByRole('link', { name: 'Take a card by phone' }).click();
    await page.waitForLoadState();
    await page.getByLabel('Name on the card').fill('Giulia Verdi');
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByLabel('Expiry (MM/YY)').fill('12/39');
    await page.getByLabel('Security code').fill('123');
    await page.getByLabel('Customer e-mail (for the receipt)').fill('giulia@example.org');
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-moto.png'), fullPage: true });
    await page.getByRole('button', { name: /^Charge/ }).click();
    await page.waitForLoadState();
    assert.match((await page.getByRole('status').textContent()) ?? '', /The card was charged/);
    const paid = (await Order.findOne({ reference: target }).lean<OrderDoc>())!;
    assert.equal(paid.status, 'paid');
    assert.equal(paid.payment?.moto, true);

    await page.getByLabel(/Amount to refund/).fill('250,00');
    await page.getByLabel('Reason (optional)').fill('one night cancelled');
    await page.getByRole('button', { name: 'Refund' }).click();
    await page.waitForLoadState();
    assert.match((await page.getByRole('status').textContent()) ?? '', /The refund was made/);
    assert.match((await page.locator('.timeline').textContent()) ?? '', /Refunded €250\.00/);
    assert.match((await page.locator('.refunded').textContent()) ?? '', /partially refunded/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-refund.png'), fullPage: true });

    // More than what is left is refused on the page, nothing refunded.
    await page.getByLabel(/Amount to refund/).fill('1000,01');
    await page.getByRole('button', { name: 'Refund' }).click();
    await page.waitForLoadState();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /more than can still be refunded/);
    const refunds = await Refund.find({ orderId: paid._id }).lean();
    assert.deepEqual(refunds.map((r) => [r.amountMinor, r.by]), [[25_000, 'desk2@bellavista.example']]);
    await ctx.close();
  });

  it('an admin changes the recap hour, rotates the webhook secret and adds a user', async () => {
    const ctx = await e2e.browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${e2e.base}/backoffice/login`);
    await logIn(page, e2e.merchant.adminEmail, e2e.merchant.adminPassword);
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.waitForLoadState();
    await page.getByLabel(/Hour of the daily recap/).fill('8');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.waitForLoadState();
    assert.match((await page.getByRole('status').textContent()) ?? '', /The settings were saved/);
    await page.getByRole('button', { name: 'Create a new secret' }).click();
    await page.waitForLoadState();
    assert.match((await page.locator('#new-secret').textContent()) ?? '', /whsec_/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-settings.png'), fullPage: true });

    await page.getByRole('link', { name: 'Users' }).click();
    await page.waitForLoadState();
    await page.getByLabel('E-mail', { exact: true }).fill('night@bellavista.example');
    await page.locator('#new-role').selectOption('accountant');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.waitForLoadState();
    assert.match((await page.locator('#new-user').textContent()) ?? '', /night@bellavista\.example was added/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-users.png'), fullPage: true });
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.waitForLoadState();
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-webhooks.png'), fullPage: true });
    await ctx.close();
  });
});
