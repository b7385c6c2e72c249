// Bounces end to end (issue 13 part 8): a real pay-link leaves through the outbox to a local SMTP
// relay with its VERP return path as MAIL FROM; DSNs in the formats real MTAs produce
// (test/fixtures/bounces/) come back over SMTP, with the null sender, to the real MX door; the
// order's history, the merchant's one mail, the mail.bounced webhook, exactly-once on redelivery
// and after a crash, forged return paths (550), delays (recorded, no alert), a bounce of the
// bounce notice (recorded only), and `RESEND <ref> new@address` through the submission door.
// Over 300 lines: the cases share one set of real servers (relay, MX and submission doors, outbox
// worker) started once; split, each file would start them again.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import nodemailer from 'nodemailer';
import { type SMTPServer } from 'smtp-server';
import { type MerchantDoc } from '../../src/db/merchants.repository.ts';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { type OrderDoc } from '../../src/db/orders.repository.ts';
import { createVerp, deriveVerpKey } from '../../src/domain/verp.ts';
import { createBackofficeViews } from '../../src/http/backoffice/backoffice.views.ts';
import { timeline } from '../../src/http/backoffice/backoffice.view-model.ts';
import { createMailAuthenticator, createDnsResolver } from '../../src/inbound/mail-auth.ts';
import { createMxServer } from '../../src/inbound/mx-server.ts';
import { close, listen } from '../../src/inbound/smtp-common.ts';
import { createSubmissionServer } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { createBounceService } from '../../src/services/bounce.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { rawClient } from '../helpers/smtp-raw-client.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

const MAIL_DOMAIN = 'paymail.test';
const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../templates');
const LINK_KEYS = [{ kid: 't1', secret: 'v'.repeat(32) }];
/** What the fixtures carry in place of the real return path and customer. */
const FIXTURE_RETURN_PATH = 'bounce+65f0c0ffee0000000000abcd-0123456789ab@paymail.example';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/bounces/${name}`, import.meta.url), 'utf8');

describe('bounces: VERP return path, MX door, history, merchant mail, webhook, RESEND to a new address', function () {
  this.timeout(30_000);
  useTestDatabase();
  const logger = createLogger('silent');
  const verp = createVerp(LINK_KEYS.map((k) => deriveVerpKey(k.secret)), MAIL_DOMAIN);
  const events = createEventsService({ repos });
  const orders = createOrderService({ repos, publicUrl: 'http://localhost:3000', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: LINK_KEYS });
  const bounces = createBounceService({ repos, mailDomain: MAIL_DOMAIN, events, logger });
  const intake = createIntakeService({ repos, orders, bounces, events, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
  let relay: SmtpSink;
  let mx: SMTPServer;
  let submission: SMTPServer;
  let mxPort: number;
  let submissionPort: number;
  let dataDir: string;
  let shop: CreatedMerchant;
  let merchant: MerchantDoc;
  let worker: ReturnType<typeof createOutboxWorker>;
  let n = 0;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-bounces-test-'));
    relay = await startSmtpSink();
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    shop = await merchants.create({ name: 'Hotel Bellavista', email: 'desk@bellavista.example', locale: 'en', webhookUrl: 'https://hooks.bellavista.example/paymail' });
    merchant = (await repos.merchants.findById(shop.id))!;
    const renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'http://localhost:3000' });
    worker = createOutboxWorker({
      repos,
      renderer,
      transport: createMailTransport({ outboundSmtpUrl: relay.url, production: false }),
      from: `paymail <no-reply@${MAIL_DOMAIN}>`,
      returnPath: verp.returnPath,
      logger,
    });
    const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
    // No DNS is needed: bounces are not asked for merchant alignment (a resolver that is never used).
    const authenticator = createMailAuthenticator({ mta: MAIL_DOMAIN, resolver: createDnsResolver({ servers: ['127.0.0.1:9'], timeoutMs: 200, tries: 1 }) });
    mx = createMxServer({ repos, intake, authenticator, findMerchantByAlias: repos.merchants.findByAlias, mailDomain: MAIL_DOMAIN, maxMessageBytes: 1024 * 1024, tls, logger, verp });
    mxPort = await listen(mx, 0);
    submission = createSubmissionServer({ repos, merchants, intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: 256 * 1024, tls, production: false, logger });
    submissionPort = await listen(submission, 0);
  });
  afterEach(() => intake.idle());
  after(async () => {
    await close(mx);
    await close(submission);
    await intake.close();
    await relay.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A customer-delivery order and its pay-link, sent through the outbox to the relay. */
  async function payLinkSent(reference: string, customerEmail: string): Promise<{ order: OrderDoc; mail: OutboxDoc; returnPath: string }> {
    const { order } = await orders.create(merchant, { amountMinor: 12990, currency: 'EUR', reference, customerEmail, customerName: 'Anna Rossi', delivery: 'customer' }, { key: `test:${reference}` });
    await orders.queuePayLinkMail(order, merchant);
    await worker.runOnce();
    const mail = (await Outbox.findOne({ dedupeKey: `paylink:${order._id}` }).lean<OutboxDoc>())!;
    assert.equal(mail.status, 'sent');
    const sent = await relay.waitFor((m) => m.messageId === mail.messageId);
    return { order, mail, returnPath: sent.envelope.from };
  }

  /** A DSN fixture made about `returnPath` and `recipient` (in place of the fixture's own). */
  const dsn = (file: string, returnPath: string, fixtureRecipient: string, recipient: string, messageId?: string) => {
    let text = fixture(file).replaceAll(FIXTURE_RETURN_PATH, returnPath).replaceAll(fixtureRecipient, recipient);
    if (messageId) text = text.replace(/^Message-I[Dd]:.*$/m, `Message-ID: ${messageId}`);
    return text.replace(/\r?\n/g, '\r\n');
  };

  /** Delivers raw bytes to the MX door with the null sender, as a MAILER-DAEMON does; the DATA reply. */
  async function deliverBounce(rcpt: string, raw: string): Promise<{ rcpt: number; data?: number; text: string }> {
    const c = rawClient(mxPort);
    try {
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('EHLO relay.example')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<>')).code, 250);
      const r = await c.cmd(`RCPT TO:<${rcpt}>`);
      if (r.code !== 250) return { rcpt: r.code, text: r.text };
      assert.equal((await c.cmd('DATA')).code, 354);
      const body = raw.replace(/^\./gm, '..');
      const d = await c.cmd(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.`);
      await c.cmd('QUIT').catch(() => undefined);
      return { rcpt: r.code, data: d.code, text: d.text };
    } finally {
      c.end();
    }
  }

  const noticesFor = (mailId: unknown) => Outbox.find({ dedupeKey: `mail-bounced:${mailId}` }).lean<OutboxDoc[]>();
  const bouncedEvents = async () => (await repos.webhooks.log(merchant._id, 100)).filter((d) => d.type === 'mail.bounced');

  it('a pay-link leaves with its VERP return path as MAIL FROM; the visible From is unchanged', async () => {
    const { mail, returnPath } = await payLinkSent('BK-4700', 'anna.verp@example.org');
    assert.equal(returnPath, verp.returnPath(String(mail._id)));
    assert.match(returnPath, new RegExp(`^bounce\\+${String(mail._id)}-[0-9a-f]{12}@${MAIL_DOMAIN.replace('.', '\\.')}$`));
    const sent = relay.mails.find((m) => m.messageId === mail.messageId)!;
    assert.equal(sent.parsed.from?.value[0]?.address, `no-reply@${MAIL_DOMAIN}`);
    assert.deepEqual(sent.envelope.to.sort(), ['anna.verp@example.org', 'desk@bellavista.example']);
  });

  it('a Postfix DSN: history, ONE merchant mail asking for RESEND, mail.bounced webhook; exactly once on redelivery, a second report and a crash replay', async () => {
    const { order, mail, returnPath } = await payLinkSent('BK-4711', 'anna.rossi@example.org');
    const raw = dsn('postfix-user-unknown.eml', returnPath, 'anna.rossi@example.org', 'anna.rossi@example.org');
    const first = await deliverBounce(returnPath, raw);
    assert.equal(first.data, 250, first.text);
    await intake.idle();

    // History: the order page's timeline.
    const mails = await repos.outbox.forOrder(order._id, merchant._id);
    const entries = timeline(createBackofficeViews(TEMPLATES_DIR), order, mails, 'en', 'Europe/Rome');
    const line = entries.find((e) => /undeliverable/i.test(e.text));
    assert.ok(line, entries.map((e) => e.text).join('\n'));
    assert.equal(
      line.text,
      'Pay-link undeliverable to anna.rossi@example.org: 550 5.1.1 <anna.rossi@example.org>: Recipient address rejected: User unknown in virtual mailbox table',
    );
    assert.equal(line.tone, 'error');

    // The merchant's one mail, sent through the outbox (itself with a return path), answerable.
    const [notice, ...more] = await noticesFor(mail._id);
    assert.ok(notice);
    assert.equal(more.length, 0);
    assert.deepEqual(notice.to, ['desk@bellavista.example']);
    assert.equal(notice.replyTo, shop.inboundAddress);
    await worker.runOnce();
    const got = await relay.waitFor((m) => m.messageId === notice.messageId);
    assert.equal(got.envelope.from, verp.returnPath(String(notice._id)));
    assert.equal(got.parsed.subject, 'Undeliverable: the pay-link for order BK-4711 to anna.rossi@example.org');
    assert.match(got.parsed.text ?? '', /RESEND BK-4711 new@address/);
    assert.match(got.parsed.text ?? '', /User unknown in virtual mailbox table/);

    // The webhook, with the order reference, recipient, status and reason.
    const [event, ...moreEvents] = await bouncedEvents();
    assert.ok(event);
    assert.equal(moreEvents.length, 0);
    const body = JSON.parse(event.body) as { type: string; data: { order: { reference: string }; bounce: Record<string, unknown> } };
    assert.equal(body.type, 'mail.bounced');
    assert.equal(body.data.order.reference, 'BK-4711');
    assert.equal(body.data.bounce.recipient, 'anna.rossi@example.org');
    assert.equal(body.data.bounce.status, '5.1.1');
    assert.equal(body.data.bounce.mail, 'paylink');
    assert.match(String(body.data.bounce.reason), /^550 5\.1\.1 /);

    // The same DSN again (the relay lost our 250): stored once, nothing more.
    const again = await deliverBounce(returnPath, raw);
    assert.equal(again.data, 250);
    assert.match(again.text, /already received/);
    // Another MTA's report about the same mail (a Gmail DSN): recorded, no second alert.
    const gmail = await deliverBounce(returnPath, dsn('gmail-no-such-user.eml', returnPath, 'luca.bianchi.1987@gmail.com', 'anna.rossi@example.org'));
    assert.equal(gmail.data, 250);
    await intake.idle();
    // A crash replay: the first bounce processed again from the start.
    const stored = await InboundMessage.findOne({ kind: 'bounce', bounceOf: String(mail._id) }).sort({ receivedAt: 1 }).lean();
    assert.ok(stored);
    await InboundMessage.updateOne({ _id: stored._id }, { $set: { status: 'received' } });
    assert.equal((await intake.process(String(stored._id))).status, 'processed');

    assert.equal((await noticesFor(mail._id)).length, 1, 'one merchant mail');
    assert.equal((await bouncedEvents()).length, 1, 'one webhook');
    const recorded = (await Outbox.findById(mail._id).lean<OutboxDoc>())!;
    assert.match(recorded.bounce?.reason ?? '', /virtual mailbox table/, 'the first report stands');
    await worker.runOnce();
    assert.equal(relay.mails.filter((m) => m.to.includes('desk@bellavista.example') && /^Undeliverable: .*BK-4711/.test(m.parsed.subject ?? '')).length, 1);
  });

  for (const [file, fixtureRecipient, status] of [
    ['exim-mailbox-unavailable.eml', 'k.meyer@example.net', '5.0.0'],
    ['outlook-ndr-recipient-not-found.eml', 'm.dubois@contoso.example', '5.1.10'],
    ['qmail-plain-failure.eml', 's.garcia@example.es', '5.1.1'],
  ] as const) {
    it(`${file}: matched to its mail through the return path and alerted once`, async () => {
      const ref = `BK-${++n}-${file.split('-')[0]}`;
      const customer = `c${n}@example.net`;
      const { mail, returnPath } = await payLinkSent(ref, customer);
      assert.equal((await deliverBounce(returnPath, dsn(file, returnPath, fixtureRecipient, customer))).data, 250);
      await intake.idle();
      const recorded = (await Outbox.findById(mail._id).lean<OutboxDoc>())!;
      assert.equal(recorded.bounce?.recipient, customer);
      assert.equal(recorded.bounce?.status, status);
      assert.equal((await noticesFor(mail._id)).length, 1);
    });
  }

  it('a crash after the claim and the history, before the mail and the webhook: the next bounce finishes them once, with the first report’s facts', async () => {
    const { order, mail, returnPath } = await payLinkSent('BK-CRASH', 'crash@example.org');
    const mailId = String(mail._id);
    // What the first processing left before it died: the claim with its facts, the history record.
    const first = { at: new Date(), recipient: 'crash@example.org', status: '5.1.1', reason: '550 5.1.1 first report', inboundId: 'inb_first' };
    assert.ok(await repos.claims.once(`bounce:${mailId}`, { kind: 'mail-bounce', subject: mailId, payload: { ...first, at: first.at.toISOString() } }, first.at));
    assert.ok(await repos.outbox.recordBounce(mailId, first));
    // Another report arrives (the relay retried, or a second MTA): its processing completes the rest.
    assert.equal((await deliverBounce(returnPath, dsn('exim-mailbox-unavailable.eml', returnPath, 'k.meyer@example.net', 'crash@example.org'))).data, 250);
    await intake.idle();
    const notices = await noticesFor(mail._id);
    assert.equal(notices.length, 1);
    assert.equal((notices[0]!.data as { reason: string }).reason, '550 5.1.1 first report');
    const events = (await bouncedEvents()).filter((e) => e.orderId === order._id);
    assert.equal(events.length, 1);
    assert.equal((JSON.parse(events[0]!.body) as { data: { bounce: { reason: string } } }).data.bounce.reason, '550 5.1.1 first report');
    assert.equal((await Outbox.findById(mail._id).lean<OutboxDoc>())!.bounce?.reason, '550 5.1.1 first report');
    assert.equal((await repos.claims.get(`bounce:${mailId}`))?.applied, true);
  });

  it('a delay warning (4.4.1, Action: delayed) is recorded and alerts nobody', async () => {
    const { order, mail, returnPath } = await payLinkSent('BK-DELAY', 'slow@example.org');
    assert.equal((await deliverBounce(returnPath, dsn('postfix-delayed.eml', returnPath, 'anna.rossi@example.org', 'slow@example.org'))).data, 250);
    await intake.idle();
    const recorded = (await Outbox.findById(mail._id).lean<OutboxDoc>())!;
    assert.equal(recorded.delayed?.status, '4.4.1');
    assert.equal(recorded.bounce?.at, undefined);
    assert.equal((await noticesFor(mail._id)).length, 0);
    assert.equal((await bouncedEvents()).filter((e) => e.orderId === order._id).length, 0);
    const entries = timeline(createBackofficeViews(TEMPLATES_DIR), order, await repos.outbox.forOrder(order._id, merchant._id), 'en', 'Europe/Rome');
    assert.ok(entries.some((e) => e.text === 'Delivery to slow@example.org delayed, still being tried: connect to mx1.example.org[198.51.100.7]:25: Connection timed out'));
  });

  it('an out-of-office reply to a return path is recorded, not taken for a bounce', async () => {
    const { mail, returnPath } = await payLinkSent('BK-OOO', 'away@example.org');
    assert.equal((await deliverBounce(returnPath, dsn('vacation-autoreply.eml', returnPath, 'anna.rossi@example.org', 'away@example.org'))).data, 250);
    await intake.idle();
    const recorded = (await Outbox.findById(mail._id).lean<OutboxDoc>())!;
    assert.equal(recorded.bounce?.at, undefined);
    assert.equal((await noticesFor(mail._id)).length, 0);
    const stored = await InboundMessage.findOne({ bounceOf: String(mail._id) }).lean();
    assert.equal((stored?.result?.bounce as { outcome?: string } | undefined)?.outcome, 'none');
  });

  it('forged or unknown return paths get 550 at RCPT and store nothing', async () => {
    const { mail, returnPath } = await payLinkSent('BK-FORGE', 'forge@example.org');
    const before = await InboundMessage.countDocuments({});
    const tag = returnPath.slice(returnPath.indexOf('-') + 1, returnPath.indexOf('@'));
    const forged = returnPath.replace(tag, tag.endsWith('0') ? `${tag.slice(0, -1)}1` : `${tag.slice(0, -1)}0`);
    const otherMail = verp.returnPath(String(new mongoose.Types.ObjectId())); // a valid tag, no such mail
    const strangerKey = createVerp([deriveVerpKey('x'.repeat(32))], MAIL_DOMAIN).returnPath(String(mail._id));
    for (const rcpt of [forged, otherMail, strangerKey, `bounce+${String(mail._id)}@${MAIL_DOMAIN}`]) {
      const r = await deliverBounce(rcpt, dsn('postfix-user-unknown.eml', rcpt, 'anna.rossi@example.org', 'forge@example.org'));
      assert.equal(r.rcpt, 550, `${rcpt}: ${r.text}`);
    }
    assert.equal(await InboundMessage.countDocuments({}), before);
  });

  it('a bounce of the bounce notice is recorded only: no second notice, no webhook', async () => {
    const { mail, returnPath } = await payLinkSent('BK-LOOP', 'loop@example.org');
    assert.equal((await deliverBounce(returnPath, dsn('postfix-user-unknown.eml', returnPath, 'anna.rossi@example.org', 'loop@example.org'))).data, 250);
    await intake.idle();
    const [notice] = await noticesFor(mail._id);
    assert.ok(notice);
    await worker.runOnce();
    const eventsBefore = (await bouncedEvents()).length;
    const outboxBefore = await Outbox.countDocuments({});
    // The merchant's own mailbox bounces the notice.
    const noticePath = verp.returnPath(String(notice._id));
    assert.equal((await deliverBounce(noticePath, dsn('postfix-user-unknown.eml', noticePath, 'anna.rossi@example.org', 'desk@bellavista.example'))).data, 250);
    await intake.idle();
    assert.equal((await Outbox.findById(notice._id).lean<OutboxDoc>())!.bounce?.recipient, 'desk@bellavista.example');
    assert.equal(await Outbox.countDocuments({}), outboxBefore, 'nothing queued');
    assert.equal((await bouncedEvents()).length, eventsBefore, 'no webhook');
  });

  it('RESEND <ref> new@address through the submission door: the address is corrected and the pay-link goes there; a bad address is named', async () => {
    const { order, returnPath } = await payLinkSent('BK-4720', 'anna.typo@exmaple.org');
    assert.equal((await deliverBounce(returnPath, dsn('postfix-user-unknown.eml', returnPath, 'anna.rossi@example.org', 'anna.typo@exmaple.org'))).data, 250);
    await intake.idle();

    const send = async (text: string) => {
      const info = await nodemailer
        .createTransport({ host: '127.0.0.1', port: submissionPort, secure: false, auth: { user: shop.smtpUser, pass: shop.smtpPassword }, tls: { rejectUnauthorized: false } })
        .sendMail({ from: 'desk@bellavista.example', to: shop.inboundAddress, subject: 'Re: Undeliverable: the pay-link for order BK-4720', text, messageId: `<resend${++n}.${Date.now()}@bellavista.example>` });
      await intake.idle();
      return /stored as ([0-9a-f]{24})/.exec(info.response)![1]!;
    };
    const replyOf = async (inboundId: string) => (await Outbox.findOne({ dedupeKey: `command-reply:${inboundId}` }).lean<OutboxDoc>())!.data as { code: string; resentTo?: string; message?: string };

    // A malformed address: nothing changes, the reply names the problem.
    const bad = await send('RESEND BK-4720 anna.rossi@@example.org\n\n> The pay-link for order BK-4720 could not be delivered');
    assert.equal((await replyOf(bad)).code, 'COMMAND_EMAIL_INVALID');
    assert.equal((await repos.orders.byId(order._id))!.customer?.email, 'anna.typo@exmaple.org');

    const good = await send('RESEND BK-4720 Anna.Rossi@Example.org\n\n> The pay-link for order BK-4720 could not be delivered');
    const reply = await replyOf(good);
    assert.equal(reply.code, 'COMMAND_RESENT_TO');
    assert.equal(reply.resentTo, 'anna.rossi@example.org');
    const updated = (await repos.orders.byId(order._id))!;
    assert.equal(updated.customer?.email, 'anna.rossi@example.org');
    assert.equal(updated.delivery, 'customer');
    const resent = (await Outbox.findOne({ dedupeKey: `paylink:${order._id}:resend:${good}` }).lean<OutboxDoc>())!;
    assert.deepEqual(resent.to, ['anna.rossi@example.org']);
    await worker.runOnce();
    const delivered = await relay.waitFor((m) => m.messageId === resent.messageId);
    assert.ok(delivered.to.includes('anna.rossi@example.org'));
    assert.equal(delivered.envelope.from, verp.returnPath(String(resent._id)), 'the resent mail has a return path of its own');

    // Processed again (a crash before it was marked): no second mail, the address stays.
    await InboundMessage.updateOne({ _id: good }, { $set: { status: 'received' } });
    await intake.process(good);
    assert.equal(await Outbox.countDocuments({ dedupeKey: { $regex: `^paylink:${order._id}:resend:` } }), 1);
    assert.equal((await repos.orders.byId(order._id))!.customer?.email, 'anna.rossi@example.org');
  });
});
