// Protocol limits of both SMTP doors, each with its reply code: 552 for a message over the size
// limit (mid-stream), 452 past the recipient limit, 421 over maxClients, idle clients dropped after
// the socket timeout, and a graceful close that answers 421 to new sessions while the message in
// flight still gets its 250. Every case runs against a fresh server of each door.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type SMTPServer } from 'smtp-server';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { createDnsResolver, createMailAuthenticator } from '../../src/inbound/mail-auth.ts';
import { createMxServer } from '../../src/inbound/mx-server.ts';
import { close, type DoorLimits, listen } from '../../src/inbound/smtp-common.ts';
import { createSubmissionServer } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls, type TlsMaterial } from '../../src/inbound/tls.ts';
import { createLogger } from '../../src/logger.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.ts';
import { rawClient, type RawClient } from '../helpers/smtp-raw-client.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';
const SIZE_LIMIT = 16 * 1024;
const LIMITS: DoorLimits = { maxRecipients: 10, maxClients: 3, socketTimeoutMs: 500, closeTimeoutMs: 5_000 };

describe('SMTP protocol limits', function () {
  this.timeout(20_000);
  useTestDatabase();
  const logger = createLogger('silent');
  const orders = createOrderService({ repos,
    publicUrl: 'http://localhost:3000',
    mailDomain: MAIL_DOMAIN,
    maxLinkLifetimeDays: 60,
    linkKeys: [{ kid: 't1', secret: 's'.repeat(32) }],
  });
  const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
  const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
  let dns: TestDnsServer;
  let dataDir: string;
  let tls: TlsMaterial;
  let shop: CreatedMerchant;
  let n = 0;

  before(async () => {
    // The MX door authenticates by SPF here: 127.0.0.1 may send for limits.example.
    dns = await startDnsServer({ 'limits.example': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] } });
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-limits-test-'));
    tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
    shop = await merchants.create({ name: 'Limits', email: 'desk@limits.example', senderDomains: ['limits.example'] });
  });
  after(async () => {
    await intake.close();
    await dns.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  interface Door {
    name: string;
    create(): SMTPServer;
    /** Greeting, EHLO and whatever the door needs before MAIL FROM. */
    hello(c: RawClient): Promise<void>;
  }
  const doors: Door[] = [
    {
      name: 'submission',
      create: () =>
        createSubmissionServer({ repos, merchants, intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: SIZE_LIMIT, tls, production: false, logger, limits: LIMITS }),
      async hello(c) {
        assert.equal((await c.read()).code, 220);
        assert.equal((await c.cmd('EHLO client.limits.example')).code, 250);
        const auth = Buffer.from(`\0${shop.smtpUser}\0${shop.smtpPassword}`).toString('base64');
        assert.equal((await c.cmd(`AUTH PLAIN ${auth}`)).code, 235);
      },
    },
    {
      name: 'mx',
      create: () =>
        createMxServer({ repos,
          intake,
          authenticator: createMailAuthenticator({ mta: MAIL_DOMAIN, resolver: createDnsResolver({ servers: [dns.address], timeoutMs: 1_000, tries: 1 }) }),
          findMerchantByAlias: repos.merchants.findByAlias,
          mailDomain: MAIL_DOMAIN,
          maxMessageBytes: SIZE_LIMIT,
          tls,
          logger,
          limits: LIMITS,
        }),
      async hello(c) {
        assert.equal((await c.read()).code, 220);
        assert.equal((await c.cmd('EHLO client.limits.example')).code, 250);
      },
    },
  ];

  const message = (reference: string) =>
    `From: desk@limits.example\r\nTo: ${shop.inboundAddress}\r\nMessage-ID: <${reference}.${Date.now()}@limits.example>\r\nSubject: order\r\n\r\nAmount: 5\r\nReference: ${reference}\r\n`;

  for (const door of doors) {
    describe(`${door.name} door`, () => {
      let server: SMTPServer;
      let port: number;
      const clients: RawClient[] = [];
      const connect = () => {
        const c = rawClient(port);
        clients.push(c);
        return c;
      };
      /** A session inside a transaction for the shop, up to the 354 of DATA. */
      async function inData(): Promise<RawClient> {
        const c = connect();
        await door.hello(c);
        assert.equal((await c.cmd('MAIL FROM:<desk@limits.example>')).code, 250);
        assert.equal((await c.cmd(`RCPT TO:<${shop.inboundAddress}>`)).code, 250);
        assert.equal((await c.cmd('DATA')).code, 354);
        return c;
      }

      beforeEach(async () => {
        server = door.create();
        port = await listen(server, 0);
      });
      afterEach(async () => {
        for (const c of clients.splice(0)) c.end();
        if (server.server.listening) await close(server);
        await intake.idle();
      });

      it('aborts a message over the size limit mid-stream with 552 and stores nothing', async () => {
        const before = await InboundMessage.countDocuments();
        const c = await inData();
        const line = `${'x'.repeat(76)}\r\n`;
        await c.write(`${message(`LIM-BIG-${++n}`)}${line.repeat(Math.ceil((SIZE_LIMIT * 3) / line.length))}`);
        const r = await c.cmd('.');
        const rset = await c.cmd('RSET');
        assert.equal(r.code, 552);
        assert.match(r.text, /5\.3\.4 message too big/);
        assert.equal(rset.code, 250, 'the session stays usable');
        assert.equal(await InboundMessage.countDocuments(), before);
      });

      it('answers 452 past 10 recipients in a transaction (refused ones count), and counts afresh after RSET', async () => {
        const c = connect();
        await door.hello(c);
        assert.equal((await c.cmd('MAIL FROM:<desk@limits.example>')).code, 250);
        const codes: number[] = [(await c.cmd(`RCPT TO:<${shop.inboundAddress}>`)).code];
        for (let i = 1; i <= 10; i++) codes.push((await c.cmd(`RCPT TO:<orders+guess${i}@${MAIL_DOMAIN}>`)).code);
        assert.deepEqual(codes, [250, ...Array<number>(9).fill(550), 452]);
        assert.equal((await c.cmd('RSET')).code, 250);
        assert.equal((await c.cmd('MAIL FROM:<desk@limits.example>')).code, 250);
        assert.equal((await c.cmd(`RCPT TO:<${shop.inboundAddress}>`)).code, 250);
      });

      it('answers 421 to a connection over maxClients', async () => {
        const open = [connect(), connect(), connect()];
        for (const c of open) assert.equal((await c.read()).code, 220);
        const extra = connect();
        const r = await extra.read();
        assert.equal(r.code, 421);
        assert.match(r.text, /Too many connected clients/);
        await extra.closed;
        // A place frees up when a client leaves.
        open[0]!.end();
        await open[0]!.closed;
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal((await connect().read()).code, 220);
      });

      it('closes an idle client after the socket timeout', async () => {
        const c = connect();
        await door.hello(c);
        const started = Date.now();
        const r = await c.read();
        await c.closed;
        const waited = Date.now() - started;
        assert.equal(r.code, 421);
        assert.match(r.text, /Timeout/);
        assert.ok(waited >= 400 && waited < 3_000, `closed after ${waited} ms`);
      });

      it('on close: 421 to new sessions and transactions, while the message in flight still gets 250', async () => {
        const reference = `LIM-CLOSE-${door.name}-${++n}`;
        const idle = connect();
        await door.hello(idle);
        const c = await inData();
        const body = message(reference);
        await c.write(body.slice(0, 40));

        const closing = close(server);
        let closed = false;
        void closing.then(() => (closed = true));
        const late = connect();
        const refused = await late.read();
        assert.equal(refused.code, 421);
        assert.match(refused.text, /shutting down/);
        assert.equal((await idle.cmd('MAIL FROM:<desk@limits.example>')).code, 421);
        assert.equal(closed, false, 'close waits for the transaction in flight');

        await c.write(body.slice(40));
        const done = await c.cmd('.');
        assert.equal(done.code, 250);
        assert.match(done.text, /stored as/);
        await closing;
        await intake.idle();
        assert.equal(await Order.countDocuments({ merchantId: shop.id, reference }), 1);
        // Closed for good: the port no longer accepts connections.
        await connect().closed;
      });
    });
  }
});
