// Cancelling a partly paid order in a real browser (issue 13 part 1; the page has no script): the
// merchant mails an order with `Deposit: 30%`, the customer pays the deposit, the admin opens the
// order in the back office, "Cancel this order…" leads to the step asking what becomes of the
// 300.00 paid (a required radio group, checked by axe for WCAG 2.1 A/AA), chooses to refund it and
// the order is cancelled with the deposit refunded. Screenshot: backoffice-cancel-partly-paid.png.
import assert from 'node:assert/strict';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Refund } from '../../src/db/models/refund.model.ts';
import { fillCheckoutCard, SHOTS, useE2eBrowser } from '../helpers/e2e-app.ts';

const LINK_RE = /(http:\/\/localhost:\d+\/pay\/\S+)/;

describe('e2e: cancelling a partly paid order in the back office', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'B&B Le Rondini', email: 'desk@rondini.example' });

  it('asks what becomes of the deposit (accessible, required), then cancels and refunds it', async () => {
    const reference = `CXL-${Date.now()}`;
    await e2e.mailAsMerchant(`Booking ${reference}`, `Amount: 1.000,00 €\nReference: ${reference}\nDeposit: 30%\n`);
    const mail = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference) && LINK_RE.test(m.parsed.text ?? ''));
    const ctx = await e2e.browser.newContext({ viewport: { width: 1000, height: 1000 } });
    try {
      const page = await ctx.newPage();
      await page.goto(LINK_RE.exec(mail.parsed.text ?? '')![1]!);
      await fillCheckoutCard(page, { holder: 'Anna Rossi', email: 'anna@example.org' });
      await page.getByRole('button', { name: 'Pay €300.00' }).click();
      await page.getByRole('heading', { name: 'Deposit received' }).waitFor();
      const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
      assert.equal(order.status, 'partially_paid');

      await page.goto(`${e2e.base}/backoffice/login`);
      await page.getByLabel('E-mail').fill(e2e.merchant.adminEmail);
      await page.getByLabel('Password').fill(e2e.merchant.adminPassword);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL(/\/backoffice\/orders/);
      await page.goto(`${e2e.base}/backoffice/orders/${order._id}`);
      await page.getByRole('button', { name: 'Cancel this order…' }).click();
      await page.waitForLoadState();
      const group = page.getByRole('group', { name: 'What was paid (€300.00)' });
      await group.waitFor();
      const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
      assert.deepEqual(results.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
      // Nothing chosen: the browser keeps the form (the radios are required), the order stays.
      await page.getByRole('button', { name: 'Cancel the order' }).click();
      assert.match(page.url(), /\/cancel\??$/);
      assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'partially_paid');

      await page.getByRole('radio', { name: 'Refund what was paid (€300.00)' }).check();
      await page.screenshot({ path: path.join(SHOTS, 'backoffice-cancel-partly-paid.png'), fullPage: true });
      await page.getByRole('button', { name: 'Cancel the order' }).click();
      await page.waitForLoadState();
      assert.match((await page.getByRole('status').textContent()) ?? '', /The order was cancelled and what was paid was refunded\./);
      assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'cancelled');
      const refunds = await Refund.find({ orderId: order._id }).lean();
      assert.deepEqual(refunds.map((r) => [r.part, r.amountMinor, r.by]), [[1, 30_000, e2e.merchant.adminEmail]]);
    } finally {
      await ctx.close();
    }
  });
});
