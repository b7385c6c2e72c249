// Mail loops (RFC 3834). A vacation auto-responder stands at the merchant's address: a real SMTP
// server (paymail's outbound relay in this test) that answers every mail it receives by
// submitting "I am away" back into paymail's submission door, as the merchant's mail system
// would. paymail never answers automatic mail (Auto-Submitted other than `no`, Precedence
// bulk/junk/list, List-Id, null or MAILER-DAEMON/postmaster senders: recorded, silent), and a
// responder that marks nothing is stopped by the loop brake (a few answers per sender per hour).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { close, createSubmissionServer, listen } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createOutboxWorker, type OutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { registry } from '../../src/metrics.ts';
import { createIntakeService, type IntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';
const REPLY_LIMIT = 3;
/** Safety cap: a loop that is not stopped ends the test here, not in an endless exchange. */
const MAX_EXCHANGES = 25;

interface Responder {
  url: string;
  /** Mails the responder received from paymail. */
  received: Array<{ subject: string; autoSubmitted: string | undefined }>;
  close(): Promise<void>;
}

/** An auto-responder at owner@<domain>: answers each mail from paymail into paymail's door. */
async function startResponder(submit: (subject: string) => Promise<void>): Promise<Responder> {
  const received: Responder['received'] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const head = Buffer.concat(chunks).toString('latin1').split(/\r?\n\r?\n/)[0]!;
        const subject = /^Subject: (.*)$/im.exec(head)?.[1] ?? '';
        const autoSubmitted = /^Auto-Submitted: (.*)$/im.exec(head)?.[1];
        received.push({ subject, autoSubmitted });
        cb();
        if (received.length <= MAX_EXCHANGES) void submit(subject).catch(() => {});
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return { url: `smtp://127.0.0.1:${port}`, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('mail loops (RFC 3834)', function () {
  this.timeout(60_000);
  useTestDatabase();
  const logger = createLogger('silent');
  let dataDir: string;
  let door: SMTPServer;
  let port: number;
  let shop: CreatedMerchant;
  let intake: IntakeService;
  let n = 0;
  const orders = createOrderService({ repos, publicUrl: 'http://localhost:3000', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: [{ kid: 't1', secret: 's'.repeat(32) }] });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-loop-'));
    shop = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Shop', email: 'owner@shop.example' });
    intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger, replyLimitPerHour: REPLY_LIMIT });
    const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
    door = createSubmissionServer({ repos, merchants: createMerchantService({ repos, mailDomain: MAIL_DOMAIN }), intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: 64 * 1024, tls, production: false, logger });
    port = await listen(door, 0);
  });
  after(async () => {
    await close(door);
    await intake.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Submits a mail as the merchant's mail system does (SMTP AUTH on the submission door). */
  async function submit(opts: { subject: string; text: string; from?: string; envelopeFrom?: string; headers?: Record<string, string> }) {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, auth: { user: shop.smtpUser, pass: shop.smtpPassword } });
    try {
      await t.sendMail({
        from: opts.from ?? 'owner@shop.example',
        to: shop.inboundAddress,
        subject: opts.subject,
        text: opts.text,
        messageId: `<loop-${++n}.${Date.now()}@shop.example>`,
        headers: opts.headers ?? {},
        ...(opts.envelopeFrom !== undefined ? { envelope: { from: opts.envelopeFrom, to: shop.inboundAddress } } : {}),
      });
    } finally {
      t.close();
    }
  }
  async function suppressed(reason: string): Promise<number> {
    const m = await registry.getSingleMetric('paymail_replies_suppressed_total')?.get();
    return (m?.values ?? []).filter((v) => v.labels.reason === reason).reduce((s, v) => s + v.value, 0);
  }

  /** Runs paymail's outbox towards `responder` until nothing moved for a while; returns how many mails it got. */
  async function exchange(responder: Responder, worker: OutboxWorker): Promise<number> {
    worker.start();
    let seen = -1;
    let still = 0;
    try {
      for (let i = 0; i < 200 && still < 8; i++) {
        await new Promise((r) => setTimeout(r, 250));
        await intake.idle();
        if (responder.received.length === seen) still++;
        else (seen = responder.received.length), (still = 0);
        if (seen > MAX_EXCHANGES) break;
      }
    } finally {
      await worker.stop();
    }
    return responder.received.length;
  }

  async function setup(marked: boolean, from: string) {
    await Outbox.deleteMany({});
    const responder = await startResponder((subject) =>
      submit({
        subject: `Out of office: ${subject}`,
        from,
        text: 'I am away until Monday and will read your mail when I am back.',
        // A well-behaved responder marks its answer (RFC 3834 §5); a naive one does not.
        headers: marked ? { 'Auto-Submitted': 'auto-replied' } : {},
      }),
    );
    const renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://localhost:3000' });
    const worker = createOutboxWorker({ repos, renderer, transport: createMailTransport({ outboundSmtpUrl: responder.url, production: false }), from: `paymail <no-reply@${MAIL_DOMAIN}>`, logger, pollMs: 100 });
    return { responder, worker };
  }

  it('stops the exchange with a responder that marks its answers Auto-Submitted: paymail answers once, then stays silent', async () => {
    const { responder, worker } = await setup(true, 'polite@shop.example');
    const before = await suppressed('auto-submitted');
    try {
      await submit({ subject: 'Order', text: 'Amount: ten euros', from: 'polite@shop.example' }); // a problem: paymail answers
      const total = await exchange(responder, worker);
      assert.equal(total, 1, 'one answer, to the merchant’s own mail');
      assert.equal(responder.received[0]!.autoSubmitted, 'auto-replied', 'paymail marks its own answer');
      assert.equal(await suppressed('auto-submitted') - before, 1);
      const recorded = await InboundMessage.find({ merchantId: shop.id }).lean();
      assert.equal(recorded.filter((m) => m.status === 'processed').length, 2, 'the auto-reply is recorded too');
      assert.ok(recorded.some((m) => (m.result as { silenced?: string } | undefined)?.silenced === 'auto-submitted'));
    } finally {
      await responder.close();
    }
  });

  it('stops the exchange with a responder that marks nothing, by the per-sender loop brake', async () => {
    const { responder, worker } = await setup(false, 'naive@shop.example');
    const before = await suppressed('loop-brake');
    try {
      await submit({ subject: 'Order', text: 'Amount: ten euros', from: 'naive@shop.example' });
      const total = await exchange(responder, worker);
      assert.ok(total <= REPLY_LIMIT, `the exchange stopped after ${total} answers (limit ${REPLY_LIMIT} per sender per hour)`);
      assert.ok(await suppressed('loop-brake') - before >= 1, 'counted in /metrics');
    } finally {
      await responder.close();
    }
  });

  describe('automatic mails are recorded and not answered', () => {
    const cases: Array<{ name: string; mail: Parameters<typeof submit>[0]; reason: string | undefined }> = [
      { name: 'Auto-Submitted: auto-generated', mail: { subject: 'Report', text: 'Amount: x', headers: { 'Auto-Submitted': 'auto-generated' } }, reason: 'auto-submitted' },
      { name: 'Auto-Submitted: auto-replied; with parameters', mail: { subject: 'Away', text: 'Amount: x', headers: { 'Auto-Submitted': 'auto-replied; owner-email="owner@shop.example"' } }, reason: 'auto-submitted' },
      { name: 'Precedence: bulk', mail: { subject: 'News', text: 'Amount: x', headers: { Precedence: 'bulk' } }, reason: 'precedence' },
      { name: 'Precedence: list', mail: { subject: 'List', text: 'Amount: x', headers: { Precedence: 'list' } }, reason: 'precedence' },
      { name: 'List-Id', mail: { subject: 'Digest', text: 'Amount: x', headers: { 'List-Id': '<shop.lists.example>' } }, reason: 'list' },
      { name: 'the null sender (a bounce)', mail: { subject: 'Undelivered', text: 'Amount: x', envelopeFrom: '' }, reason: 'null-sender' },
      { name: 'From: MAILER-DAEMON', mail: { subject: 'Failure', text: 'Amount: x', from: 'Mail Delivery System <MAILER-DAEMON@shop.example>' }, reason: 'mailer-daemon' },
      { name: 'From: postmaster', mail: { subject: 'Notice', text: 'Amount: x', from: 'postmaster@shop.example' }, reason: 'mailer-daemon' },
      { name: 'Auto-Submitted: no (answered as usual)', mail: { subject: 'Order', text: 'Amount: x', from: 'person@shop.example', headers: { 'Auto-Submitted': 'no' } }, reason: undefined },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        await Outbox.deleteMany({});
        const before = c.reason ? await suppressed(c.reason) : 0;
        await submit(c.mail);
        await intake.idle();
        const last = await InboundMessage.findOne({ merchantId: shop.id }).sort({ receivedAt: -1 }).lean();
        assert.equal(last?.status, 'processed', 'recorded');
        const replies = await Outbox.countDocuments({ template: 'intake-reply' });
        if (c.reason) {
          assert.equal(replies, 0, 'no answer');
          assert.equal(await suppressed(c.reason) - before, 1);
        } else {
          assert.equal(replies, 1, 'answered');
        }
      });
    }
  });
});
