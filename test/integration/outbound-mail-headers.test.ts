// What every outgoing mail carries on the wire, read at a real relay: the RFC 3834
// `Auto-Submitted` marking (auto-replied when it answers a merchant's mail, auto-generated
// otherwise) and, when DKIM_* is configured, a DKIM signature that mailauth verifies against the
// tests' own DNS server (RFC 6376).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { dkimVerify } from 'mailauth';
import { loadConfig } from '../../src/config.ts';
import { isAppError } from '../../src/domain/errors.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { OutboxDue } from '../../src/db/due-queue.ts';
import { createDnsResolver } from '../../src/inbound/mail-auth.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { loadDkimSigning } from '../../src/mail/dkim.ts';
import { enqueueMail, type MailRequest } from '../../src/mail/outbox.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport, type MailTransportOptions } from '../../src/mail/transport.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { repos } from '../helpers/db.ts';

const DOMAIN = 'paymail.test';
const logger = createLogger('silent');
const expiresAt = () => new Date(Date.now() + 7 * 86_400_000).toISOString();

const paylink = (n: number, over: Partial<MailRequest> = {}): MailRequest => ({
  dedupeKey: `hdr-paylink:${n}`,
  template: 'paylink',
  locale: 'en',
  to: ['owner@shop.example'],
  data: { merchantName: 'Shop', reference: `H-${n}`, amountMinor: 1200, currency: 'EUR', description: 'Chair', expiresAt: expiresAt(), link: `http://localhost:3000/pay/h${n}` },
  ...over,
});

describe('outgoing mail headers', function () {
  this.timeout(30_000);
  useTestDatabase();
  let renderer: MailRenderer;
  let relay: SmtpSink;
  let dns: TestDnsServer;
  let n = 0;

  before(async () => {
    renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://localhost:3000' });
    relay = await startSmtpSink();
    dns = await startDnsServer();
  });
  after(async () => {
    await relay.close();
    await dns.close();
  });
  beforeEach(async () => {
    await Outbox.deleteMany({});
    await OutboxDue.deleteMany({});
    relay.reset();
  });

  /** Enqueues `req`, lets a real worker send it through `transport` options, returns the raw mail. */
  async function sendThrough(req: MailRequest, opts: Partial<MailTransportOptions> = {}) {
    const doc = await enqueueMail(req, DOMAIN, repos.outbox);
    const worker = createOutboxWorker({ repos,
      renderer,
      transport: createMailTransport({ outboundSmtpUrl: relay.url, production: false, ...opts }),
      from: `paymail <no-reply@${DOMAIN}>`,
      logger,
    });
    await worker.runOnce();
    return relay.waitFor((m) => m.messageId === doc.messageId, 10_000);
  }

  describe('Auto-Submitted (RFC 3834)', () => {
    const cases: Array<{ name: string; req: MailRequest; expected: string }> = [
      { name: 'a pay-link mail answering a merchant’s order mail', req: paylink(1, { inReplyTo: '<order-1@shop.example>', references: ['<order-1@shop.example>'] }), expected: 'auto-replied' },
      { name: 'a pay-link mail straight to the customer', req: paylink(2, { to: ['buyer@customer.example'], data: { ...paylink(2).data, toCustomer: true } }), expected: 'auto-generated' },
      {
        name: 'an intake reply naming problems',
        req: {
          dedupeKey: 'hdr-intake',
          template: 'intake-reply',
          locale: 'en',
          to: ['owner@shop.example'],
          inReplyTo: '<order-2@shop.example>',
          data: { subject: 'Order', created: [], problems: [{ field: 'amount', code: 'ORDER_AMOUNT_MISSING', message: 'missing' }] },
        },
        expected: 'auto-replied',
      },
      { name: 'a reminder', req: { ...paylink(3), dedupeKey: 'hdr-reminder', template: 'reminder', to: ['buyer@customer.example'] }, expected: 'auto-generated' },
    ];
    for (const c of cases) {
      it(`marks ${c.name} ${c.expected}`, async () => {
        const mail = await sendThrough(c.req);
        assert.equal(mail.parsed.headers.get('auto-submitted'), c.expected);
      });
    }
  });

  describe('DKIM signing (RFC 6376)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const txt = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;

    it('signs every mail for MAIL_DOMAIN with DKIM_SELECTOR + DKIM_PRIVATE_KEY_FILE, and the signature verifies', async () => {
      dns.set(`pm2025._domainkey.${DOMAIN}`, { TXT: [txt] });
      const dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-dkim-'));
      try {
        const file = path.join(dir, 'dkim.pem');
        await writeFile(file, pem);
        const config = loadConfig({ MAIL_DOMAIN: DOMAIN, DKIM_SELECTOR: 'pm2025', DKIM_PRIVATE_KEY_FILE: file });
        const dkim = await loadDkimSigning(config);
        assert.ok(dkim, 'DKIM configured');
        const mail = await sendThrough(paylink(10, { inReplyTo: '<order-10@shop.example>' }), { dkim });
        const verified = await dkimVerify(mail.raw, { resolver: createDnsResolver({ servers: [dns.address] }) });
        assert.equal(verified.results.length, 1, 'one signature');
        const [sig] = verified.results;
        assert.equal(sig!.status.result, 'pass', sig!.info);
        assert.equal(sig!.signingDomain, DOMAIN);
        assert.equal(sig!.selector, 'pm2025');
        assert.equal(sig!.status.aligned, DOMAIN, 'aligned with the From domain (DMARC)');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('a signature does not survive a changed body (it covers the content)', async () => {
      dns.set(`pm2025._domainkey.${DOMAIN}`, { TXT: [txt] });
      const dkim = await loadDkimSigning(loadConfig({ MAIL_DOMAIN: DOMAIN, DKIM_SELECTOR: 'pm2025', DKIM_PRIVATE_KEY: pem }));
      const mail = await sendThrough(paylink(11), { dkim });
      const tampered = Buffer.from(mail.raw.toString('latin1').replace('H-11', 'H-99'), 'latin1');
      const verified = await dkimVerify(tampered, { resolver: createDnsResolver({ servers: [dns.address] }) });
      assert.equal(verified.results[0]!.status.result, 'fail');
    });

    it('sends unsigned when DKIM is not configured (the relay may sign)', async () => {
      assert.equal(await loadDkimSigning(loadConfig({ MAIL_DOMAIN: DOMAIN })), undefined);
      const mail = await sendThrough(paylink(12));
      assert.equal(mail.parsed.headers.get('dkim-signature'), undefined);
    });

    it('refuses half a configuration and a key nodemailer cannot sign with', async () => {
      assert.throws(() => loadConfig({ DKIM_SELECTOR: 'pm2025' }), /DKIM_SELECTOR/);
      assert.throws(() => loadConfig({ DKIM_PRIVATE_KEY: pem }), /DKIM_SELECTOR/);
      assert.throws(() => loadConfig({ DKIM_SELECTOR: 'bad selector', DKIM_PRIVATE_KEY: pem }), /DKIM_SELECTOR/);
      const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      await assert.rejects(loadDkimSigning(loadConfig({ DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: ed })), (e: unknown) => isAppError(e, 'DKIM_KEY_INVALID'));
      await assert.rejects(loadDkimSigning(loadConfig({ DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: 'not a key' })), (e: unknown) => isAppError(e, 'DKIM_KEY_INVALID'));
    });
  });
});
