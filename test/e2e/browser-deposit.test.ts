// An order paid in parts in a real browser (issue 13 part 1): the merchant mails an order with
// `Deposit: 30%` through the SMTP door; the customer opens the deposit link, sees the part, the
// total and the schedule, pays 300.00 with the sandbox card and sees "Deposit received" with what
// follows; the merchant sees the parts in the back office and clicks "Ask for the balance"; the
// customer pays the balance link and sees the order paid in full with both receipts, each PDF
// downloadable. Screenshots of the pages go to test-output/screenshots/.
import assert from 'node:assert/strict';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { type Page } from 'playwright-core';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { fillCheckoutCard, SHOTS, useE2eBrowser } from '../helpers/e2e-app.ts';

const LINK_RE = /(http:\/\/localhost:\d+\/pay\/\S+)/;

describe('e2e: a deposit and its balance in the browser', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'B&B Le Rondini', email: 'desk@rondini.example' });

  async function pay(page: Page) {
    await fillCheckoutCard(page, { holder: 'Anna Rossi', email: 'anna@example.org' });
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.waitForLoadState();
  }

  const cellsOf = (page: Page) => page.locator('table.schedule tbody tr').evaluateAll((rows) =>
    rows.map((r) => ((r as unknown as { innerText: string }).innerText ?? '').replace(/\s+/g, ' ').trim()));

  it('the customer pays the 30% deposit, then the balance the merchant asked for; each page says which part', async () => {
    const reference = `RON-${Date.now()}`;
    await e2e.mailAsMerchant(`Booking ${reference}`, `Amount: 1.000,00 €\nReference: ${reference}\nDescription: Suite, 5 nights\nDeposit: 30%\n`);
    const first = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference) && LINK_RE.test(m.parsed.text ?? ''));
    // The pay-link mail names the part and the total.
    assert.match(first.parsed.text ?? '', /Deposit of €300\.00 \(total €1,000\.00\)/);
    const depositLink = LINK_RE.exec(first.parsed.text ?? '')![1]!;

    const ctx = await e2e.browser.newContext({ viewport: { width: 900, height: 1100 } });
    try {
      const page = await ctx.newPage();
      // 1. The deposit's checkout: the part's amount to pay, its line, the schedule.
      await page.goto(depositLink);
      await page.getByRole('button', { name: 'Pay €300.00' }).waitFor();
      assert.equal((await page.locator('.summary .amount').innerText()).replace(/^Amount:\s*/, '').trim(), '€300.00');
      assert.equal((await page.locator('.summary .part-line').innerText()).trim(), 'Deposit (30%) of the total €1,000.00');
      assert.equal(await page.getByRole('table').count(), 1);
      assert.deepEqual(await page.getByRole('columnheader').allInnerTexts(), ['Payment', 'Amount', 'Due', 'Status']);
      assert.deepEqual(await cellsOf(page), ['Deposit €300.00 Now To pay now', 'Balance €700.00 When B&B Le Rondini sends the link Later']);
      await page.screenshot({ path: path.join(SHOTS, 'deposit-checkout.png'), fullPage: true });

      // 2. Paid: "Deposit received", the balance to follow when the merchant sends its link.
      await pay(page);
      await page.getByRole('heading', { level: 1, name: 'Deposit received' }).waitFor();
      assert.equal((await page.locator('.result .amount').innerText()).trim(), '€300.00');
      assert.match(await page.locator('.plan-state').innerText(), /The balance of €700\.00 will follow: when B&B Le Rondini sends its link\./);
      assert.match(await page.locator('.plan-state').innerText(), /Paid so far: €300\.00 of the total €1,000\.00\./);
      await page.screenshot({ path: path.join(SHOTS, 'deposit-receipt.png'), fullPage: true });
      const depositPdf = await page.getByRole('link', { name: 'Download receipt (PDF)' }).getAttribute('href');
      assert.match(depositPdf ?? '', /[?&]part=1(&|$)/);

      let order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
      assert.equal(order.status, 'partially_paid');
      const depositReceipt = order.plan!.parts![0]!.payment!.receiptNumber!;
      const mail = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(depositReceipt) && m.envelope.to.includes('anna@example.org'));
      assert.match(mail.parsed.text ?? '', /Deposit received: €300\.00 of €1,000\.00/);

      // 3. The merchant sees the parts in the back office and asks for the balance: its link is mailed.
      const bo = await (await e2e.browser.newContext({ viewport: { width: 1100, height: 1000 } })).newPage();
      await bo.goto(`${e2e.base}/backoffice/orders/${order._id}`);
      await bo.getByLabel('E-mail').fill(e2e.merchant.adminEmail);
      await bo.getByLabel('Password').fill(e2e.merchant.adminPassword);
      await bo.getByRole('button', { name: 'Log in' }).click();
      await bo.getByRole('heading', { name: 'Payment plan' }).waitFor();
      const planRows = await bo.locator('#plan-parts tbody tr').evaluateAll((rows) =>
        rows.map((r) => ((r as unknown as { innerText: string }).innerText ?? '').replace(/\s+/g, ' ').trim()));
      assert.ok(planRows.some((r) => /^Deposit .*€300\.00.*Paid on/i.test(r)), planRows.join(' | '));
      assert.ok(planRows.some((r) => /^Balance .*€700\.00.*Waiting for you/i.test(r)), planRows.join(' | '));
      const axe = await new AxeBuilder({ page: bo }).include('#plan-parts').withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
      assert.deepEqual(axe.violations.map((v) => v.id), []);
      await bo.screenshot({ path: path.join(SHOTS, 'backoffice-deposit-order.png'), fullPage: true });
      await bo.getByRole('button', { name: 'Ask for the balance' }).click();
      await bo.getByText('The link for the next part was mailed.').waitFor();
      await bo.context().close();
      const second = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference) && /Balance of €700\.00/.test(m.parsed.text ?? '') && LINK_RE.test(m.parsed.text ?? ''));
      assert.match(second.parsed.text ?? '', /Balance of €700\.00 \(total €1,000\.00\)/);
      const balanceLink = LINK_RE.exec(second.parsed.text ?? '')![1]!;

      // 4. The balance's checkout, paid: the order is paid in full, both receipts listed.
      await page.goto(balanceLink);
      await page.getByRole('button', { name: 'Pay €700.00' }).waitFor();
      assert.equal((await page.locator('.summary .part-line').innerText()).trim(), 'Balance of the total €1,000.00');
      const rows = await cellsOf(page);
      assert.match(rows[0]!, /^Deposit €300\.00 .+ Paid$/);
      assert.equal(rows[1], 'Balance €700.00 Now To pay now');
      await pay(page);
      await page.getByRole('heading', { level: 1, name: 'Paid in full' }).waitFor();
      assert.match(await page.locator('.plan-state').innerText(), /The total of €1,000\.00 is paid, in 2 payments\./);
      assert.equal((await page.locator('.result .amount').innerText()).trim(), '€700.00');
      order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
      assert.equal(order.status, 'paid');
      const receipts = order.plan!.parts!.map((p) => p.payment!.receiptNumber!);
      const listed = await cellsOf(page);
      assert.equal(listed.length, 2);
      assert.ok(listed[0]!.startsWith(`Deposit €300.00 ${receipts[0]}`), listed[0]);
      assert.ok(listed[1]!.startsWith(`Balance €700.00 ${receipts[1]}`), listed[1]);
      await page.screenshot({ path: path.join(SHOTS, 'deposit-paid-in-full.png'), fullPage: true });

      // Each part's PDF downloads, each with its own receipt number.
      for (const [i, receipt] of receipts.entries()) {
        const href = await page.getByRole('link', { name: `Receipt ${receipt} (PDF)` }).getAttribute('href');
        const res = await fetch(new URL(href!, e2e.base));
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/pdf');
        assert.ok((res.headers.get('content-disposition') ?? '').includes(receipt), `part ${i + 1}: ${res.headers.get('content-disposition')}`);
      }
      const full = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(receipts[1]!) && m.envelope.to.includes('anna@example.org'));
      assert.match(full.parsed.text ?? '', /Balance received — the order is paid in full/);
    } finally {
      await ctx.close();
    }
  });
});
