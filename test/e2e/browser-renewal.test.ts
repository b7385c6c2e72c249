// A way back from an expired link (issue 13 part 4) in a real browser against paymail as a process:
// the customer opens an expired pay-link with JavaScript off, asks the merchant for a new link with
// the page's button, the merchant gets the mail at the relay and answers `EXTEND <ref> 7 days` through
// the submission door, the customer gets the renewed link by mail, opens it and pays; the merchant's
// side in the back office (the Renew button, the history, the reminder settings, their parts checked
// with axe). Screenshots of the expired page, the request sent, the paid renewed link, the order page
// and the settings go to test-output/screenshots/.
import { AxeBuilder } from '@axe-core/playwright';
import assert from 'node:assert/strict';
import path from 'node:path';
import { type Page } from 'playwright-core';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { fillCheckoutCard, SHOTS, useE2eBrowser } from '../helpers/e2e-app.ts';

/** axe (WCAG 2.1 A/AA) on one part of a back-office page: the parts this feature adds. */
async function assertAccessible(page: Page, selector: string) {
  const r = await new AxeBuilder({ page }).include(selector).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  assert.deepEqual(r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [], selector);
}

describe('e2e: asking for a new link from the expired page', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'Teatro Verdi', email: 'box@verdi.example' });

  it('expired page -> "Ask Teatro Verdi for a new link" -> the merchant’s EXTEND reply -> the customer pays the renewed link', async () => {
    const reference = `RENEW-${Date.now()}`;
    await e2e.mailAsMerchant(`Tickets ${reference}`, `Amount: 64,00 €\nReference: ${reference}\nCustomer: Giulia Verdi <giulia@example.org>\nDescription: 2 tickets, Rigoletto\n`);
    const paylinkMail = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference) && /\/pay\//.test(m.parsed.text ?? ''));
    const link = /(http:\/\/localhost:\d+\/pay\/\S+)/.exec(paylinkMail.parsed.text ?? '')![1]!;
    // The link's time ran out (what the expiry job does once expiresAt has passed).
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    await Order.updateOne({ _id: order._id }, { $set: { status: 'expired', expiresAt: new Date(Date.now() - 60_000), expiredAt: new Date(), openReference: order._id } });

    const ctx = await e2e.browser.newContext({ javaScriptEnabled: false });
    const page = await ctx.newPage();
    await page.goto(link);
    await page.locator('#expired-heading').waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'expired-ask-new-link.png'), fullPage: true });
    await page.getByRole('button', { name: 'Ask Teatro Verdi for a new link' }).click();
    await page.getByRole('heading', { name: 'Your request was sent' }).waitFor();
    assert.match(await page.locator('#new-link-outcome').innerText(), /sent to giulia@example\.org as soon as Teatro Verdi renews it/);
    await page.screenshot({ path: path.join(SHOTS, 'expired-new-link-requested.png'), fullPage: true });
    // Back on the link, the page says it was asked (no second request).
    await page.goto(link);
    assert.match(await page.locator('#new-link-state').innerText(), /You have asked Teatro Verdi for a new link/);

    // The merchant's mail, and the answer from its mailbox.
    const request = await e2e.sink.waitFor((m) => m.parsed.subject?.includes('asks for a new pay-link') === true && (m.parsed.text ?? '').includes(reference));
    assert.ok((request.parsed.text ?? '').includes(`EXTEND ${reference} 7 days`));
    assert.equal(request.parsed.replyTo?.value[0]?.address, e2e.merchant.inboundAddress);
    await e2e.mailAsMerchant(`Re: ${request.parsed.subject}`, `EXTEND ${reference} 7 days\n\n> ${request.parsed.subject}`);

    // The customer's renewed link, which opens the payment form and pays.
    const renewed = await e2e.sink.waitFor((m) => m.to.includes('giulia@example.org') && m.parsed.subject?.includes('Your new payment link') === true);
    const newLink = /(http:\/\/localhost:\d+\/pay\/\S+)/.exec(renewed.parsed.text ?? '')![1]!;
    assert.notEqual(newLink, link);
    await page.goto(newLink);
    await fillCheckoutCard(page, { holder: 'Giulia Verdi' });
    await page.getByRole('button', { name: 'Pay €64.00' }).click();
    await page.getByRole('heading', { name: 'Payment received' }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'renewed-link-paid.png'), fullPage: true });
    assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'paid');
    await ctx.close();
  });

  it('the merchant renews from the back office: the link in its mail, the order’s history, the Renew button; the reminder settings', async () => {
    const reference = `RENEW-BO-${Date.now()}`;
    await e2e.mailAsMerchant(`Tickets ${reference}`, `Amount: 30,00 €\nReference: ${reference}\nCustomer: Marco Neri <marco@example.org>\n`);
    const paylinkMail = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference) && /\/pay\//.test(m.parsed.text ?? ''));
    const link = /(http:\/\/localhost:\d+\/pay\/\S+)/.exec(paylinkMail.parsed.text ?? '')![1]!;
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    await Order.updateOne({ _id: order._id }, { $set: { status: 'expired', expiresAt: new Date(Date.now() - 60_000), expiredAt: new Date(), openReference: order._id } });

    const customer = await e2e.browser.newContext({ javaScriptEnabled: false });
    const page = await customer.newPage();
    await page.goto(link);
    await page.getByRole('button', { name: 'Ask Teatro Verdi for a new link' }).click();
    await page.getByRole('heading', { name: 'Your request was sent' }).waitFor();
    const request = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference) && m.parsed.subject?.includes('asks for a new pay-link') === true);
    const orderPage = /(http:\/\/localhost:\d+\/backoffice\/orders\/\S+)/.exec(request.parsed.text ?? '')![1]!;

    const merchant = await e2e.browser.newContext();
    const bo = await merchant.newPage();
    await bo.goto(orderPage);
    await bo.getByLabel('E-mail').fill(e2e.merchant.adminEmail);
    await bo.getByLabel('Password').fill(e2e.merchant.adminPassword);
    await bo.getByRole('button', { name: 'Log in' }).click();
    await bo.locator('#renew-form').waitFor();
    assert.match(await bo.locator('#renew-asked').innerText(), /The customer asked for a new link \(marco@example\.org\)/);
    await assertAccessible(bo, '#renew-form');
    await bo.getByLabel('Valid for (days)').fill('5');
    await bo.getByRole('button', { name: 'Renew the link' }).click();
    await bo.getByText('The link was renewed and mailed to the customer.').waitFor();
    assert.match(await bo.locator('ol.timeline').innerText(), /The customer asked for a new link \(marco@example\.org\)[\s\S]*Link renewed until/);
    await bo.screenshot({ path: path.join(SHOTS, 'backoffice-order-renewed.png'), fullPage: true });
    const renewed = await e2e.sink.waitFor((m) => m.to.includes('marco@example.org') && m.parsed.subject?.includes('Your new payment link') === true);
    assert.ok(/\/pay\//.test(renewed.parsed.text ?? ''));

    // The reminder settings, as the merchant sets them.
    await bo.goto(`${e2e.base}/backoffice/settings`);
    await bo.getByLabel('Days before expiry (e.g. 3, 1; empty: none)').fill('5, 1');
    await bo.getByLabel("Renew an expired link at the customer's request for (days; 0: you decide each time)").fill('3');
    await bo.getByRole('button', { name: 'Save reminders' }).click();
    await bo.getByText('The reminder settings were saved.').waitFor();
    await assertAccessible(bo, '#reminders-form');
    assert.equal(await bo.getByLabel('Days before expiry (e.g. 3, 1; empty: none)').inputValue(), '5, 1');
    await bo.locator('#reminders-form').screenshot({ path: path.join(SHOTS, 'backoffice-reminder-settings.png') });
    await customer.close();
    await merchant.close();
  });
});
