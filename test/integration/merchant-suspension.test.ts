// Suspended merchants (`paymail merchant suspend ID [--reason TEXT]` / `resume ID`), each
// behaviour against real servers: both SMTP doors refuse the mail with 550 5.7.1, the pay-link
// takes no card (page in five languages, card POST and 3-D Secure completion refused even while
// the checkout's merchant cache still says "active"), reminders, recaps and webhooks wait and go
// out after resume, and the back office still logs in and says the account is suspended.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type SMTPServer } from 'smtp-server';
import { OutboxDue, WebhookDue } from '../../src/db/due-queue.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { WebhookAttempt, WebhookDelivery, type WebhookDeliveryDoc } from '../../src/db/models/webhook.model.ts';
import { createMailAuthenticator, createDnsResolver } from '../../src/inbound/mail-auth.ts';
import { createMxServer } from '../../src/inbound/mx-server.ts';
import { close, createSubmissionServer, listen } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createExpiryJob } from '../../src/jobs/expiry.job.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createWebhookWorker } from '../../src/jobs/webhook-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { enqueueMail } from '../../src/mail/outbox.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { CSRF_COOKIE } from '../../src/http/middleware/csrf.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createMerchantSuspensionService } from '../../src/services/merchant-suspension.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { createRecapService } from '../../src/services/recap.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { runCli } from '../helpers/paymail-process.ts';
import { rawClient } from '../helpers/smtp-raw-client.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp } from './backoffice-client.ts';
import { repos } from '../helpers/db.ts';

const logger = createLogger('silent');
const orderService = () =>
  createOrderService({ repos, publicUrl: 'http://127.0.0.1', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: [{ kid: 'k1', secret: 'k'.repeat(32) }] });
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const COOKIE = `${CSRF_COOKIE}=suspension-test-browser-cookie-01`;
const SUSPENDED_TEXT: Record<string, RegExp> = {
  en: /This merchant cannot take payments at the moment/,
  it: /Questo esercente non può ricevere pagamenti al momento/,
  fr: /Ce commerçant ne peut pas recevoir de paiements pour le moment/,
  de: /Dieser Händler kann im Moment keine Zahlungen annehmen/,
  es: /Este comercio no puede aceptar pagos en este momento/,
};

describe('suspended merchants', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const suspension = createMerchantSuspensionService({ repos });
  let created: CreatedMerchant;
  let merchant: MerchantDoc;
  let seq = 0;

  before(async () => {
    created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({
      name: 'Pensione Aurora',
      email: 'desk@aurora.example',
      senderDomains: ['aurora.example'],
      webhookUrl: 'http://127.0.0.1:9/hooks',
    });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });
  afterEach(async () => {
    await suspension.resume(created.id);
  });

  describe('CLI', () => {
    const env = () => ({ MONGODB_URI: db.uri(), MAIL_DOMAIN });

    it('merchant suspend ID --reason sets the state; merchant resume ID clears it', async () => {
      let r = await runCli(['merchant', 'suspend', created.id, '--reason', 'unpaid invoice', '--json'], env());
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { status: string }).status, 'suspended');
      let m = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
      assert.equal(m.status, 'suspended');
      assert.equal(m.suspendedReason, 'unpaid invoice');
      r = await runCli(['merchant', 'list', '--json'], env());
      assert.equal((JSON.parse(r.stdout) as Array<{ status: string }>)[0]!.status, 'suspended');
      r = await runCli(['merchant', 'resume', created.id], env());
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /resumed/);
      m = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
      assert.equal(m.status, 'active');
      assert.equal(m.suspendedReason, undefined);
    });

    for (const [args, code, re] of [
      [['merchant', 'suspend', 'mer_nope'], 1, /no merchant "mer_nope"/],
      [['merchant', 'resume'], 2, /give one merchant id/],
      [['merchant', 'suspend', 'x', '--bogus'], 2, /bogus/],
    ] as Array<[string[], number, RegExp]>) {
      it(`exits ${code} with one line on stderr for: ${args.join(' ')}`, async () => {
        const r = await runCli(args, env());
        assert.equal(r.code, code);
        assert.match(r.stderr.trim(), re);
        assert.equal(r.stderr.trim().split('\n').length, 1);
        assert.equal(r.stdout, '');
      });
    }
  });

  describe('SMTP doors', () => {
    let dataDir: string;
    let submission: SMTPServer;
    let mx: SMTPServer;
    let dns: TestDnsServer;
    let submissionPort: number;
    let mxPort: number;
    const intake = createIntakeService({ repos, orders: orderService(), mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });

    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-suspension-test-'));
      dns = await startDnsServer({ 'aurora.example': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] } });
      const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
      submission = createSubmissionServer({ repos,
        merchants: createMerchantService({ repos, mailDomain: MAIL_DOMAIN }),
        intake,
        mailDomain: MAIL_DOMAIN,
        maxMessageBytes: 64 * 1024,
        tls,
        production: false,
        logger,
      });
      const authenticator = createMailAuthenticator({ mta: MAIL_DOMAIN, resolver: createDnsResolver({ servers: [dns.address], timeoutMs: 1_000, tries: 1 }) });
      mx = createMxServer({ repos, intake, authenticator, findMerchantByAlias: repos.merchants.findByAlias, mailDomain: MAIL_DOMAIN, maxMessageBytes: 64 * 1024, tls, logger });
      [submissionPort, mxPort] = await Promise.all([listen(submission, 0), listen(mx, 0)]);
    });
    after(async () => {
      await Promise.all([close(submission), close(mx)]);
      await intake.close();
      await dns.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    async function rcptViaSubmission() {
      const c = rawClient(submissionPort);
      await c.read();
      await c.cmd('EHLO client.example');
      const auth = Buffer.from(`\0${created.smtpUser}\0${created.smtpPassword}`).toString('base64');
      const authReply = await c.cmd(`AUTH PLAIN ${auth}`);
      await c.cmd('MAIL FROM:<desk@aurora.example>');
      const rcpt = await c.cmd(`RCPT TO:<${created.inboundAddress}>`);
      c.end();
      return { auth: authReply, rcpt };
    }
    async function rcptViaMx() {
      const c = rawClient(mxPort);
      await c.read();
      await c.cmd('EHLO mail.aurora.example');
      await c.cmd('MAIL FROM:<desk@aurora.example>');
      const rcpt = await c.cmd(`RCPT TO:<${created.inboundAddress}>`);
      c.end();
      return rcpt;
    }

    it('submission: a suspended merchant logs in but its mail is refused at RCPT with 550 5.7.1; resume accepts it', async () => {
      await suspension.suspend(created.id, 'unpaid invoice');
      const refused = await rcptViaSubmission();
      assert.equal(refused.auth.code, 235);
      assert.equal(refused.rcpt.code, 550);
      assert.match(refused.rcpt.text, /^550 5\.7\.1 .*suspended/);
      await suspension.resume(created.id);
      assert.equal((await rcptViaSubmission()).rcpt.code, 250);
    });

    it('MX: a suspended merchant\'s alias answers 550 5.7.1 at RCPT; resume accepts it', async () => {
      await suspension.suspend(created.id);
      const refused = await rcptViaMx();
      assert.equal(refused.code, 550);
      assert.match(refused.text, /^550 5\.7\.1 .*suspended/);
      await suspension.resume(created.id);
      assert.equal((await rcptViaMx()).code, 250);
    });
  });

  describe('checkout and back office', () => {
    let app: BackofficeApp;

    before(async () => {
      app = await startBackofficeApp();
    });
    after(() => app.close());

    async function newOrder() {
      seq++;
      return app.orders.create(
        merchant,
        { amountMinor: 8000, currency: 'EUR', reference: `SUS-${seq}`, description: 'Room', customerEmail: 'guest@example.org' },
        { key: `sus:${seq}` },
      );
    }
    const page = (url: string) => fetch(url, { headers: { cookie: COOKIE }, redirect: 'manual' });
    const tokenOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
    const post = (url: string, form: Record<string, string>) =>
      fetch(url, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: COOKIE },
        body: new URLSearchParams(form).toString(),
      });
    const card = (number: string, csrf: string) => ({ _csrf: csrf, number, expiry: `09/${nextYear}`, cvc: '123', holder: 'Ada Guest' });
    const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;

    it('the pay-link says the merchant cannot take payments, with no card form, in all five languages', async () => {
      const { link } = await newOrder();
      await suspension.suspend(created.id);
      await new Promise((r) => setTimeout(r, 5_100)); // past the checkout's merchant cache
      for (const [lang, text] of Object.entries(SUSPENDED_TEXT)) {
        const res = await page(`${link}&lang=${lang}`);
        const html = await res.text();
        assert.equal(res.status, 403, lang);
        assert.match(html, text, lang);
        assert.doesNotMatch(html, /name="number"/, `${lang}: no card form`);
      }
      await suspension.resume(created.id);
      await new Promise((r) => setTimeout(r, 5_100));
      assert.match(await (await page(link)).text(), /name="number"/, 'resume shows the card form again');
    });

    it('a card POST is refused at once, even while the checkout still caches the merchant as active; resume pays', async () => {
      const { order, link } = await newOrder();
      const csrf = tokenOf(await (await page(link)).text()); // caches the merchant as active
      await suspension.suspend(created.id);
      const refused = await post(link, card('4242 4242 4242 4242', csrf));
      assert.equal(refused.status, 403);
      assert.match(await refused.text(), SUSPENDED_TEXT.en!);
      const after = await reload(order._id);
      assert.equal(after.status, 'pending');
      assert.equal((after.attempts ?? []).length, 0, 'nothing was sent to the acquirer');
      await suspension.resume(created.id);
      const paid = await post(link, card('4242 4242 4242 4242', csrf));
      assert.equal(paid.status, 303);
      assert.equal((await reload(order._id)).status, 'paid');
    });

    it('3-D Secure completion is refused while suspended; after resume it pays', async () => {
      const { order, link } = await newOrder();
      const csrf = tokenOf(await (await page(link)).text());
      const started = await post(link, card('4000 0000 0000 3220', csrf));
      assert.equal(started.status, 303);
      const challenge = new URL(started.headers.get('location')!, link).toString();
      await suspension.suspend(created.id);
      const refused = await post(challenge, { _csrf: csrf, result: 'pass' });
      assert.equal(refused.status, 403);
      assert.equal((await reload(order._id)).status, 'pending');
      await suspension.resume(created.id);
      const passed = await post(challenge, { _csrf: csrf, result: 'pass' });
      assert.equal(passed.status, 303);
      assert.equal((await reload(order._id)).status, 'paid');
    });

    it('the back office still logs in and says the account is suspended (with the reason); resume removes the banner', async () => {
      await suspension.suspend(created.id, 'unpaid invoice');
      const bo = new BoClient(app.base);
      assert.equal((await bo.login(created.adminEmail, created.adminPassword)).status, 303);
      let text = textOf((await bo.get('/backoffice/orders')).html);
      assert.match(text, /This account is suspended/);
      assert.match(text, /Reason given: unpaid invoice/);
      await suspension.resume(created.id);
      text = textOf((await bo.get('/backoffice/orders')).html);
      assert.doesNotMatch(text, /suspended/);
    });
  });

  describe('reminders, recaps and webhooks wait', () => {
    const received: string[] = [];
    let receiver: http.Server;
    let renderer: Awaited<ReturnType<typeof createMailRenderer>>;

    before(async () => {
      receiver = http.createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          received.push(body);
          res.end('ok');
        });
      });
      await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
      await Merchant.updateOne({ _id: created.id }, { $set: { webhookUrl: url } });
      merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
      renderer = await createMailRenderer({ templatesDir: path.resolve('templates'), publicUrl: 'http://127.0.0.1' });
    });
    after(async () => {
      receiver.closeAllConnections();
      await new Promise((r) => receiver.close(r));
    });

    const outboxWorker = () =>
      createOutboxWorker({ repos, renderer, transport: createMailTransport({ production: false }), from: `paymail <no-reply@${MAIL_DOMAIN}>`, logger });
    const mail = async (dedupeKey: string) => (await Outbox.findOne({ dedupeKey }).lean<OutboxDoc>())!;

    it('webhook events are held (no request, no attempt) and delivered after resume', async () => {
      const events = createEventsService({ repos });
      await suspension.suspend(created.id);
      seq++;
      const { order } = await orderService().create(merchant, { amountMinor: 100, currency: 'EUR', reference: `WH-${seq}` }, { key: `wh:${seq}` });
      await events.emit('order.cancelled', `order.cancelled:${order._id}`, merchant, order);
      const delivery = (await WebhookDelivery.findOne({ orderId: order._id }).lean<WebhookDeliveryDoc>())!;
      const worker = createWebhookWorker({ repos, logger, allowPrivateTargets: true });
      await worker.runOnce();
      let d = (await WebhookDelivery.findById(delivery._id).lean<WebhookDeliveryDoc>())!;
      assert.equal(d.status, 'held');
      assert.equal(received.length, 0);
      assert.equal(await WebhookAttempt.countDocuments({ deliveryId: delivery._id }), 0);
      assert.equal(await WebhookDue.countDocuments({ _id: delivery._id }), 0, 'out of the due queue while held');

      // (earlier tests' payments queued events for this merchant too: they were held alike)
      const resumed = await suspension.resume(created.id);
      assert.ok(resumed.released!.webhooks >= 1);
      await worker.runOnce();
      d = (await WebhookDelivery.findById(delivery._id).lean<WebhookDeliveryDoc>())!;
      assert.equal(d.status, 'delivered', d.lastError ?? '');
      assert.ok(d.giveUpAt.getTime() > Date.now() + 2 * 24 * 3600_000, 'a fresh retry window after resume');
      assert.equal(received.filter((b) => (JSON.parse(b) as { id: string }).id === delivery._id).length, 1);
    });

    it('reminders and recaps are held, receipts are not; after resume the held ones are sent', async () => {
      seq++;
      const orders = orderService();
      const { order } = await orders.create(
        merchant,
        { amountMinor: 4500, currency: 'EUR', reference: `REM-${seq}`, customerEmail: 'guest@example.org', expiresAt: new Date(Date.now() + 30 * 3600_000) },
        { key: `rem:${seq}` },
      );
      await Outbox.deleteMany({}); // the pay-link mail is not what this test is about
      await OutboxDue.deleteMany({});
      await suspension.suspend(created.id);
      // The reminder (its order expires within 24 h after this clock) and yesterday's recap.
      const clock = () => new Date(order.expiresAt.getTime() - 23 * 3600_000);
      await createExpiryJob({ repos, events: createEventsService({ repos }), mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, logger, now: clock }).runOnce();
      await createRecapService({ repos, mailDomain: MAIL_DOMAIN }).sendMany([{ merchantId: created.id }], { now: new Date(Date.now() + 2 * 24 * 3600_000) });
      // A receipt-like mail about a payment already made goes out regardless.
      await enqueueMail({ dedupeKey: `test-intake:${seq}`, template: 'intake-reply', locale: 'en', to: ['desk@aurora.example'], merchantId: created.id, data: { subject: 'x' } }, MAIL_DOMAIN, repos.outbox);
      const worker = outboxWorker();
      await worker.runOnce();
      // One reminder per slot since reminders are tuned (issue 13 part 3): here the day-before one.
      const reminder = (await Outbox.findOne({ template: 'reminder', orderId: order._id }).lean<OutboxDoc>())!;
      assert.match(reminder.dedupeKey, new RegExp(`^reminder:${order._id}:`));
      const recap = await Outbox.findOne({ template: 'daily-recap', merchantId: created.id }).lean<OutboxDoc>();
      assert.equal(reminder.status, 'held');
      assert.equal(recap?.status, 'held');
      assert.notEqual((await mail(`test-intake:${seq}`)).status, 'held', 'other mail is not held');

      const resumed = await suspension.resume(created.id);
      assert.deepEqual(resumed.released, { mails: 2, webhooks: 0 });
      await worker.runOnce();
      assert.equal((await Outbox.findById(reminder._id).lean<OutboxDoc>())!.status, 'sent');
      assert.equal((await Outbox.findById(recap!._id).lean<OutboxDoc>())!.status, 'sent');
    });

    it('the recap job skips a suspended merchant and sends the missed day after resume', async () => {
      const recaps = createRecapService({ repos, mailDomain: MAIL_DOMAIN });
      const later = new Date(Date.now() + 3 * 24 * 3600_000);
      await Outbox.deleteMany({ template: 'daily-recap' });
      await suspension.suspend(created.id);
      await recaps.runDue(later);
      assert.equal(await Outbox.countDocuments({ template: 'daily-recap', merchantId: created.id }), 0);
      await suspension.resume(created.id);
      await recaps.runDue(later);
      assert.ok((await Outbox.countDocuments({ template: 'daily-recap', merchantId: created.id })) >= 1);
    });
  });
});
