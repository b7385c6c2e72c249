import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import nodemailer from 'nodemailer';
import { type SMTPServer } from 'smtp-server';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { close, createSubmissionServer, listen } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createLogger } from '../../src/logger.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { rawClient, type Reply } from '../helpers/smtp-raw-client.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';
const LIMIT = 32 * 1024;

describe('SMTP submission door', function () {
  this.timeout(20_000);
  const db = useTestDatabase();
  const logger = createLogger('silent');
  let dataDir: string;
  let server: SMTPServer;
  let port: number;
  let shop: CreatedMerchant;
  let other: CreatedMerchant;
  const orders = createOrderService({ repos,
    publicUrl: 'http://localhost:3000',
    mailDomain: MAIL_DOMAIN,
    maxLinkLifetimeDays: 60,
    linkKeys: [{ kid: 't1', secret: 's'.repeat(32) }],
  });
  const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
  let n = 0;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-smtp-test-'));
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    shop = await merchants.create({ name: 'Shop', email: 'owner@shop.example' });
    other = await merchants.create({ name: 'Other', email: 'owner@other.example' });
    const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
    server = createSubmissionServer({ repos, merchants, intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: LIMIT, tls, production: false, logger });
    port = await listen(server, 0);
  });
  afterEach(() => intake.idle());
  after(async () => {
    await close(server);
    await intake.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const transport = (pass = shop.smtpPassword, extra: Record<string, unknown> = {}) =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      secure: false,
      auth: { user: shop.smtpUser, pass },
      tls: { rejectUnauthorized: false },
      ...extra,
    });
  const send = (text: string, opts: { to?: string; messageId?: string; pass?: string } = {}) =>
    transport(opts.pass).sendMail({
      from: 'owner@shop.example',
      to: opts.to ?? shop.inboundAddress,
      subject: 'Order',
      text,
      messageId: opts.messageId ?? `<smtp-${++n}.${Date.now()}@shop.example>`,
    });
  /** A raw session past greeting, EHLO and AUTH PLAIN as the shop. */
  async function loggedIn() {
    const c = rawClient(port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    const auth = Buffer.from(`\0${shop.smtpUser}\0${shop.smtpPassword}`).toString('base64');
    assert.equal((await c.cmd(`AUTH PLAIN ${auth}`)).code, 235);
    return c;
  }

  it('answers 250 with the stored id, then creates one order and one pay-link mail', async () => {
    const info = await send('Amount: 129.90\nReference: SMTP-1\nDescription: Table');
    assert.match(info.response, /^250 .*stored as [0-9a-f]{24}/);
    await intake.idle();
    const order = await Order.findOne({ merchantId: shop.id, reference: 'SMTP-1' }).lean();
    assert.equal(order?.amountMinor, 12990);
    assert.equal(await Order.countDocuments({ merchantId: shop.id }), 1);
    const mails = await Outbox.find({ orderId: order?._id }).lean();
    assert.deepEqual(mails.map((m) => m.template), ['paylink']);
  });

  it('accepts the recipient address in any case', async () => {
    const info = await send('Amount: 5\nReference: SMTP-CASE', { to: shop.inboundAddress.toUpperCase() });
    assert.match(info.response, /^250 /);
  });

  it('offers STARTTLS, SIZE and AUTH, and STARTTLS works', async () => {
    const c = rawClient(port);
    assert.equal((await c.read()).code, 220);
    const ehlo = await c.cmd('EHLO client.example');
    c.end();
    assert.equal(ehlo.code, 250);
    assert.match(ehlo.text, /STARTTLS/);
    assert.match(ehlo.text, new RegExp(`SIZE ${LIMIT}`));
    assert.match(ehlo.text, /AUTH PLAIN LOGIN/);
    const info = await transport(shop.smtpPassword, { requireTLS: true }).sendMail({
      from: 'owner@shop.example',
      to: shop.inboundAddress,
      subject: 'Over TLS',
      text: 'Amount: 7\nReference: SMTP-TLS',
    });
    assert.match(info.response, /^250 /);
  });

  it('reuses the generated development certificate', async () => {
    const first = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false });
    assert.equal(first.source, 'cached');
    await assert.rejects(loadSmtpTls({ smtpTls: undefined, dataDir, production: true }));
  });

  it('refuses a wrong password with 535', async () => {
    await assert.rejects(send('Amount: 1', { pass: 'wrong-password' }), (e: { code?: string; responseCode?: number }) => {
      assert.equal(e.code, 'EAUTH');
      assert.equal(e.responseCode, 535);
      return true;
    });
  });

  const recipients: Array<[string, () => string]> = [
    ['an unknown recipient', () => `orders+nobody@${MAIL_DOMAIN}`],
    ["another merchant's address", () => other.inboundAddress],
  ];
  for (const [name, to] of recipients) {
    it(`refuses ${name} with 550`, async () => {
      await assert.rejects(send('Amount: 1', { to: to() }), (e: { code?: string; responseCode?: number; rejectedErrors?: Array<{ responseCode?: number }> }) => {
        assert.equal(e.code, 'EENVELOPE');
        assert.equal(e.rejectedErrors?.[0]?.responseCode ?? e.responseCode, 550);
        return true;
      });
    });
  }

  it('refuses a declared SIZE over the limit with 552', async () => {
    const c = await loggedIn();
    const r = await c.cmd(`MAIL FROM:<owner@shop.example> SIZE=${LIMIT + 1}`);
    c.end();
    assert.equal(r.code, 552);
  });

  it('refuses more bytes than the limit with 552 and stores nothing', async () => {
    const before = await InboundMessage.countDocuments();
    const c = await loggedIn();
    assert.equal((await c.cmd('MAIL FROM:<owner@shop.example>')).code, 250);
    assert.equal((await c.cmd(`RCPT TO:<${shop.inboundAddress}>`)).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const line = `${'x'.repeat(76)}\r\n`;
    await c.write(`Subject: big\r\n\r\nAmount: 1\r\n${line.repeat(Math.ceil((LIMIT * 2) / line.length))}`);
    const r = await c.cmd('.');
    // The session stays usable after the refusal.
    const rset = await c.cmd('RSET');
    c.end();
    assert.equal(r.code, 552);
    assert.equal(rset.code, 250);
    assert.equal(await InboundMessage.countDocuments(), before);
  });

  it('creates one order when the same Message-ID arrives twice', async () => {
    const messageId = `<twice.${Date.now()}@shop.example>`;
    const first = await send('Amount: 15\nReference: SMTP-TWICE', { messageId });
    const second = await send('Amount: 15\nReference: SMTP-TWICE', { messageId });
    assert.match(first.response, /^250 /);
    assert.match(second.response, /^250 .*already received/);
    await intake.idle();
    assert.equal(await Order.countDocuments({ reference: 'SMTP-TWICE' }), 1);
    assert.equal(await InboundMessage.countDocuments({ messageKey: messageId }), 1);
  });

  it('answers a bad amount with a reply naming field, value and line, and no order', async () => {
    const info = await send('Hello,\nAmount: twelve euros\nReference: SMTP-BAD');
    await intake.idle();
    const id = /stored as ([0-9a-f]{24})/.exec(info.response)?.[1];
    assert.ok(id);
    assert.equal(await Order.countDocuments({ reference: 'SMTP-BAD' }), 0);
    const reply = await Outbox.findOne({ dedupeKey: `intake-reply:${id}` }).lean();
    assert.ok(reply);
    assert.deepEqual(reply.to, ['owner@shop.example']);
    const problems = (reply.data as { problems: Array<Record<string, unknown>> }).problems;
    assert.deepEqual(problems.map((p) => [p.field, p.code, p.value, p.line]), [['amount', 'AMOUNT_INVALID', 'twelve euros', 2]]);
  });

  it('answers 451 while the database is unavailable; a resend afterwards creates exactly one order', async () => {
    const messageId = `<dbdown.${Date.now()}@shop.example>`;
    const raw = `Message-ID: ${messageId}\r\nFrom: owner@shop.example\r\nSubject: x\r\n\r\nAmount: 21\r\nReference: SMTP-451\r\n`;
    const c = await loggedIn();
    assert.equal((await c.cmd('MAIL FROM:<owner@shop.example>')).code, 250);
    assert.equal((await c.cmd(`RCPT TO:<${shop.inboundAddress}>`)).code, 250);
    await mongoose.disconnect();
    let r: Reply;
    try {
      assert.equal((await c.cmd('DATA')).code, 354);
      r = await c.cmd(`${raw}.`);
    } finally {
      c.end();
      await mongoose.connect(db.uri(), { serverSelectionTimeoutMS: 10_000, autoIndex: false });
    }
    assert.equal(r.code, 451);
    assert.match(r.text, /4\.3\.0/);
    assert.equal(await InboundMessage.countDocuments({ messageKey: messageId }), 0);

    const again = await transport().sendMail({ envelope: { from: 'owner@shop.example', to: [shop.inboundAddress] }, raw });
    assert.match(again.response, /^250 /);
    await intake.idle();
    assert.equal(await Order.countDocuments({ reference: 'SMTP-451' }), 1);
  });
});
