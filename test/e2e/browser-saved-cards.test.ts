// Saved cards in a real browser (issue 12 part 3): a customer ticks "Save my card" while paying a
// first pay-link (the merchant enabled saved cards), then pays a second pay-link of the same
// merchant in one click — "Pay with Visa •••• 4242", only the security code typed — and finally
// removes the card with the link of the receipt mail (the page asks first; the button removes).
// Screenshots go to test-output/screenshots/.
import assert from 'node:assert/strict';
import path from 'node:path';
import { Customer, type CustomerDoc } from '../../src/db/models/customer.model.ts';
import { Merchant } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { fillCheckoutCard, SHOTS, useE2eBrowser } from '../helpers/e2e-app.ts';

describe('e2e: saved cards in a real browser', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'Palestra Verdi', email: 'desk@palestra.example' });
  let orderNo = 0;
  const email = 'marta@example.org';

  before(async () => {
    // The admin's setting (off by default; its form is tested in backoffice-saved-cards.test.ts).
    await Merchant.updateOne({ _id: e2e.merchant.id }, { $set: { savedCardsEnabled: true } });
  });

  /** Mails an order for the customer to the submission door; its pay-link from the pay-link mail. */
  async function orderLink(): Promise<{ link: string; reference: string }> {
    const reference = `GYM-${Date.now()}-${++orderNo}`;
    await e2e.mailAsMerchant(`Membership ${reference}`, `Amount: 45,00 €\nReference: ${reference}\nEmail: ${email}\n`);
    const mail = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference) && /\/pay\//.test(m.parsed.text ?? ''));
    return { link: /(http:\/\/localhost:\d+\/pay\/\S+)/.exec(mail.parsed.text ?? '')![1]!, reference };
  }

  it('saves the card on a first payment, pays the next pay-link in one click, removes the card from the receipt', async () => {
    const ctx = await e2e.browser.newContext({ javaScriptEnabled: false });
    const page = await ctx.newPage();

    // 1. First payment, "Save my card" ticked (unticked until the customer ticks it).
    const first = await orderLink();
    await page.goto(first.link);
    const consent = page.getByLabel('Save my card for future payments to Palestra Verdi');
    assert.equal(await consent.isChecked(), false);
    await fillCheckoutCard(page, { holder: 'Marta Verdi' });
    await consent.check();
    await page.screenshot({ path: path.join(SHOTS, 'saved-card-consent.png'), fullPage: true });
    await page.getByRole('button', { name: 'Pay €45.00' }).click();
    await page.waitForLoadState();
    assert.match((await page.textContent('body')) ?? '', /RCPT-/);
    const saved = (await Order.findOne({ reference: first.reference }).lean<OrderDoc>())!;
    assert.match(saved.customerCode ?? '', /^cus_/);

    // 2. The next pay-link for the same customer: one click, only the security code.
    const second = await orderLink();
    await page.goto(second.link);
    const oneClick = page.getByRole('button', { name: 'Pay with Visa •••• 4242' });
    await oneClick.waitFor();
    await page.getByLabel('Security code of Visa •••• 4242').fill('123');
    await page.screenshot({ path: path.join(SHOTS, 'saved-card-one-click.png'), fullPage: true });
    await oneClick.click();
    await page.waitForLoadState();
    assert.match((await page.textContent('body')) ?? '', /RCPT-/);
    const paid = (await Order.findOne({ reference: second.reference }).lean<OrderDoc>())!;
    assert.equal(paid.status, 'paid');
    assert.equal(paid.payment?.initiator, 'customer');
    assert.equal(paid.customerCode, saved.customerCode);

    // 3. The receipt mail's link: a page that asks; the button removes the card.
    const receipt = await e2e.sink.waitFor((m) => m.to.includes(email) && (m.parsed.text ?? '').includes(paid.payment!.receiptNumber!));
    assert.match(receipt.parsed.text ?? '', /Remove the saved card: http/);
    const removal = /(http:\/\/localhost:\d+\/cards\/\S+)/.exec(receipt.parsed.text ?? '')![1]!;
    assert.match(receipt.parsed.html || '', /Remove the saved card<\/a>/);
    await page.goto(removal);
    await page.getByRole('heading', { name: 'Remove your saved card?' }).waitFor();
    assert.equal((await Customer.findById(saved.customerCode).lean<CustomerDoc>())!.cards.length, 1, 'opening the link removes nothing');
    await page.screenshot({ path: path.join(SHOTS, 'saved-card-remove.png'), fullPage: true });
    await page.getByRole('button', { name: 'Remove the card' }).click();
    await page.getByRole('heading', { name: 'Your card has been removed' }).waitFor();
    assert.equal((await Customer.findById(saved.customerCode).lean<CustomerDoc>())!.cards.length, 0);

    // 4. No longer offered.
    await page.goto((await orderLink()).link);
    assert.doesNotMatch((await page.textContent('body')) ?? '', /Pay with Visa/);
    await ctx.close();
  });
});
