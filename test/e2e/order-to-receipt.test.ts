// End to end, as a merchant and a customer would: the CLI creates a merchant, a standard SMTP
// client mails an order to the submission door of a real paymail process, the pay-link mail
// arrives at a real SMTP relay, the link is paid over HTTP, and both receipts arrive.
import assert from 'node:assert/strict';
import mongoose from 'mongoose';
import nodemailer from 'nodemailer';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { useE2eApp } from '../helpers/e2e-app.ts';
import { type SinkMail } from '../helpers/smtp-sink.ts';

const CARDS_USED = ['4242424242424242', '4000000000000002', '5555555555554444'];

function linkIn(mail: SinkMail): string {
  const m = /(http:\/\/localhost:\d+\/pay\/[^\s"<>]+)/.exec(mail.parsed.text ?? '');
  assert.ok(m, 'pay-link in the text part');
  return m[1]!.replace(/&amp;/g, '&');
}

/** Posts the checkout form as a browser does: with the CSRF cookie and token of the page it read. */
async function post(url: string, form: Record<string, string>): Promise<Response> {
  const page = await fetch(url);
  const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams({ _csrf: token, ...form }).toString(),
  });
}

describe('e2e: order mail → pay-link mail → checkout → receipts', function () {
  this.timeout(120_000);
  const e2e = useE2eApp({ name: 'Hotel Bellavista', email: 'desk@bellavista.example', args: ['--currency', 'EUR'] });
  let smtp: ReturnType<typeof nodemailer.createTransport>;

  before(() => {
    assert.match(e2e.merchant.inboundAddress, /^orders\+[a-z0-9]+@paymail\.test$/);
    smtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: e2e.app.ports.submission,
      secure: false,
      auth: { user: e2e.merchant.smtpUser, pass: e2e.merchant.smtpPassword },
      tls: { rejectUnauthorized: false },
    });
  });

  after(() => {
    smtp?.close();
  });

  let order: OrderDoc;
  let link: string;

  it('accepts an order mail and sends the pay-link mail with a QR code', async () => {
    const info = await smtp.sendMail({
      from: 'desk@bellavista.example',
      to: e2e.merchant.inboundAddress,
      subject: 'Booking 4711',
      messageId: '<booking-4711@bellavista.example>',
      text: 'Amount: 129,90 €\nReference: BK-4711\nDescription: Double room, 2 nights\nCustomer: Anna Rossi\n',
    });
    assert.match(info.response, /^250 /);
    const mail = await e2e.sink.waitFor((m) => m.parsed.subject?.includes('BK-4711') === true || (m.parsed.text ?? '').includes('BK-4711'));
    assert.deepEqual(mail.envelope.to, ['desk@bellavista.example']);
    assert.match(mail.parsed.text ?? '', /129\.90/);
    assert.ok(mail.parsed.html, 'HTML part');
    const qr = mail.parsed.attachments.find((a) => a.contentType === 'image/png' && a.contentId);
    assert.ok(qr, 'inline QR image');
    assert.ok((mail.parsed.html as string).includes(`cid:${qr.contentId!.replace(/[<>]/g, '')}`));
    link = linkIn(mail);
    order = (await Order.findOne({ reference: 'BK-4711' }).lean<OrderDoc>())!;
    assert.ok(order, `no order; mail was: ${mail.parsed.subject} ${mail.parsed.text}`);
    assert.equal(order.amountMinor, 12990);
    assert.equal(order.currency, 'EUR');
    assert.equal(order.status, 'pending');
  });

  it('shows the checkout page with the card form', async () => {
    const res = await fetch(link);
    assert.equal(res.status, 200);
    const html = await res.text();
    for (const label of ['Card number', 'Expiry (MM/YY)', 'Security code', 'Name on card', 'Email']) {
      assert.ok(html.includes(`${label}</label>`) || new RegExp(`<label[^>]*>\\s*${label.replace(/[()]/g, '\\$&')}`).test(html), label);
    }
    assert.ok(html.includes('Hotel Bellavista'));
    assert.ok(html.includes('Double room, 2 nights'));
    assert.match(html, /Pay €129\.90/);
  });

  it('declines 4000 0000 0000 0002, then approves 4242 4242 4242 4242', async () => {
    const card = { expiry: '12/30', cvc: '123', holder: 'Anna Rossi', email: 'anna@example.org' };
    const declined = await post(link, { ...card, number: '4000 0000 0000 0002' });
    assert.ok([200, 402, 422].includes(declined.status), `declined status ${declined.status}`);
    assert.match(await declined.text(), /declined/i);
    assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'pending');

    const paid = await post(link, { ...card, number: '4242 4242 4242 4242' });
    assert.equal(paid.status, 303);
    const receiptPage = await fetch(link);
    assert.equal(receiptPage.status, 200);
    const html = await receiptPage.text();
    assert.match(html, /4242/);
    assert.doesNotMatch(html, /4242 ?4242 ?4242 ?4242/);

    const after = (await Order.findById(order._id).lean<OrderDoc>())!;
    assert.equal(after.status, 'paid');
    assert.equal(after.payment?.card?.last4, '4242');
    assert.equal(after.payment?.card?.bin, '424242');
    assert.equal(after.attempts.length, 2);
    assert.equal(after.customer?.email, 'anna@example.org');
  });

  it('mails receipts to the customer and to the merchant', async () => {
    const toCustomer = await e2e.sink.waitFor((m) => m.envelope.to.includes('anna@example.org'));
    const toMerchant = await e2e.sink.waitFor(
      (m) => m.envelope.to.includes('desk@bellavista.example') && m !== e2e.sink.mails[0] && /RCPT-/.test(m.parsed.text ?? ''),
    );
    for (const m of [toCustomer, toMerchant]) {
      const text = m.parsed.text ?? '';
      assert.match(text, /RCPT-[A-Z0-9]+/);
      assert.match(text, /BK-4711/);
      assert.match(text, /129\.90/);
      assert.match(text, /4242/);
      assert.doesNotMatch(m.raw.toString(), /4242424242424242/);
    }
  });

  it('refuses a second payment on a paid order', async () => {
    const again = await post(link, { number: '5555555555554444', expiry: '12/30', cvc: '123', holder: 'Anna Rossi' });
    assert.notEqual(again.status, 303);
    const o = (await Order.findById(order._id).lean<OrderDoc>())!;
    assert.equal(o.payment?.card?.last4, '4242');
  });

  it('answers a tampered link with 404', async () => {
    const u = new URL(link);
    u.searchParams.set('a', '1');
    assert.equal((await fetch(u)).status, 404);
  });

  it('shows an expired page naming the merchant', async () => {
    await smtp.sendMail({
      from: 'desk@bellavista.example',
      to: e2e.merchant.inboundAddress,
      subject: 'Booking 4712',
      text: 'Importo: 50,00 EUR\nRiferimento: BK-4712\n',
    });
    const mail = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes('BK-4712'));
    const expiredLink = linkIn(mail);
    await Order.updateOne({ reference: 'BK-4712' }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    const res = await fetch(expiredLink);
    assert.equal(res.status, 410);
    assert.match(await res.text(), /Hotel Bellavista/);
  });

  it('creates one order when the same mail arrives twice, and a new one when a different mail re-uses its Message-ID', async () => {
    const before = await Order.countDocuments({});
    // The same mail again (an MTA's retry): one message, no new order.
    const again = await smtp.sendMail({
      from: 'desk@bellavista.example',
      to: e2e.merchant.inboundAddress,
      subject: 'Booking 4711',
      messageId: '<booking-4711@bellavista.example>',
      text: 'Amount: 129,90 €\nReference: BK-4711\nDescription: Double room, 2 nights\nCustomer: Anna Rossi\n',
    });
    assert.match(again.response, /^250 /);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await Order.countDocuments({}), before);
    // A different mail under the same Message-ID (scripts re-use ids): processed as new, and the
    // reply says the Message-ID was re-used (issue 10 item 13).
    const reused = await smtp.sendMail({
      from: 'desk@bellavista.example',
      to: e2e.merchant.inboundAddress,
      subject: 'Booking 4711 (again)',
      messageId: '<booking-4711@bellavista.example>',
      text: 'Amount: 129,90 €\nReference: BK-4711-B\n',
    });
    assert.match(reused.response, /^250 /);
    const reply = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes('same Message-ID'));
    assert.match(reply.parsed.text ?? '', /BK-4711-B/);
    assert.equal(await Order.countDocuments({ reference: 'BK-4711-B' }), 1);
    assert.equal(await Order.countDocuments({}), before + 1);
  });

  it('refuses a wrong SMTP password (535) and an unknown recipient (550)', async () => {
    const bad = nodemailer.createTransport({
      host: '127.0.0.1',
      port: e2e.app.ports.submission,
      auth: { user: e2e.merchant.smtpUser, pass: 'wrong-password' },
      tls: { rejectUnauthorized: false },
    });
    await assert.rejects(bad.sendMail({ from: 'a@b.example', to: e2e.merchant.inboundAddress, text: 'Amount: 1' }), (e: { responseCode?: number }) => {
      assert.equal(e.responseCode, 535);
      return true;
    });
    await assert.rejects(
      smtp.sendMail({ from: 'desk@bellavista.example', to: 'orders+nobody@paymail.test', text: 'Amount: 1' }),
      (e: { responseCode?: number }) => {
        assert.equal(e.responseCode, 550);
        return true;
      },
    );
  });

  it('never stored or logged a full card number or CVC', async () => {
    const collections = await mongoose.connection.db!.collections();
    for (const c of collections) {
      const dump = JSON.stringify(await c.find({}).toArray());
      for (const pan of CARDS_USED) assert.ok(!dump.includes(pan), `${c.collectionName} holds ${pan}`);
      assert.ok(!/"cvc"\s*:\s*"\d{3,4}"/.test(dump), `${c.collectionName} holds a CVC`);
    }
    const logs = e2e.app.output.join('\n');
    for (const pan of CARDS_USED) {
      assert.ok(!logs.includes(pan), 'logs hold a card number');
      assert.ok(!logs.includes(pan.replace(/(\d{4})(?=\d)/g, '$1 ')), 'logs hold a spaced card number');
    }
  });
});
