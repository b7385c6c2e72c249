// A way back from an expired link (issue 13 part 4), against the real database, the real HTTP app,
// the real SMTP submission door and intake: the expired page's "Ask <merchant> for a new link"
// (CSRF, once per expiry, a GET does nothing) -> the merchant's mail (EXTEND <ref> 7 days, the
// back-office link, replies go to the order address) -> the merchant's EXTEND reply -> the customer's
// renewed link, which works and can be paid (the expiry's close claim is freed); order.renewed;
// automatic renewal once; the back-office button for an order without a known customer address.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { type SMTPServer } from 'smtp-server';
import { Claim } from '../../src/db/claims.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { close, createSubmissionServer, listen } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createExpiryJob } from '../../src/jobs/expiry.job.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createIntakeService, type IntakeService } from '../../src/services/intake.service.ts';
import { type CreatedMerchant, createMerchantService } from '../../src/services/merchant.service.ts';
import { closeClaimKey } from '../../src/services/order-transitions.ts';
import { useTestDatabase, repos } from '../helpers/db.ts';
import { type BackofficeApp, BoClient, MAIL_DOMAIN, startBackofficeApp, textOf } from './backoffice-client.ts';

const DAY = 86_400_000;
const logger = createLogger('silent');
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');

describe('a way back from an expired link (issue 13 part 4)', function () {
  this.timeout(60_000);
  useTestDatabase();
  let app: BackofficeApp;
  let shop: CreatedMerchant;
  let merchant: MerchantDoc;
  let intake: IntakeService;
  let server: SMTPServer;
  let port: number;
  let dataDir: string;
  let renderer: MailRenderer;
  let seq = 0;

  const mails = (template: string, orderId: string) => Outbox.find({ template, orderId }).sort({ createdAt: 1 }).lean<OutboxDoc[]>();
  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;

  /** A pending order, then expired by the real expiry job. */
  async function expiredOrder(customerEmail?: string): Promise<{ order: OrderDoc; link: string }> {
    seq++;
    const r = await app.orders.create(
      merchant,
      { amountMinor: 12000, currency: 'EUR', reference: `RN-${seq}`, customerName: 'Marco', ...(customerEmail ? { customerEmail } : {}), expiresAt: new Date(Date.now() + 1_500) },
      { key: `rn:${seq}` },
    );
    // Expired for real (the link's signed expiry too), then closed by the expiry job.
    await new Promise((done) => setTimeout(done, Math.max(0, r.order.expiresAt.getTime() + 1_100 - Date.now())));
    const at = new Date();
    await createExpiryJob({ repos, events: createEventsService({ repos, now: () => at }), mailDomain: MAIL_DOMAIN, linkFor: app.orders.linkFor, logger, now: () => at }).runOnce();
    // Called in parallel, another call's job may hold this order's close claim and still be applying it.
    let order = await reload(r.order._id);
    for (const until = Date.now() + 5_000; order.status !== 'expired' && Date.now() < until; order = await reload(r.order._id)) {
      await new Promise((done) => setTimeout(done, 50));
    }
    assert.equal(order.status, 'expired');
    return { order, link: r.link };
  }

  /** An attribute value as a browser reads it. */
  const unescape = (s: string) => s.replace(/&#x3D;/g, '=').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');

  /** Opens the pay-link as the customer's browser and submits "Ask for a new link". */
  async function ask(link: string, extra: Record<string, string> = {}, client = new BoClient(app.base)) {
    const page = await client.get(link.slice(app.base.length));
    assert.equal(page.status, 410);
    const action = /<form method="post" action="([^"]+)" class="new-link-form">/.exec(page.html)?.[1];
    assert.ok(action, 'the expired page offers the form');
    return { page, reply: await client.post(unescape(action), extra), action: unescape(action), client };
  }
  /** The merchant's mail through the real submission door; the intake runs the command. */
  async function sendAsMerchant(subject: string, text: string): Promise<string> {
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port, secure: false, auth: { user: shop.smtpUser, pass: shop.smtpPassword }, tls: { rejectUnauthorized: false } })
      .sendMail({ from: 'desk@villa.example', to: shop.inboundAddress, subject, text, messageId: `<rn${++seq}.${Date.now()}@villa.example>` });
    await intake.idle();
    const id = /stored as ([0-9a-f]{24})/.exec(info.response)?.[1];
    assert.ok(id, info.response);
    return id;
  }

  before(async () => {
    app = await startBackofficeApp();
    renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: app.base });
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    shop = await merchants.create({ name: 'Villa Sole', email: 'desk@villa.example', locale: 'en', webhookUrl: 'https://villa.example/hooks' });
    merchant = (await Merchant.findById(shop.id).lean<MerchantDoc>())!;
    intake = createIntakeService({ repos, orders: app.orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger, events: createEventsService({ repos }) });
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-renewal-test-'));
    const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
    server = createSubmissionServer({ repos, merchants, intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: 256 * 1024, tls, production: false, logger });
    port = await listen(server, 0);
  });
  after(async () => {
    await close(server);
    await intake.close();
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('expired page -> the merchant’s mail -> EXTEND reply -> the customer’s renewed link, which can be paid', async () => {
    const { order, link } = await expiredOrder('marco@example.org');
    const { reply, action, client } = await ask(link);
    assert.equal(reply.status, 200);
    assert.match(textOf(reply.html), /Villa Sole has been asked for a new link\. It will be sent to marco@example\.org/);
    assert.equal((await client.request('GET', action)).status, 303, 'a GET of the request changes nothing');

    // Once per expiry: asking again does not mail the merchant again.
    const again = await client.post(action, {});
    assert.equal(again.status, 409);
    const requests = await mails('link-request', order._id);
    assert.equal(requests.length, 1);
    assert.deepEqual(requests[0]!.to, ['desk@villa.example']);
    assert.equal(requests[0]!.replyTo, shop.inboundAddress, 'the reply reaches the order address, where commands are read');
    const text = (await renderer.render({ template: 'link-request', locale: 'en', data: requests[0]!.data as Record<string, unknown> })).text;
    assert.match(text, new RegExp(`EXTEND ${order.reference} 7 days`));
    assert.ok(text.includes(`${app.base}/backoffice/orders/${order._id}`));
    const pageNow = await client.get(link.slice(app.base.length));
    assert.match(textOf(pageNow.html), /You have asked Villa Sole for a new link/);

    // The merchant answers from its mailbox.
    const inboundId = await sendAsMerchant(`Re: Your customer asks for a new pay-link: order ${order.reference}`, `EXTEND ${order.reference} 7 days\n\n> quoted`);
    const cmd = await Outbox.findOne({ dedupeKey: `command-reply:${inboundId}` }).lean<OutboxDoc>();
    assert.equal((cmd!.data as { code: string }).code, 'COMMAND_RENEWED');
    const renewed = await reload(order._id);
    assert.equal(renewed.status, 'pending');
    assert.equal(renewed.openReference, order.reference);
    assert.ok(Math.abs(renewed.expiresAt.getTime() - (Date.now() + 7 * DAY)) < 60_000);
    assert.equal(renewed.renewals?.length, 1);
    assert.match(renewed.renewals![0]!.by, /^command:/);
    assert.equal(await Claim.countDocuments({ _id: closeClaimKey(order._id) }), 0, 'the expiry’s close claim is freed');
    const hooks = await WebhookDelivery.find({ orderId: order._id, type: 'order.renewed' }).lean();
    assert.equal(hooks.length, 1);
    assert.equal((JSON.parse(hooks[0]!.body) as { data: { renewal: { by: string; number: number } } }).data.renewal.by, 'command');

    // The customer's mail, once, with a working link.
    const sent = await mails('link-renewed', order._id);
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0]!.to, ['marco@example.org']);
    const newLink = (sent[0]!.data as { link: string }).link;
    assert.notEqual(newLink, link, 'the new expiry is signed into the new link');
    const checkout = new BoClient(app.base);
    const form = await checkout.get(newLink.slice(app.base.length));
    assert.equal(form.status, 200);
    const paid = await checkout.post(newLink.slice(app.base.length), { number: '4242 4242 4242 4242', expiry: `12/${nextYear}`, cvc: '123', holder: 'Marco Bianchi' });
    assert.equal(paid.status, 303);
    assert.equal((await reload(order._id)).status, 'paid', 'a renewed order can be paid: its close claim is free');

    // The same reply processed again renews nothing and mails nobody twice.
    const again2 = await sendAsMerchant('Re: again', `EXTEND ${order.reference} 7 days`);
    assert.ok(again2);
    assert.equal((await mails('link-renewed', order._id)).length, 1);
  });

  it('automatic renewal at the customer’s request, once per order; a second expiry is announced and goes to the merchant', async () => {
    await Merchant.updateOne({ _id: merchant._id }, { $set: { autoRenewDays: 5 } });
    merchant = (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;
    try {
      const { order, link } = await expiredOrder('lucia@example.org');
      const { reply } = await ask(link);
      assert.equal(reply.status, 200);
      assert.match(textOf(reply.html), /renews links automatically: the new payment link has been sent to lucia@example\.org/);
      let now = await reload(order._id);
      assert.equal(now.status, 'pending');
      assert.ok(Math.abs(now.expiresAt.getTime() - (Date.now() + 5 * DAY)) < 60_000);
      assert.equal(now.renewals?.[0]?.by, 'auto');
      assert.equal((await mails('link-renewed', order._id)).length, 1);
      assert.equal((await mails('link-request', order._id)).length, 0, 'the merchant was not asked');

      // It expires again: announced again, and this time the merchant decides.
      const at = new Date(now.expiresAt.getTime() + 1_000);
      await createExpiryJob({ repos, events: createEventsService({ repos, now: () => at }), mailDomain: MAIL_DOMAIN, linkFor: app.orders.linkFor, logger, now: () => at }).runOnce();
      now = await reload(order._id);
      assert.equal(now.status, 'expired');
      assert.equal((await mails('order-expired', order._id)).length, 2, 'each expiry is announced');
      assert.equal(await WebhookDelivery.countDocuments({ orderId: order._id, type: 'order.expired' }), 2);
      const second = await ask(link);
      assert.equal(second.reply.status, 200);
      assert.match(textOf(second.reply.html), /has been asked for a new link/);
      assert.equal((await reload(order._id)).status, 'expired', 'no second automatic renewal');
      assert.equal((await mails('link-request', order._id)).length, 1);
    } finally {
      await Merchant.updateOne({ _id: merchant._id }, { $set: { autoRenewDays: 0 } });
      merchant = (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;
    }
  });

  it('EXTEND <ref> 7 days in the five languages’ words renews an expired order', async () => {
    const words = ['7 giorni', '7 jours', '7 Tage', '7 días', '1 week'];
    const orders = await Promise.all(words.map((_, i) => expiredOrder(`lang${i}@example.org`)));
    for (const [i, w] of words.entries()) {
      const id = await sendAsMerchant(`EXTEND ${orders[i]!.order.reference} ${w}`, '');
      const reply = await Outbox.findOne({ dedupeKey: `command-reply:${id}` }).lean<OutboxDoc>();
      assert.equal((reply!.data as { code: string }).code, 'COMMAND_RENEWED', w);
      const now = await reload(orders[i]!.order._id);
      assert.equal(now.status, 'pending', w);
      assert.ok(Math.abs(now.expiresAt.getTime() - (Date.now() + 7 * DAY)) < 120_000, w);
      assert.equal((await mails('link-renewed', now._id)).length, 1, w);
    }
    const text = (await renderer.render({ template: 'command-reply', locale: 'en', data: (await Outbox.findOne({ template: 'command-reply' }).sort({ createdAt: -1 }).lean<OutboxDoc>())!.data as Record<string, unknown> })).text;
    assert.match(text, /had expired; it is open again until .* and the customer was mailed the new link/);
  });

  it('a renewal interrupted after its claim is finished once by the repair; a request interrupted is finished by the next one', async () => {
    const { order } = await expiredOrder('crash@example.org');
    const expiresAt = new Date(Date.now() + 4 * DAY);
    // What a process that died right after winning the claim left behind.
    await Claim.collection.insertOne({
      _id: `order:${order._id}:renew:0` as never, at: new Date(Date.now() - 5 * 60_000), kind: 'order-renew', subject: order._id, applied: false,
      payload: { expiresAt, previousExpiredAt: order.expiredAt, by: 'merchant:crashed', previousStatus: 'expired', previousExpiresAt: order.expiresAt },
    });
    assert.equal((await reload(order._id)).status, 'expired');
    assert.equal(await app.renewals.repair(), 1);
    assert.equal(await app.renewals.repair(), 0, 'once');
    const now = await reload(order._id);
    assert.equal(now.status, 'pending');
    assert.equal(now.expiresAt.getTime(), expiresAt.getTime());
    assert.equal((await mails('link-renewed', order._id)).length, 1);
    assert.equal(await Claim.countDocuments({ _id: closeClaimKey(order._id) }), 0);

    const other = await expiredOrder('crash2@example.org');
    await Claim.collection.insertOne({ _id: `renewal-request:${other.order._id}:0` as never, at: new Date(), kind: 'renewal-request', subject: other.order._id, applied: false, payload: { email: 'crash2@example.org' } });
    const { reply } = await ask(other.link);
    assert.equal(reply.status, 200, 'the unfinished request is finished, not refused');
    assert.equal((await mails('link-request', other.order._id)).length, 1);
    assert.equal((await ask(other.link).catch(() => ({ reply: { status: 0 } }))).reply.status, 0, 'then the page no longer offers the form');
  });

  it('an order without the customer’s address: the page asks for it; the back-office button renews and mails it there', async () => {
    const { order, link } = await expiredOrder();
    const customer = new BoClient(app.base);
    const page = await customer.get(link.slice(app.base.length));
    assert.equal(page.status, 410);
    assert.match(page.html, /<input id="email" name="email" type="email"/);
    const action = unescape(/<form method="post" action="([^"]+)" class="new-link-form">/.exec(page.html)![1]!);
    const forged = await new BoClient(app.base).request('POST', action, { _csrf: 'x'.repeat(43), email: 'a@b.example' });
    assert.equal(forged.status, 403, 'CSRF like the checkout');
    const badEmail = await customer.post(action, { email: 'not an address' });
    assert.equal(badEmail.status, 422);
    const good = await customer.post(action, { email: 'Paola@Example.org' });
    assert.equal(good.status, 200);
    assert.equal((await mails('link-request', order._id)).length, 1);

    const admin = new BoClient(app.base);
    await MerchantUser.create({ merchantId: merchant._id, email: 'owner@villa.example', passwordHash: await hashPassword('villa owner password'), role: 'admin' });
    assert.equal((await admin.login('owner@villa.example', 'villa owner password')).status, 303);
    const detail = await admin.get(`/backoffice/orders/${order._id}`);
    assert.match(detail.html, /id="renew-form"/);
    assert.match(textOf(detail.html), /The customer asked for a new link \(paola@example\.org\)/);
    const done = await admin.post(`/backoffice/orders/${order._id}/renew`, { days: '10' });
    assert.equal(done.status, 303);
    const renewed = await reload(order._id);
    assert.equal(renewed.status, 'pending');
    assert.ok(Math.abs(renewed.expiresAt.getTime() - (Date.now() + 10 * DAY)) < 60_000);
    const sent = await mails('link-renewed', order._id);
    assert.deepEqual(sent.map((m) => m.to), [['paola@example.org']]);
    const after = await admin.get(`/backoffice/orders/${order._id}`);
    assert.match(textOf(after.html), /Link renewed until .* in the back office/);
    assert.match(textOf(after.html), /Expired/);
    // The old link's page now says a new link went out, instead of offering the form again.
    const old = await customer.get(link.slice(app.base.length));
    assert.match(textOf(old.html), /has renewed this payment: the new link was sent by email/);
    // Renewing an order that is not expired is refused.
    const refused = await admin.post(`/backoffice/orders/${order._id}/renew`, { days: '3' });
    assert.equal(refused.status, 409);
    assert.equal((await mails('link-renewed', order._id)).length, 1);
  });
});
