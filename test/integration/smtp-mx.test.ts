// The MX door against a real DNS server on 127.0.0.1 serving SPF, DKIM and DMARC records, with mails
// DKIM-signed by nodemailer using keys generated here: what authenticates for the merchant's sender
// domains is stored (250) and becomes an order; spoofed or unaligned mail gets 550 and leaves nothing.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import nodemailer from 'nodemailer';
import { type SMTPServer } from 'smtp-server';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { createDnsResolver, createMailAuthenticator, judgeAuthentication } from '../../src/inbound/mail-auth.ts';
import { aliasOf, createMxServer } from '../../src/inbound/mx-server.ts';
import { close, listen } from '../../src/inbound/smtp-common.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createLogger } from '../../src/logger.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { rawClient } from '../helpers/smtp-raw-client.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';

function dkimKey() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    record: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
  };
}

interface SmtpFailure {
  code?: string;
  responseCode?: number;
  response?: string;
  rejectedErrors?: Array<{ responseCode?: number }>;
}

describe('SMTP MX door', function () {
  this.timeout(20_000);
  const db = useTestDatabase();
  const logger = createLogger('silent');
  const orders = createOrderService({ repos,
    publicUrl: 'http://localhost:3000',
    mailDomain: MAIL_DOMAIN,
    maxLinkLifetimeDays: 60,
    linkKeys: [{ kid: 't1', secret: 's'.repeat(32) }],
  });
  const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
  const shopKey = dkimKey();
  const evilKey = dkimKey();
  let dns: TestDnsServer;
  let dataDir: string;
  let server: SMTPServer;
  let port: number;
  let shop: CreatedMerchant;
  let other: CreatedMerchant;
  let n = 0;

  before(async () => {
    // shop.example: DKIM only (SPF refuses every host, no DMARC record); spf.example: SPF only;
    // strict.example: DKIM and DMARC p=reject; evil.example: a well-authenticated stranger;
    // flaky.example: every look-up fails (SERVFAIL).
    dns = await startDnsServer({
      'shop.example': { TXT: ['v=spf1 -all'] },
      'mx1._domainkey.shop.example': { TXT: [shopKey.record] },
      'mx1._domainkey.mail.shop.example': { TXT: [shopKey.record] },
      'spf.example': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
      'strict.example': { TXT: ['v=spf1 -all'] },
      's1._domainkey.strict.example': { TXT: [shopKey.record] },
      '_dmarc.strict.example': { TXT: ['v=DMARC1; p=reject'] },
      'evil.example': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
      'ev._domainkey.evil.example': { TXT: [evilKey.record] },
    });
    for (const name of ['flaky.example', 'k1._domainkey.flaky.example', '_dmarc.flaky.example']) dns.fail(name);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-mx-test-'));
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    shop = await merchants.create({
      name: 'Shop',
      email: 'owner@shop.example',
      senderDomains: ['shop.example', 'spf.example', 'strict.example', 'flaky.example'],
    });
    other = await merchants.create({ name: 'Other', email: 'owner@other.example', senderDomains: ['evil.example'] });
    const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
    const authenticator = createMailAuthenticator({ mta: MAIL_DOMAIN, resolver: createDnsResolver({ servers: [dns.address], timeoutMs: 1_000, tries: 1 }) });
    server = createMxServer({ repos, intake, authenticator, findMerchantByAlias: repos.merchants.findByAlias, mailDomain: MAIL_DOMAIN, maxMessageBytes: 64 * 1024, tls, logger });
    port = await listen(server, 0);
  });
  afterEach(() => intake.idle());
  after(async () => {
    await close(server);
    await intake.close();
    await dns.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  interface Mail {
    from: string;
    mailFrom?: string;
    dkim?: { domainName: string; keySelector: string; privateKey: string };
    to?: string;
    text?: string;
    messageId?: string;
  }
  const send = (m: Mail) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port, secure: false, name: 'mta.sender.example', tls: { rejectUnauthorized: false } })
      .sendMail({
        envelope: { from: m.mailFrom ?? m.from, to: [m.to ?? shop.inboundAddress] },
        from: m.from,
        to: m.to ?? shop.inboundAddress,
        subject: 'Order',
        text: m.text ?? `Amount: 10\nReference: MX-${++n}`,
        messageId: m.messageId ?? `<mx-${++n}.${Date.now()}@sender.example>`,
        ...(m.dkim ? { dkim: m.dkim } : {}),
      });
  const shopDkim = (domainName = 'shop.example') => ({ domainName, keySelector: 'mx1', privateKey: shopKey.privateKey });

  const accepted: Array<[string, () => Mail, string]> = [
    ['a DKIM signature aligned with the From domain', () => ({ from: 'desk@shop.example', dkim: shopDkim() }), 'dkim'],
    ['a DKIM signature of a subdomain of a sender domain', () => ({ from: 'desk@shop.example', dkim: shopDkim('mail.shop.example') }), 'dkim'],
    ['an SPF pass for the MAIL FROM domain (127.0.0.1 listed)', () => ({ from: 'desk@spf.example' }), 'spf'],
    [
      'a DMARC pass',
      () => ({ from: 'desk@strict.example', dkim: { domainName: 'strict.example', keySelector: 's1', privateKey: shopKey.privateKey } }),
      'dmarc',
    ],
  ];
  for (const [name, mail, verdict] of accepted) {
    it(`accepts ${name}: 250 after storage, one order`, async () => {
      const reference = `MX-OK-${++n}`;
      const info = await send({ ...mail(), text: `Amount: 12.50\nReference: ${reference}` });
      const id = /^250 .*stored as ([0-9a-f]{24})/.exec(info.response)?.[1];
      assert.ok(id, info.response);
      // 250 means stored: the message is there the moment the client has the answer.
      const stored = await InboundMessage.findById(id).lean();
      assert.equal(stored?.door, 'mx');
      assert.equal(stored?.merchantId, shop.id);
      assert.equal((stored?.envelope?.auth as { verdict?: string } | undefined)?.verdict, verdict);
      await intake.idle();
      const found = await Order.find({ merchantId: shop.id, reference }).lean();
      assert.equal(found.length, 1);
      assert.equal(found[0]?.amountMinor, 1250);
    });
  }

  const refused: Array<[string, () => Mail, RegExp]> = [
    [
      'a spoofed From (no DKIM, SPF fail, DMARC p=reject)',
      () => ({ from: 'desk@strict.example' }),
      /^550 5\.7\.1 message not authenticated for strict\.example: DMARC fail \(p=reject\), DKIM none, SPF fail/,
    ],
    [
      'a From of a sender domain signed by an unrelated domain (with its own SPF pass)',
      () => ({ from: 'desk@shop.example', mailFrom: 'bounce@evil.example', dkim: { domainName: 'evil.example', keySelector: 'ev', privateKey: evilKey.privateKey } }),
      /^550 5\.7\.1 message not authenticated for shop\.example: DMARC none, DKIM pass d=evil\.example, SPF pass for evil\.example/,
    ],
    [
      'a signature that does not verify (key of another domain)',
      () => ({ from: 'desk@shop.example', dkim: { domainName: 'shop.example', keySelector: 'mx1', privateKey: evilKey.privateKey } }),
      /^550 5\.7\.1 .*DKIM fail d=shop\.example/,
    ],
    [
      "a perfectly authenticated mail from a domain that is not the merchant's",
      () => ({ from: 'someone@evil.example', dkim: { domainName: 'evil.example', keySelector: 'ev', privateKey: evilKey.privateKey } }),
      /^550 5\.7\.1 message not authenticated for evil\.example: not a registered sender domain/,
    ],
    ['a mail whose look-ups fail (451, retried later)', () => ({ from: 'desk@flaky.example', dkim: { domainName: 'flaky.example', keySelector: 'k1', privateKey: shopKey.privateKey } }), /^451 4\.7\.0 /],
  ];
  for (const [name, mail, response] of refused) {
    it(`refuses ${name} and stores nothing`, async () => {
      const before = await InboundMessage.countDocuments();
      const ordersBefore = await Order.countDocuments();
      await assert.rejects(send(mail()), (e: SmtpFailure) => {
        assert.equal(e.code, 'EMESSAGE');
        assert.match(e.response ?? '', response);
        return true;
      });
      await intake.idle();
      assert.equal(await InboundMessage.countDocuments(), before);
      assert.equal(await Order.countDocuments(), ordersBefore);
    });
  }

  const recipients: Array<[string, () => string, number]> = [
    ['an unknown alias', () => `orders+nobody@${MAIL_DOMAIN}`, 550],
    ['the alias at another domain', () => `orders+${shop.alias}@elsewhere.example`, 550],
    ['a plain mailbox of the mail domain', () => `postmaster@${MAIL_DOMAIN}`, 550],
    ['the alias in upper case', () => shop.inboundAddress.toUpperCase(), 250],
  ];
  for (const [name, to, code] of recipients) {
    it(`answers ${code} at RCPT for ${name}`, async () => {
      const c = rawClient(port);
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('EHLO mta.sender.example')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<desk@shop.example>')).code, 250);
      const r = await c.cmd(`RCPT TO:<${to()}>`);
      c.end();
      assert.equal(r.code, code);
      if (code === 550) assert.match(r.text, /5\.1\.1/);
    });
  }

  it('accepts one merchant per transaction: 452 for a second merchant\'s alias', async () => {
    const c = rawClient(port);
    await c.read();
    await c.cmd('EHLO mta.sender.example');
    await c.cmd('MAIL FROM:<desk@shop.example>');
    assert.equal((await c.cmd(`RCPT TO:<${shop.inboundAddress}>`)).code, 250);
    const second = await c.cmd(`RCPT TO:<${other.inboundAddress}>`);
    c.end();
    assert.equal(second.code, 452);
  });

  it('offers STARTTLS and SIZE but no AUTH', async () => {
    const c = rawClient(port);
    await c.read();
    const ehlo = await c.cmd('EHLO mta.sender.example');
    const auth = await c.cmd('AUTH PLAIN AGZvbwBiYXI=');
    c.end();
    assert.match(ehlo.text, /STARTTLS/);
    assert.match(ehlo.text, /SIZE 65536/);
    assert.doesNotMatch(ehlo.text, /AUTH/);
    assert.equal(auth.code, 500);
  });

  it('accepts a mail that was already delivered with 250 once more, and creates one order', async () => {
    const messageId = `<mx-twice.${Date.now()}@shop.example>`;
    const mail = { from: 'desk@shop.example', dkim: shopDkim(), messageId, text: 'Amount: 3\nReference: MX-TWICE' };
    assert.match((await send(mail)).response, /^250 /);
    assert.match((await send(mail)).response, /^250 .*already received/);
    await intake.idle();
    assert.equal(await Order.countDocuments({ merchantId: shop.id, reference: 'MX-TWICE' }), 1);
  });

  it('answers 451 while the database is unavailable; the retry creates exactly one order', async () => {
    const messageId = `<mx-dbdown.${Date.now()}@shop.example>`;
    const mail = { from: 'desk@shop.example', dkim: shopDkim(), messageId, text: 'Amount: 21\nReference: MX-451' };
    await mongoose.disconnect();
    try {
      await assert.rejects(send(mail), (e: SmtpFailure) => {
        assert.equal(e.responseCode, 451);
        return true;
      });
    } finally {
      await mongoose.connect(db.uri(), { serverSelectionTimeoutMS: 10_000, autoIndex: false });
    }
    assert.equal(await InboundMessage.countDocuments({ messageKey: messageId }), 0);
    assert.match((await send(mail)).response, /^250 /);
    await intake.idle();
    assert.equal(await Order.countDocuments({ merchantId: shop.id, reference: 'MX-451' }), 1);
  });

  it('looked the SPF, DKIM and DMARC records up on the test DNS server', () => {
    assert.ok(dns.queries.some((q) => q === 'TXT mx1._domainkey.shop.example'));
    assert.ok(dns.queries.some((q) => q === 'TXT _dmarc.strict.example'));
  });

  describe('judgeAuthentication (the policy on mailauth results)', () => {
    const result = (r: { from: string[]; dkim?: Array<[string, string]>; spf?: string; dmarc?: string }) =>
      ({
        dkim: { headerFrom: r.from, envelopeFrom: false, results: (r.dkim ?? []).map(([d, res]) => ({ signingDomain: d, status: { result: res }, info: '' })) },
        spf: r.spf ? { domain: '', 'client-ip': '127.0.0.1', status: { result: r.spf }, header: '', info: '' } : false,
        dmarc: r.dmarc ? { domain: '', policy: 'reject', p: 'reject', sp: 'reject', status: { result: r.dmarc }, alignment: {}, info: '' } : false,
        arc: false,
        bimi: false,
        headers: '',
      }) as unknown as Parameters<typeof judgeAuthentication>[0];
    const cases: Array<[string, Parameters<typeof result>[0], string[], string | undefined, string]> = [
      ['two From addresses', { from: ['a@shop.example', 'b@shop.example'], dmarc: 'pass' }, ['shop.example'], undefined, 'refused'],
      ['no registered sender domain', { from: ['a@shop.example'], dmarc: 'pass' }, [], undefined, 'refused'],
      ['DKIM of a sibling subdomain', { from: ['a@eu.shop.example'], dkim: [['mail.shop.example', 'pass']] }, ['shop.example'], undefined, 'dkim'],
      ['DKIM of the parent of the registered domain', { from: ['a@eu.shop.example'], dkim: [['shop.example', 'pass']] }, ['eu.shop.example'], undefined, 'refused'],
      ['SPF for a bounce subdomain', { from: ['a@shop.example'], spf: 'pass' }, ['shop.example'], 'b@bounce.shop.example', 'spf'],
      ['SPF pass for a look-alike domain', { from: ['a@shop.example'], spf: 'pass' }, ['shop.example'], 'b@evilshop.example', 'refused'],
      ['a failed DKIM look-up', { from: ['a@shop.example'], dkim: [['shop.example', 'temperror']], spf: 'fail' }, ['shop.example'], undefined, 'temporary'],
    ];
    for (const [name, r, domains, mailFrom, expected] of cases) {
      it(`${name} → ${expected}`, () => {
        const d = judgeAuthentication(result(r), domains, mailFrom);
        assert.equal(d.accepted ? d.summary.verdict : d.temporary ? 'temporary' : 'refused', expected);
      });
    }
  });

  describe('createDnsResolver (DNS_SERVERS entries)', () => {
    const cases: Array<[string, boolean]> = [
      ['127.0.0.1', true],
      ['127.0.0.1:5353', true],
      ['[::1]:53', true],
      ['dns.example:53', false],
      ['300.1.1.1', false],
    ];
    for (const [entry, ok] of cases) {
      it(`${entry} → ${ok ? 'accepted' : 'refused'}`, () => {
        if (ok) createDnsResolver({ servers: [entry] });
        else assert.throws(() => createDnsResolver({ servers: [entry] }), /invalid DNS_SERVERS entry/);
      });
    }
  });

  describe('aliasOf', () => {
    const cases: Array<[string, string | undefined]> = [
      [`orders+abc123@${MAIL_DOMAIN}`, 'abc123'],
      [`ORDERS+ABC123@${MAIL_DOMAIN.toUpperCase()}`, 'abc123'],
      [`orders@${MAIL_DOMAIN}`, undefined],
      [`orders+abc@other.example`, undefined],
      [`orders+a.b@${MAIL_DOMAIN}`, undefined],
      [`sales+abc@${MAIL_DOMAIN}`, undefined],
    ];
    for (const [address, alias] of cases) it(address, () => assert.equal(aliasOf(address, MAIL_DOMAIN), alias));
  });
});
