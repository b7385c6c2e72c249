// The database stops right after the outside world took our work — between the relay's 250 and
// the write that marks the mail sent, between the merchant's 2xx and the write that marks the
// webhook delivered — and stays away longer than the lease (the intake's "processed" mark is
// written the same way; processing a message again is idempotent besides). The process knows the work is done: it keeps that fact and writes it
// once the database is back, so nothing is sent or processed a second time.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { MODELS } from '../../src/db/connection.ts';
import { ensureFerretdb } from '../../src/db/ferretdb-build.ts';
import { freePort, startEmbeddedFerretdb, type EmbeddedDb } from '../../src/db/embedded-ferretdb.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createWebhookWorker } from '../../src/jobs/webhook-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { enqueueMail } from '../../src/mail/outbox.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { sleep, startFaultRelay, waitUntil, type FaultRelay } from './fault-kit.ts';
import { repos } from '../helpers/db.ts';

const DOMAIN = 'paymail.test';
const LEASE_MS = 1_500;
const DOWN_MS = 4_000;

describe('fault: the database goes away right after the work was done', function () {
  this.timeout(120_000);
  let dir: string;
  let binary: string;
  let port: number;
  let db: EmbeddedDb | undefined;
  let relay: FaultRelay;
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (l: string) => void lines.push(l) });

  /** Stops the database, and starts it again DOWN_MS later (not awaited: the caller goes on). */
  let down = false;
  async function outage(): Promise<void> {
    down = true;
    await db!.stop();
    db = undefined;
    void sleep(DOWN_MS).then(async () => {
      db = await startEmbeddedFerretdb({ binary, dir, port });
      down = false;
    });
  }
  const databaseBack = () => waitUntil(async () => !down && (await Outbox.db.db!.admin().ping().then(() => true, () => false)), 60_000, () => 'database not back');

  before(async function () {
    this.timeout(120_000);
    binary = process.env.PAYMAIL_TEST_FERRETDB_BIN ?? (await ensureFerretdb(() => {}));
    dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-durable-db-'));
    port = await freePort();
    db = await startEmbeddedFerretdb({ binary, dir, port });
    await mongoose.connect(`mongodb://127.0.0.1:${port}/durable`, { serverSelectionTimeoutMS: 1_000, autoIndex: false });
    await Promise.all(MODELS.map((m) => m.createIndexes()));
    relay = await startFaultRelay();
  });

  after(async () => {
    await databaseBack().catch(() => {});
    await mongoose.disconnect();
    await db?.stop();
    await relay?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a mail the relay took while the database stops is marked sent when it is back, and sent once', async () => {
    const renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://localhost:3000' });
    const worker = createOutboxWorker({ repos,
      renderer,
      transport: createMailTransport({ outboundSmtpUrl: relay.url, production: false }),
      from: `paymail <no-reply@${DOMAIN}>`,
      logger,
      leaseMs: LEASE_MS,
      pollMs: 100,
    });
    const doc = await enqueueMail(
      {
        dedupeKey: 'durable:mail:1',
        template: 'paylink',
        locale: 'en',
        to: ['shop@merchant.test'],
        data: {
          merchantName: 'Bottega Rossi',
          reference: 'REF-1',
          amountMinor: 1000,
          currency: 'EUR',
          description: 'Chairs',
          customerName: '',
          expiresAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
          link: 'http://localhost:3000/pay/p1?e=1&s=x',
          toCustomer: false,
        },
      },
      DOMAIN,
      repos.outbox,
    );
    // The relay's 250 goes out only once the database is down: the "sent" write meets the outage.
    let first = true;
    relay.setGate(async () => {
      if (first) {
        first = false;
        await outage();
      }
      return undefined;
    });
    worker.start();
    try {
      await waitUntil(() => relay.accepted.length > 0, 30_000, () => 'the mail never reached the relay');
      await databaseBack();
      await waitUntil(async () => (await Outbox.findById(doc._id).lean<OutboxDoc>())?.status === 'sent', 30_000, () => 'never marked sent');
      // Longer than a lease and a few polls: a lost "sent" would have been sent again by now.
      await sleep(LEASE_MS * 3);
    } finally {
      await worker.stop();
      relay.setGate(undefined);
    }
    assert.deepEqual([...relay.counts().values()], [1], 'exactly one copy at the relay');
    const sent = (await Outbox.findById(doc._id).lean<OutboxDoc>())!;
    assert.equal(sent.status, 'sent');
    assert.equal(sent.attempts, 1);
  });

  it('a webhook the merchant acknowledged while the database stops is marked delivered when it is back, and delivered once', async () => {
    const received: string[] = [];
    let first = true;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const id = (JSON.parse(Buffer.concat(chunks).toString()) as { id: string }).id;
        if (first) {
          first = false;
          down = true;
          received.push(id);
          await outage();
        } else received.push(id);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const created = await createMerchantService({ repos, mailDomain: DOMAIN }).create({ name: 'Hook Hotel', email: 'desk@hook.example', timezone: 'Europe/Rome' });
    await Merchant.updateOne({ _id: created.id }, { $set: { webhookUrl: url } });
    const merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
    const orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:1', mailDomain: DOMAIN, maxLinkLifetimeDays: 60, linkKeys: [{ kid: 'd1', secret: 'durable-writes-test-secret-durable' }] });
    const { order } = await orders.create(merchant, { amountMinor: 100, currency: 'EUR', reference: 'R1' }, { key: 'durable:1' });
    const event = await createEventsService({ repos }).orderCancelled(order, merchant);
    assert.ok(event);
    // The answer waits for the database to stop: the attempt's timeout (and the lease above it) must outlast that.
    const worker = createWebhookWorker({ repos, logger, leaseMs: 5_500, timeoutMs: 5_000, pollMs: 100, allowPrivateTargets: true });
    worker.start();
    try {
      await waitUntil(() => received.length > 0, 30_000, () => 'the webhook never arrived');
      await databaseBack();
      await waitUntil(async () => (await WebhookDelivery.findById(event.id).lean())?.status === 'delivered', 30_000, () => 'never marked delivered');
      await sleep(5_500 * 2);
    } finally {
      await worker.stop();
      server.closeAllConnections();
      server.close();
    }
    assert.deepEqual(received, [event.id], 'delivered once');
  });
});
