// The checkout in a real browser (Debian's Chromium driven by playwright-core), as a customer uses
// it: with JavaScript off (the page must work without it), declined then approved, keyboard only,
// the 3-D Secure challenge passed and failed, the language switch, and — with JavaScript — the
// brand shown and the number grouped while it is typed. Afterwards, the database, the captured
// mails and the process output are scanned for the card numbers typed. Screenshots of every
// final page go to test-output/screenshots/.
import assert from 'node:assert/strict';
import mongoose from 'mongoose';
import path from 'node:path';
import { type Page } from 'playwright-core';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { fillCheckoutCard, SHOTS, useE2eBrowser } from '../helpers/e2e-app.ts';


describe('e2e: checkout in a real browser', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'Teatro Verdi', email: 'box@verdi.example' });
  let orderNo = 0;
  /** Every card number typed in this file (digits), for the scan at the end. */
  const typed = new Set<string>();

  /** Mails an order to the submission door and returns its pay-link from the pay-link mail. */
  async function orderLink(amount: string): Promise<{ link: string; reference: string }> {
    const reference = `TKT-${Date.now()}-${++orderNo}`;
    await e2e.mailAsMerchant(`Tickets ${reference}`, `Amount: ${amount}\nReference: ${reference}\nDescription: 2 tickets, La Traviata\n`);
    const mail = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference));
    const link = /(http:\/\/localhost:\d+\/pay\/\S+)/.exec(mail.parsed.text ?? '')![1]!;
    return { link, reference };
  }

  async function fillCard(page: Page, number: string) {
    typed.add(number.replace(/\D/g, ''));
    await fillCheckoutCard(page, { number, holder: 'Giulia Verdi', email: 'giulia@example.org' });
  }

  it('pays with 4242 4242 4242 4242 with JavaScript off', async () => {
    const { link, reference } = await orderLink('84,00 €');
    const ctx = await e2e.browser.newContext({ javaScriptEnabled: false });
    const page = await ctx.newPage();
    await page.goto(link);
    await page.screenshot({ path: path.join(SHOTS, 'checkout-form.png'), fullPage: true });
    await fillCard(page, '4242 4242 4242 4242');
    await page.getByRole('button', { name: 'Pay €84.00' }).click();
    await page.waitForLoadState();
    const body = await page.textContent('body');
    assert.match(body ?? '', /RCPT-/);
    assert.match(body ?? '', /4242/);
    await page.screenshot({ path: path.join(SHOTS, 'receipt-no-js.png'), fullPage: true });
    await ctx.close();
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    assert.equal(order.status, 'paid');
  });

  it('shows a decline, then takes another card, at 320 px wide', async () => {
    const { link, reference } = await orderLink('25.00 EUR');
    const ctx = await e2e.browser.newContext({ viewport: { width: 320, height: 800 } });
    const page = await ctx.newPage();
    await page.goto(link);
    await fillCard(page, '4000 0000 0000 9995');
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.waitForLoadState();
    const alert = page.getByRole('alert').first();
    assert.match((await alert.textContent()) ?? '', /insufficient funds/i);
    await page.screenshot({ path: path.join(SHOTS, 'declined-320px.png'), fullPage: true });
    const width = await page.evaluate<number>('document.documentElement.scrollWidth');
    assert.ok(width <= 320, `no horizontal scrolling at 320 px (content is ${width} px wide)`);
    await fillCard(page, '5555 5555 5555 4444');
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.waitForLoadState();
    assert.match((await page.textContent('body')) ?? '', /RCPT-/);
    await page.screenshot({ path: path.join(SHOTS, 'receipt-after-decline.png'), fullPage: true });
    await ctx.close();
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    assert.equal(order.status, 'paid');
    assert.deepEqual(order.attempts.map((a) => a.outcome), ['declined', 'approved']);
  });

  it('can be paid with the keyboard only', async () => {
    const { link, reference } = await orderLink('10 EUR');
    const ctx = await e2e.browser.newContext();
    const page = await ctx.newPage();
    await page.goto(link);
    await page.getByLabel('Card number').focus();
    typed.add('4242424242424242');
    for (const value of ['4242424242424242', '1230', '123', 'Giulia Verdi', 'giulia@example.org']) {
      await page.keyboard.type(value);
      await page.keyboard.press('Tab');
    }
    await page.keyboard.press('Enter');
    await page.waitForLoadState();
    await page.screenshot({ path: path.join(SHOTS, 'receipt-keyboard.png'), fullPage: true });
    await ctx.close();
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    assert.equal(order.status, 'paid');
  });
  /** Pays with the 3-D Secure card and waits for the (sandbox) bank's page. */
  async function toChallenge(page: Page, link: string) {
    await page.goto(link);
    await fillCard(page, '4000 0000 0000 3220');
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.waitForURL(/\/3ds\/3ds_/);
    await page.getByRole('heading', { name: 'Confirm this payment' }).waitFor();
  }

  it('passes the 3-D Secure challenge and pays', async () => {
    const { link, reference } = await orderLink('120,00 €');
    const ctx = await e2e.browser.newContext();
    const page = await ctx.newPage();
    await toChallenge(page, link);
    assert.match((await page.textContent('main')) ?? '', /€120\.00/);
    await page.screenshot({ path: path.join(SHOTS, '3ds-challenge.png'), fullPage: true });
    await page.getByRole('button', { name: 'Complete authentication' }).click();
    await page.getByRole('heading', { name: 'Payment received' }).waitFor();
    const body = (await page.textContent('body')) ?? '';
    assert.match(body, /Visa •••• 3220/);
    assert.match(body, /Issuing country\s*United States/);
    await page.screenshot({ path: path.join(SHOTS, 'receipt-3ds-passed.png'), fullPage: true });
    await ctx.close();
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    assert.equal(order.status, 'paid');
    assert.deepEqual(order.attempts.map((a) => a.outcome), ['challenge', 'approved']);
    assert.equal(order.payment?.card?.country, 'US');
  });

  it('fails the 3-D Secure challenge, shows why, then pays with another card (JavaScript off)', async () => {
    const { link, reference } = await orderLink('60 EUR');
    const ctx = await e2e.browser.newContext({ javaScriptEnabled: false });
    const page = await ctx.newPage();
    await toChallenge(page, link);
    await page.getByRole('button', { name: 'Fail authentication' }).click();
    await page.waitForLoadState();
    const alert = page.getByRole('alert').first();
    assert.match((await alert.textContent()) ?? '', /3-D Secure authentication failed/);
    await page.screenshot({ path: path.join(SHOTS, '3ds-failed.png'), fullPage: true });
    await fillCard(page, '4242 4242 4242 4242');
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.getByRole('heading', { name: 'Payment received' }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'receipt-after-3ds-failed.png'), fullPage: true });
    await ctx.close();
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    assert.equal(order.status, 'paid');
    assert.deepEqual(
      order.attempts.map((a) => [a.outcome, a.declineCode ?? '']),
      [['challenge', ''], ['declined', 'THREE_DS_FAILED'], ['approved', '']],
    );
  });

  it('switches language with the visible switch and pays in Italian', async () => {
    const { link, reference } = await orderLink('35,50 €');
    const ctx = await e2e.browser.newContext({ locale: 'en-GB' });
    const page = await ctx.newPage();
    await page.goto(link);
    await page.getByRole('navigation', { name: 'Language' }).getByRole('link', { name: 'Italiano' }).click();
    await page.waitForLoadState();
    assert.equal(await page.getAttribute('html', 'lang'), 'it');
    typed.add('5555555555554444');
    await page.getByLabel('Numero della carta').fill('5555 5555 5555 4444');
    await page.getByLabel('Scadenza (MM/AA)').fill('12/30');
    await page.getByLabel('Codice di sicurezza').fill('123');
    await page.getByLabel('Titolare della carta').fill('Giulia Verdi');
    await page.getByLabel('Email').fill('giulia@example.org');
    await page.getByRole('button', { name: /^Paga 35,50\s€$/ }).click();
    await page.getByRole('heading', { name: 'Pagamento ricevuto' }).waitFor();
    assert.match((await page.textContent('body')) ?? '', /Paese di emissione\s*Stati Uniti/);
    await page.screenshot({ path: path.join(SHOTS, 'receipt-italian.png'), fullPage: true });
    await ctx.close();
    assert.equal((await Order.findOne({ reference }).lean<OrderDoc>())!.status, 'paid');
  });

  it('with JavaScript, shows the brand and groups the number while it is typed', async () => {
    const { link, reference } = await orderLink('15 EUR');
    const ctx = await e2e.browser.newContext();
    const page = await ctx.newPage();
    await page.goto(link);
    const number = page.getByLabel('Card number');
    const brand = page.locator('#number-brand');
    assert.equal(await brand.textContent(), '', 'nothing shown before typing');
    await number.pressSequentially('4242');
    await page.locator('#number-brand', { hasText: /^Card type: Visa$/ }).waitFor();
    await number.pressSequentially('424242424242');
    assert.equal(await number.inputValue(), '4242 4242 4242 4242');
    await number.fill('');
    typed.add('378282246310005');
    await number.pressSequentially('378282246310005');
    await page.locator('#number-brand', { hasText: /^Card type: American Express$/ }).waitFor();
    assert.equal(await number.inputValue(), '3782 822463 10005');
    assert.equal(await brand.getAttribute('aria-live'), 'polite');
    await page.screenshot({ path: path.join(SHOTS, 'brand-detection.png'), fullPage: true });
    await page.getByLabel('Expiry (MM/YY)').fill('12/30');
    await page.getByLabel('Security code').fill('1234');
    await page.getByLabel('Name on card').fill('Giulia Verdi');
    await page.getByLabel('Email').fill('giulia@example.org');
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.getByRole('heading', { name: 'Payment received' }).waitFor();
    assert.match((await page.textContent('body')) ?? '', /American Express •••• 0005/);
    await page.screenshot({ path: path.join(SHOTS, 'receipt-amex-js.png'), fullPage: true });
    await ctx.close();
    assert.equal((await Order.findOne({ reference }).lean<OrderDoc>())!.status, 'paid');
  });

  it('with JavaScript, loading the page records nothing; typing in the card number records "viewed" once', async () => {
    const { link, reference } = await orderLink('21 EUR');
    const ctx = await e2e.browser.newContext();
    const page = await ctx.newPage();
    const beacons: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname.endsWith('/viewed')) beacons.push(r.url());
    });
    await page.goto(link, { waitUntil: 'networkidle' });
    await page.waitForTimeout(500);
    const order = async () => (await Order.findOne({ reference }).lean<OrderDoc>())!;
    assert.equal((await order()).viewedAt ?? null, null, 'loading the page records nothing');
    assert.deepEqual(beacons, [], 'no beacon on load');
    // Four digits, no card number: nothing for the scan of typed numbers below.
    await page.getByLabel('Card number').pressSequentially('4242');
    let viewed: Date | null | undefined;
    for (let i = 0; i < 50 && !viewed; i++) {
      viewed = (await order()).viewedAt;
      if (!viewed) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(viewed, 'typing records viewed');
    await page.getByLabel('Name on card').fill('Giulia Verdi');
    await page.waitForTimeout(300);
    assert.equal(beacons.length, 1, 'one beacon per page');
    assert.equal((await order()).status, 'pending');
    await ctx.close();
  });

  it('left no typed card number in the database, the mails or the process output', async () => {
    assert.ok(typed.size >= 5, [...typed].join(','));
    const collections = await mongoose.connection.db!.collections();
    for (const c of collections) {
      const dump = JSON.stringify(await c.find({}).toArray());
      for (const pan of typed) assert.ok(!dump.includes(pan), `${c.collectionName} holds ${pan}`);
    }
    // Raw (as sent) and decoded (base64/quoted-printable parts) text of every mail.
    const mails = e2e.sink.mails.map((m) => [m.raw.toString(), m.parsed.text ?? '', m.parsed.html || ''].join('\n')).join('\n');
    assert.ok(mails.length > 0);
    const output = e2e.app.output.join('\n');
    for (const pan of typed) {
      assert.ok(!mails.includes(pan), `a mail holds ${pan}`);
      assert.ok(!output.includes(pan), `the log holds ${pan}`);
    }
  });
});
