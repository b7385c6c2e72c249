// Reply commands (STATUS, CANCEL, RESEND, EXTEND) and duplicate mails, through the real SMTP
// submission door and the intake service with the real database; replies are rendered as sent.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { type SMTPServer } from 'smtp-server';
import { Claim, claimOnce } from '../../src/db/claims.ts';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { parseCommand } from '../../src/domain/commands.ts';
import { close, createSubmissionServer, listen } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { closeClaimKey } from '../../src/services/checkout.service.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';
const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../templates');
const DAY = 86_400_000;

interface CommandReply {
  code: string;
  capped?: boolean;
  resentTo?: string;
  previousExpiresAt?: string;
  order?: { reference: string; status: string; link: string; expiresAt: string; attempts: { total: number; declined: number } };
}

describe('reply commands', () => {
  describe('parseCommand', () => {
    const cases: Array<[string, { subject?: string; text?: string; html?: string }, unknown]> = [
      ['subject', { subject: 'STATUS A-1' }, { verb: 'STATUS', reference: 'A-1', from: 'subject' }],
      ['after Re:', { subject: 'Re: cancel a-1' }, { verb: 'CANCEL', reference: 'a-1', from: 'subject' }],
      ['after RE: AW:', { subject: 'RE: AW: Resend A-1' }, { verb: 'RESEND', reference: 'A-1', from: 'subject' }],
      ['EXTEND with a duration', { subject: 'EXTEND A-1 3 days' }, { verb: 'EXTEND', reference: 'A-1', argument: '3 days', from: 'subject' }],
      ['EXTEND with a date', { subject: 'extend A-1 2026-12-31' }, { verb: 'EXTEND', reference: 'A-1', argument: '2026-12-31', from: 'subject' }],
      ['first body line', { subject: 'Re: Pay-link for order A-1', text: '\n\n  STATUS A-1\n\nthanks\n> old' }, { verb: 'STATUS', reference: 'A-1', from: 'body' }],
      ['bold in HTML', { subject: 'x', html: '<div><b>CANCEL A-1</b></div><div>Sent from my phone</div>' }, { verb: 'CANCEL', reference: 'A-1', from: 'body' }],
      ['a sentence is not a command', { subject: 'Cancel the blue one please' }, undefined],
      ['a second line is not the first', { subject: 'x', text: 'Hello\nSTATUS A-1' }, undefined],
      ['STATUS takes no argument', { subject: 'STATUS A-1 now' }, undefined],
      ['no reference', { subject: 'STATUS' }, undefined],
      ['an order mail', { subject: 'Order', text: 'Amount: 10\nReference: A-1' }, undefined],
    ];
    for (const [name, mail, expected] of cases) it(name, () => assert.deepEqual(parseCommand(mail), expected));
  });

  describe('through intake and the submission door', function () {
    this.timeout(20_000);
    useTestDatabase();
    const logger = createLogger('silent');
    const orders = createOrderService({ repos,
      publicUrl: 'http://localhost:3000',
      mailDomain: MAIL_DOMAIN,
      maxLinkLifetimeDays: 60,
      linkKeys: [{ kid: 't1', secret: 'c'.repeat(32) }],
    });
    const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
    let shop: CreatedMerchant;
    let merchant: MerchantDoc;
    let renderer: MailRenderer;
    let server: SMTPServer;
    let port: number;
    let dataDir: string;
    let n = 0;

    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-commands-test-'));
      const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
      shop = await merchants.create({ name: 'Bottega', email: 'owner@bottega.example', locale: 'en' });
      merchant = (await Merchant.findById(shop.id).lean<MerchantDoc>())!;
      renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'http://localhost:3000' });
      const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
      server = createSubmissionServer({ repos, merchants, intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: 256 * 1024, tls, production: false, logger });
      port = await listen(server, 0);
    });
    afterEach(() => intake.idle());
    after(async () => {
      await close(server);
      await intake.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    /** Sends through the submission door as the merchant; returns the stored message's id. */
    async function send(subject: string, text: string, messageId = `<cmd${++n}.${Date.now()}@bottega.example>`): Promise<string> {
      const info = await nodemailer
        .createTransport({ host: '127.0.0.1', port, secure: false, auth: { user: shop.smtpUser, pass: shop.smtpPassword }, tls: { rejectUnauthorized: false } })
        .sendMail({ from: 'owner@bottega.example', to: shop.inboundAddress, subject, text, messageId });
      await intake.idle();
      const id = /stored as ([0-9a-f]{24})/.exec(info.response)?.[1];
      assert.ok(id, info.response);
      return id;
    }
    /** Stores directly through intake (no SMTP), for the many small cases. */
    async function store(subject: string, text = ''): Promise<string> {
      const raw = Buffer.from(
        `From: owner@bottega.example\r\nTo: ${shop.inboundAddress}\r\nSubject: ${subject}\r\nMessage-ID: <c${++n}.${Date.now()}@bottega.example>\r\n` +
          `Content-Type: text/plain; charset=utf-8\r\n\r\n${text}\r\n`,
      );
      const r = await intake.store({ merchantId: merchant._id, door: 'submission', raw, envelope: { rcptTo: [] } });
      await intake.idle();
      return r.id;
    }
    async function order(reference: string, extra = ''): Promise<OrderDoc> {
      await store('Order', `Amount: 25.00\nReference: ${reference}\n${extra}`);
      return (await Order.findOne({ merchantId: merchant._id, openReference: reference }).lean<OrderDoc>())!;
    }
    async function replyOf(inboundId: string): Promise<{ doc: OutboxDoc; data: CommandReply; text: string }> {
      const doc = await Outbox.findOne({ dedupeKey: `command-reply:${inboundId}` }).lean<OutboxDoc>();
      assert.ok(doc, 'a command reply was queued');
      const rendered = await renderer.render({ template: doc.template, locale: doc.locale, data: doc.data as Record<string, unknown> });
      return { doc, data: doc.data as CommandReply, text: rendered.text };
    }
    /** As if the process died after the command's effect but before the message was marked processed. */
    async function reprocess(inboundId: string) {
      await InboundMessage.updateOne({ _id: inboundId }, { $set: { status: 'received' } });
      assert.equal((await intake.process(inboundId)).status, 'processed');
    }

    it('STATUS by mail through the submission door: status, amount, link, expiry, attempts; threaded', async () => {
      const o = await order('ST-1');
      await Order.updateOne({ _id: o._id }, { $push: { attempts: { at: new Date(), outcome: 'declined', declineCode: 'insufficient_funds' } } });
      const messageId = `<status.${Date.now()}@bottega.example>`;
      const id = await send('STATUS ST-1', 'please', messageId);
      const { doc, data, text } = await replyOf(id);
      assert.equal(data.code, 'COMMAND_STATUS');
      assert.deepEqual(doc.to, ['owner@bottega.example']);
      assert.equal(doc.inReplyTo, messageId);
      assert.deepEqual(doc.references, [messageId]);
      assert.equal(data.order?.status, 'pending');
      assert.equal(data.order?.link, orders.linkFor(o));
      assert.ok(text.includes(orders.linkFor(o)));
      assert.match(text, /€25\.00/);
      assert.match(text, /Awaiting payment/);
      assert.match(text, /1 payment attempt, 1 declined\. Last: declined/);
      // A command is not an order.
      assert.equal(await Order.countDocuments({ 'source.inboundMessageId': id }), 0);
    });

    it('finds the reference whatever its case, from the first body line of a reply', async () => {
      await order('ST-2');
      const id = await store('Re: Pay-link for order ST-2', 'status st-2\n\nOn Mon, paymail wrote:\n> Amount: 25.00');
      assert.equal((await replyOf(id)).data.order?.reference, 'ST-2');
    });

    it('an unknown reference is answered as such', async () => {
      const id = await store('STATUS NOPE-404');
      const { data, text } = await replyOf(id);
      assert.equal(data.code, 'COMMAND_ORDER_NOT_FOUND');
      assert.match(text, /no order with the reference "NOPE-404"/);
    });

    it('CANCEL closes a pending order through its close claim, once, even when processed again', async () => {
      const o = await order('CA-1');
      const id = await store('Cancel CA-1');
      const after = (await Order.findById(o._id).lean<OrderDoc>())!;
      assert.equal(after.status, 'cancelled');
      assert.equal(after.openReference, o._id);
      assert.ok(after.cancelledAt);
      const claim = await Claim.findById(closeClaimKey(o._id)).lean();
      assert.equal(claim?.kind, 'order-cancel');
      assert.equal(claim?.owner, `inbound:${id}`);
      assert.equal((await replyOf(id)).data.code, 'COMMAND_CANCELLED');
      await reprocess(id);
      assert.equal((await Order.findById(o._id).lean<OrderDoc>())?.cancelledAt?.getTime(), after.cancelledAt.getTime());
      assert.equal(await Outbox.countDocuments({ dedupeKey: `command-reply:${id}` }), 1);
      // A second CANCEL mail is told the order was already cancelled; the reference is free again.
      assert.equal((await replyOf(await store('CANCEL CA-1'))).data.code, 'COMMAND_ALREADY_CANCELLED');
      const again = await order('CA-1');
      assert.notEqual(again._id, o._id);
    });

    it('CANCEL of a paid order is refused and says so', async () => {
      const o = await order('CA-2');
      // The payment won the close claim (as checkout does) and recorded the payment.
      assert.ok(await claimOnce(closeClaimKey(o._id), { kind: 'order-close', subject: o._id }));
      await Order.updateOne({ _id: o._id }, { $set: { status: 'paid', openReference: o._id, payment: { paidAt: new Date(), receiptNumber: 'R-1' } } });
      const { data, text } = await replyOf(await store('CANCEL CA-2'));
      assert.equal(data.code, 'COMMAND_ALREADY_PAID');
      assert.match(text, /already been paid/);
      assert.equal((await Order.findById(o._id).lean<OrderDoc>())?.status, 'paid');
    });

    it('CANCEL loses to a payment that holds the close claim but has not recorded it yet', async () => {
      const o = await order('CA-3');
      assert.ok(await claimOnce(closeClaimKey(o._id), { kind: 'order-close', subject: o._id }));
      assert.equal((await replyOf(await store('CANCEL CA-3'))).data.code, 'COMMAND_ALREADY_PAID');
      assert.equal((await Order.findById(o._id).lean<OrderDoc>())?.status, 'pending');
    });

    it('RESEND queues the pay-link again, once per command mail', async () => {
      const o = await order('RS-1', 'Email: cust@example.test\nDelivery: customer');
      const id = await store('RESEND RS-1');
      const key = `paylink:${o._id}:resend:${id}`;
      const resent = await Outbox.findOne({ dedupeKey: key }).lean<OutboxDoc>();
      assert.deepEqual(resent?.to, ['cust@example.test']);
      assert.equal((await replyOf(id)).data.resentTo, 'cust@example.test');
      await reprocess(id);
      assert.equal(await Outbox.countDocuments({ dedupeKey: key }), 1);
      await store('resend RS-1');
      assert.equal(await Outbox.countDocuments({ orderId: o._id, template: 'paylink' }), 3, 'original + two resends');
    });

    it('RESEND of a cancelled order sends nothing and says why', async () => {
      const o = await order('RS-2');
      await store('CANCEL RS-2');
      const id = await store('RESEND RS-2');
      assert.equal((await replyOf(id)).data.code, 'COMMAND_ALREADY_CANCELLED');
      assert.equal(await Outbox.countDocuments({ dedupeKey: `paylink:${o._id}:resend:${id}` }), 0);
    });

    it('EXTEND sets a new expiry (capped at the maximum) and replies with a new link carrying it; replayed as decided', async () => {
      const o = await order('EX-1');
      const started = Date.now();
      const id = await store('EXTEND EX-1 90 days');
      const after = (await Order.findById(o._id).lean<OrderDoc>())!;
      const expected = started + 60 * DAY;
      assert.ok(Math.abs(after.expiresAt.getTime() - expected) < 5_000, after.expiresAt.toISOString());
      assert.equal(after.linkExpiresAt, Math.floor(after.expiresAt.getTime() / 1000));
      const { data, text } = await replyOf(id);
      assert.equal(data.code, 'COMMAND_EXTENDED');
      assert.equal(data.capped, true);
      assert.equal(data.order?.link, orders.linkFor(after));
      assert.ok(data.order?.link.includes(`e=${after.linkExpiresAt}`));
      assert.notEqual(data.order?.link, orders.linkFor(o));
      assert.match(text, /capped at the maximum/);
      // The reply gives the expiry before and after.
      assert.equal(data.previousExpiresAt, o.expiresAt.toISOString());
      assert.match(text, /was valid until .+; it is now valid until/);
      await reprocess(id);
      assert.equal((await Order.findById(o._id).lean<OrderDoc>())?.expiresAt.getTime(), after.expiresAt.getTime());
    });

    it('EXTEND never shortens: "3 days" on a link valid 7 more days keeps it, and the reply says so with both dates', async () => {
      const o = await order('EX-3');
      assert.ok(o.expiresAt.getTime() - Date.now() > 6 * DAY, 'the merchant default of 7 days');
      const id = await store('EXTEND EX-3 3 days');
      const after = (await Order.findById(o._id).lean<OrderDoc>())!;
      assert.equal(after.expiresAt.getTime(), o.expiresAt.getTime());
      assert.equal(after.linkExpiresAt, o.linkExpiresAt);
      const { data, text } = await replyOf(id);
      assert.equal(data.code, 'COMMAND_EXPIRY_KEPT');
      assert.equal(data.previousExpiresAt, o.expiresAt.toISOString());
      assert.equal(data.order?.expiresAt, o.expiresAt.toISOString());
      assert.match(text, /never shortens/);
      // A longer one still extends, from the later of now + duration and the current expiry.
      const longer = await replyOf(await store('EXTEND EX-3 10 days'));
      assert.equal(longer.data.code, 'COMMAND_EXTENDED');
      assert.equal(longer.data.previousExpiresAt, o.expiresAt.toISOString());
      assert.ok(Math.abs(new Date(longer.data.order!.expiresAt).getTime() - (Date.now() + 10 * DAY)) < 5_000);
    });

    it('EXTEND with a lifetime it cannot read, or of a paid order, changes nothing', async () => {
      const o = await order('EX-2');
      const bad = await replyOf(await store('EXTEND EX-2 soon'));
      assert.equal(bad.data.code, 'COMMAND_DURATION_INVALID');
      assert.match(bad.text, /EXTEND EX-2 3 days/);
      await Order.updateOne({ _id: o._id }, { $set: { status: 'paid', openReference: o._id } });
      assert.equal((await replyOf(await store('EXTEND EX-2 3 giorni'))).data.code, 'COMMAND_ALREADY_PAID');
      assert.equal((await Order.findById(o._id).lean<OrderDoc>())?.expiresAt.getTime(), o.expiresAt.getTime());
    });

    it('the same mail sent twice through the door creates one order and answers with the existing link', async () => {
      const messageId = `<twice.${Date.now()}@bottega.example>`;
      const first = await send('Order', 'Amount: 33.00\nReference: TW-1', messageId);
      const second = await send('Order', 'Amount: 33.00\nReference: TW-1', messageId);
      assert.equal(first, second);
      const made = await Order.find({ reference: 'TW-1' }).lean<OrderDoc[]>();
      assert.equal(made.length, 1);
      const reply = await Outbox.findOne({ dedupeKey: `intake-reply:${first}:redelivered` }).lean<OutboxDoc>();
      const data = reply?.data as { created: Array<{ reference: string; link: string; duplicate: string }> };
      assert.deepEqual(data.created.map((c) => [c.reference, c.link, c.duplicate]), [['TW-1', orders.linkFor(made[0]!), 'source']]);
      assert.equal(reply?.inReplyTo, messageId);
      // A third delivery is not answered again.
      await send('Order', 'Amount: 33.00\nReference: TW-1', messageId);
      assert.equal(await Outbox.countDocuments({ dedupeKey: { $regex: `^intake-reply:${first}` } }), 1);
    });

    it('the same reference while its order is open answers with the existing link', async () => {
      const o = await order('TW-2');
      const id = await store('Order again', 'Amount: 33.00\nReference: TW-2');
      const reply = await Outbox.findOne({ dedupeKey: `intake-reply:${id}` }).lean<OutboxDoc>();
      const data = reply?.data as { created: Array<{ link: string; duplicate: string }> };
      assert.deepEqual(data.created.map((c) => [c.link, c.duplicate]), [[orders.linkFor(o), 'reference']]);
      assert.equal(await Order.countDocuments({ reference: 'TW-2' }), 1);
    });

    it('a capped expiry in an order mail is told to the merchant', async () => {
      const id = await store('Order', 'Amount: 5\nReference: CAP-1\nExpiry: 120 days');
      const reply = await Outbox.findOne({ dedupeKey: `intake-reply:${id}` }).lean<OutboxDoc>();
      assert.deepEqual((reply?.data as { created: Array<{ capped?: boolean }> }).created.map((c) => c.capped), [true]);
      const rendered = await renderer.render({ template: 'intake-reply', locale: 'en', data: reply!.data as Record<string, unknown> });
      assert.match(rendered.text, /expiry capped at the maximum link lifetime/);
    });
  });
});
